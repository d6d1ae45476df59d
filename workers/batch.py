"""What a worker does, as plain functions the Celery tasks call and tests call directly.

A task carries only a job id, as a wake-up: it claims up to `batch_size` queued
items of any job from the job store (waiting `batch_wait_ms` for more to
arrive), so the images of several uploads share one forward pass, then runs
`Ingest.process` on them, the same function the local profile runs.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable

from catalogue.ingest import Ingest
from catalogue.jobs import Item, JobStore
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

Publish = Callable[[str | None], None]
POLL_SECONDS = 0.02
FOLLOW_UPS = 2  # tasks a busy task publishes for what is left: a binary fan-out


def take_batch(jobs: JobStore, size: int, wait_s: float, owner: str | None) -> list[Item]:
    """Claim a batch: up to `size` fresh items, topped up for `wait_s`; or one suspect alone."""
    items = jobs.claim(size, owner=owner)
    if not items or items[0].attempts > 1:  # nothing to do, or a suspect: no company
        return items
    deadline = time.monotonic() + wait_s
    while len(items) < size and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, POLL_SECONDS))
        items += jobs.claim(size - len(items), owner=owner, fresh_only=True)
    return items


def test_hooks(items: list[Item], settings: WorkerSettings) -> None:
    """TEST ONLY (VITRINE_TEST_*): make a task slow, or kill its worker, deterministically."""
    if settings.test_crash_on and any(it.product_id == settings.test_crash_on for it in items):
        log.error("VITRINE_TEST_CRASH_ON=%s: killing this worker process",
                  settings.test_crash_on)
        os.kill(os.getpid(), signal.SIGKILL)
    if settings.test_task_sleep:
        time.sleep(settings.test_task_sleep)


def publish_quietly(publish: Publish, count: int) -> int:
    """Publish `count` wake-ups; a broker outage here is covered by the sweep."""
    sent = 0
    for _ in range(count):
        try:
            publish(None)
            sent += 1
        except Exception:
            log.warning("could not publish a follow-up task; the sweep will", exc_info=True)
            break
    return sent


def run_batch(ingest: Ingest, settings: WorkerSettings, owner: str | None,
              publish: Publish) -> int:
    """One task's work: recover what a dead delivery of it left, claim a batch, process it,
    and publish follow-ups while uploads are left. Returns how many items were taken."""
    jobs = ingest.jobs
    if owner and (n := jobs.requeue_owned(owner, settings.max_attempts)):
        log.warning("task %s was delivered again: %d uploads it held are queued again "
                    "(its worker died)", owner, n)
    items = take_batch(jobs, settings.batch_size, settings.batch_wait_ms / 1000, owner)
    if not items:
        return 0
    test_hooks(items, settings)
    ingest.process(items)  # StoreUnavailable: items released, the task retries later
    if left := jobs.queued_count():
        publish_quietly(publish, min(math.ceil(left / settings.batch_size), FOLLOW_UPS))
    return len(items)


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
