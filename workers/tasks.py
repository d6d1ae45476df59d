"""Celery tasks: thin. They take ids, find the cached services, and call plain functions."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from catalogue.ingest import StoreUnavailable
from catalogue.jobs import JobStore
from catalogue.services import Services
from embedding.encoder import Encoder
from workers import batch
from workers.batch import BeforeProcess
from workers.celery_app import INGEST_TASK, PING_TASK, SWEEP_TASK, app
from workers.settings import get_worker_settings

log = logging.getLogger(__name__)


class ServicesStarting(RuntimeError):
    """This worker process is still loading its model: retry the task, fail nothing."""


def outage_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean a service is unreachable: retry later, fail nothing."""
    errors: list[type[BaseException]] = [StoreUnavailable, ServicesStarting,
                                         sqlite3.OperationalError]
    try:
        import psycopg

        errors.append(psycopg.OperationalError)
    except ImportError:
        pass
    return tuple(errors)


RETRY_ON = outage_errors()


class ServicesTask(Task):
    """The parts built once per worker process, on first use (Celery's DatabaseTask
    pattern; not in worker_process_init, whose handlers get the child killed past 4 s).

    How to build them is injected by the process's entry point (`vitrine.worker` sets
    `build_services` and `open_jobs`), so this package never imports the composition
    root. `before_process` is a hook between a batch's claim and its work, for tests
    (`testkit.worker` sets it); production leaves it None.
    """

    build_services: Callable[..., Services] | None = None
    open_jobs: Callable[[], JobStore] | None = None
    before_process: BeforeProcess | None = None
    _encoder: Encoder | None = None
    _services: Services | None = None
    _jobs: JobStore | None = None

    @property
    def services(self) -> Services:
        if ServicesTask._services is None:
            build = ServicesTask.build_services
            if build is None:
                raise RuntimeError("no way to build the worker's parts: start workers with "
                                   "`celery -A vitrine.worker worker`")
            if ServicesTask._encoder is None:
                ServicesTask._encoder = Encoder()
            # Loaded here, on first use, so it counts against the task's time limits: the
            # soft limit must cover a cold start (model load) on the slowest worker.
            try:
                ServicesTask._services = build(encoder=ServicesTask._encoder)
            except SoftTimeLimitExceeded as exc:  # a cold start on a busy machine: again
                ServicesTask._encoder = None
                raise ServicesStarting("loading the model took longer than the task's soft "
                                       "time limit; retrying") from exc
            except Exception as exc:
                if is_connection_error(exc):
                    raise StoreUnavailable(f"cannot reach the stores yet: {exc}") from exc
                raise
        return ServicesTask._services

    @property
    def jobs(self) -> JobStore:
        """The job store alone, for tasks that need no model (the sweep)."""
        if ServicesTask._services is not None:
            return ServicesTask._services.jobs
        if ServicesTask._jobs is None:
            if ServicesTask.open_jobs is None:
                raise RuntimeError("start workers with `celery -A vitrine.worker worker`")
            ServicesTask._jobs = ServicesTask.open_jobs()
        return ServicesTask._jobs


def is_connection_error(exc: BaseException) -> bool:
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    return isinstance(exc, (*RETRY_ON, OSError, httpx.TransportError,
                            ResponseHandlingException))


def publish_ingest() -> None:
    ingest.apply_async(retry=True, retry_policy={"max_retries": 2})


@app.task(bind=True, base=ServicesTask, name=INGEST_TASK, autoretry_for=RETRY_ON,
          retry_backoff=1, retry_backoff_max=60, retry_jitter=True, max_retries=None)
def ingest(self) -> int:
    """Encode and index one batch of queued uploads, of any job."""
    taken = batch.run_batch(self.services.ingest, get_worker_settings(), self.request.id,
                            publish_ingest, ServicesTask.before_process)
    log.info("ingest task %s took %d uploads", self.request.id, taken)
    return taken


@app.task(bind=True, base=ServicesTask, name=SWEEP_TASK, autoretry_for=RETRY_ON,
          max_retries=3, retry_backoff=5)
def sweep(self) -> dict[str, int]:
    """Re-queue uploads stuck past the deadline; periodic, from celery beat."""
    return batch.sweep(self.jobs, get_worker_settings(), publish_ingest)


@app.task(name=PING_TASK, ignore_result=False)
def ping() -> str:
    """An empty task, to measure the broker's round trip."""
    return "pong"
