"""A Celery worker with test hooks: `celery -A testkit.worker worker ...`.

The hooks live here, read from this process's environment, and reach the
worker through `ServicesTask.before_process`; production settings know
nothing of them.
- TESTKIT_TASK_SLEEP=<seconds>: each task sleeps after claiming its batch (to
  kill a worker mid-task).
- TESTKIT_CRASH_ON=<product id>: the worker process SIGKILLs itself when it
  claims that product (a poison upload).
"""

from __future__ import annotations

import logging
import os
import signal
import time

from catalogue.jobs import Item
from vitrine.worker import app
from workers.tasks import ServicesTask

log = logging.getLogger(__name__)

SLEEP = float(os.environ.get("TESTKIT_TASK_SLEEP", "0"))
CRASH_ON = os.environ.get("TESTKIT_CRASH_ON")


def before_process(items: list[Item]) -> None:
    if CRASH_ON and any(it.product_id == CRASH_ON for it in items):
        log.error("TESTKIT_CRASH_ON=%s: killing this worker process", CRASH_ON)
        os.kill(os.getpid(), signal.SIGKILL)
    if SLEEP:
        time.sleep(SLEEP)


ServicesTask.before_process = staticmethod(before_process)

__all__ = ["app"]
