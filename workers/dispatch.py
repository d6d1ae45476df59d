"""The cluster profile's dispatch: the API publishes a Celery task for each recorded job.

It fills the `catalogue.dispatch.Dispatch` role, as the local runner does in the
local profile.

The routes record the job (committed) and then call dispatch. If the broker
cannot take the task, the job is withdrawn (its rows deleted) and the route
answers 503: nothing was accepted, nothing is left half-done. A job no worker
can have seen is safe to delete; if a worker did claim some of it meanwhile
(it batches across jobs), the job stands and will finish, so accepting it is
true. A crash between the commit and the publish leaves a queued job with no
task: the periodic sweep publishes one for it.
"""

from __future__ import annotations

import logging

from catalogue import tracing
from catalogue.dispatch import DispatchUnavailable
from catalogue.jobs import JobStore
from catalogue.logs import request_id
from workers.observe import REQUEST_ID_KEY
from workers.settings import WorkerSettings, get_worker_settings

log = logging.getLogger(__name__)


class BrokerUnavailable(DispatchUnavailable):
    """The broker could not take the task."""


class CeleryDispatch:
    def __init__(self, jobs: JobStore, settings: WorkerSettings | None = None, app=None):
        from workers.celery_app import app as default_app

        self.jobs = jobs
        self.settings = settings or get_worker_settings()
        self.app = app or default_app

    def start(self) -> None:
        """Nothing to start: the broker connection opens on the first publish."""

    def publish(self) -> None:
        """Publish one ingest task: a wake-up that claims a batch of any job's uploads."""
        import kombu.exceptions
        import redis.exceptions

        from workers.celery_app import INGEST_TASK

        try:
            # ignore_result: the result backend stays out of it (it would subscribe to the
            # task's result, and give up for good after a Redis outage).
            # The request id travels in the headers: the task's log lines carry it; so does
            # the trace context (`traceparent`), when the request is traced.
            headers = {REQUEST_ID_KEY: rid} if (rid := request_id.get()) else {}
            tracing.inject(headers)
            self.app.send_task(INGEST_TASK, queue=self.settings.queue, headers=headers or None,
                               ignore_result=True, retry=True, retry_policy={
                                   "max_retries": self.settings.publish_retries,
                                   "interval_start": 0.1, "interval_step": 0.2,
                                   "interval_max": 0.5})
        except (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError, OSError) as exc:
            raise BrokerUnavailable(f"the task queue is unreachable: {exc}") from exc

    def submit(self, job_id: str) -> None:
        try:
            self.publish()
        except BrokerUnavailable:
            if self.jobs.withdraw(job_id):
                raise
            log.warning("broker unreachable, but a worker already took part of job %s: "
                        "it stands", job_id)

    def stop(self) -> None:
        self.app.close()
