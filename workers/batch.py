"""What a worker does, as plain functions the Celery tasks call and tests call directly.

A task is only a wake-up: it claims up to `batch_size` queued items of any job
from the job store (waiting `batch_wait_ms` for more to arrive), so the images of
several uploads share one forward pass, through `Ingest.run_batch`, the same
driver the local profile and `vitrine import` use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from catalogue.ingest import Ingest
from catalogue.jobs import Item, JobStore
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

Publish = Callable[[], None]
BeforeProcess = Callable[[list[Item]], None]
FOLLOW_UPS = 2  # tasks a busy task publishes for what is left: a binary fan-out


def publish_quietly(publish: Publish, count: int) -> int:
    """Publish `count` wake-ups; a broker outage here is covered by the sweep."""
    sent = 0
    for _ in range(count):
        try:
            publish()
            sent += 1
        except Exception:
            log.warning("could not publish a follow-up task; the sweep will", exc_info=True)
            break
    return sent


def run_batch(ingest: Ingest, settings: WorkerSettings, owner: str | None,
              publish: Publish, before_process: BeforeProcess | None = None) -> int:
    """One task's work: recover what a dead delivery of it left, claim a batch, process it,
    and publish follow-ups while uploads are left. Returns how many items were taken."""
    jobs = ingest.jobs
    if owner and (n := jobs.requeue_owned(owner, settings.max_attempts)):
        log.warning("task %s was delivered again: %d uploads it held are queued again "
                    "(its worker died)", owner, n)
    # StoreUnavailable: items released, the task retries later
    taken = ingest.run_batch(settings.batch_size, settings.batch_wait_ms / 1000, owner,
                             before_process)
    if taken and (left := jobs.queued_count()):
        publish_quietly(publish, min(math.ceil(left / settings.batch_size), FOLLOW_UPS))
    return taken


def sweep(jobs: JobStore, settings: WorkerSettings, publish: Publish) -> dict[str, int]:
    """Re-queue uploads stuck past the deadline and publish tasks for them.

    Running too long: their worker died and no redelivery came (the broker lost
    the message). Queued too long: no task is coming for them (the API crashed
    between commit and publish, or the broker lost its data).
    """
    requeued = jobs.requeue_stale(settings.sweep_deadline, settings.max_attempts)
    stale = jobs.queued_count(older_than=settings.sweep_deadline)
    wakeups = min(math.ceil(stale / settings.batch_size), settings.sweep_max_wakeups)
    published = publish_quietly(publish, wakeups)
    if requeued or stale:
        log.warning("sweep: %d stalled uploads queued again, %d waiting past the deadline, "
                    "%d tasks published", requeued, stale, published)
    return {"requeued": requeued, "stale": stale, "published": published}
