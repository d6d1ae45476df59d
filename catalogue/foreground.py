"""Shoppers first: background ingest yields the CPU to requests being answered.

In the local profile one process both answers shoppers and ingests uploads on two
cores. Thread priorities don't help there: the query's text tower and the batch's
image tower contend inside one interpreter and one BLAS thread team (measured:
a nice-10 ingest thread left search p99 where it was). So search says while it
works (`serving`), and ingest, between chunks of a batch, waits for a quiet moment
(`wait_idle`) for at most a bound, so uploads still move under constant search.
Written here because no library schedules within a process like this; it is a
counter under a condition variable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Foreground:
    def __init__(self) -> None:
        self._active = 0
        self._idle = threading.Condition()

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Around a shopper's request: background work waits while any runs."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                if not self._active:
                    self._idle.notify_all()

    def wait_idle(self, max_wait: float) -> None:
        """Return when no request is being served, or after `max_wait` seconds."""
        with self._idle:
            self._idle.wait_for(lambda: not self._active, timeout=max_wait)
