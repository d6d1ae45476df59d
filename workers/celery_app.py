"""The Celery application: broker, delivery guarantees, time limits, queues, beat schedule.

`celery -A vitrine.worker worker -Q ingest,maintenance` runs a worker;
`celery -A vitrine.worker beat` the periodic sweep. Importing this module
loads no model and touches no network.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from workers.settings import WorkerSettings, get_worker_settings

INGEST_TASK = "vitrine.ingest"
SWEEP_TASK = "vitrine.sweep"
PING_TASK = "vitrine.ping"


def make_celery(settings: WorkerSettings | None = None) -> Celery:
    s = settings or get_worker_settings()
    app = Celery("vitrine", broker=s.broker_url, backend=s.result_backend or s.broker_url,
                 include=["workers.tasks"])
    redis_options = {
        "visibility_timeout": s.visibility_timeout,
        "socket_connect_timeout": s.broker_timeout,
        "socket_timeout": max(s.broker_timeout, 10),
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
        # Find tasks abandoned by a dead worker within a tenth of the visibility timeout.
        "unacked_restore_interval": max(1, min(60, int(s.visibility_timeout / 10))),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        # At-least-once: ack after the task ran; a task whose worker died goes back to the
        # queue; a worker holds one message it is not working on, not four.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The visibility timeout, in all three places Celery reads it.
        broker_transport_options=redis_options,
        result_backend_transport_options={"visibility_timeout": s.visibility_timeout},
        visibility_timeout=s.visibility_timeout,
        task_soft_time_limit=s.soft_time_limit,
        task_time_limit=s.time_limit,
        task_queues=(Queue(s.queue, routing_key=s.queue),
                     Queue(s.maintenance_queue, routing_key=s.maintenance_queue)),
        task_default_queue=s.queue,
        task_create_missing_queues=False,
        task_routes={INGEST_TASK: {"queue": s.queue}, SWEEP_TASK: {"queue": s.maintenance_queue},
                     PING_TASK: {"queue": s.queue}},
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_ignore_result=True,  # the job store is the record of what happened
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits out a broker outage
        broker_connection_timeout=s.broker_timeout,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=False,
        beat_schedule={"sweep": {"task": SWEEP_TASK, "schedule": s.sweep_interval,
                                 "options": {"expires": s.sweep_interval}}},
    )
    return app


app = make_celery()
