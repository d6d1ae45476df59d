"""The local profile's dispatch: ingest runs in a thread of the API process.

It fills the `catalogue.dispatch.Dispatch` role: `submit` wakes the thread,
which processes queued items in batches through `Ingest.run_pending` (the same
driver `vitrine import` and the Celery tasks use) and then tells the store, which
starts building its index only once enough new points await it (a one-product
batch after a large index copies nothing). `paused()` holds it between batches (a
reindex's last pass and switch, catalogue.reindex).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from catalogue.ingest import Ingest, StoreUnavailable

log = logging.getLogger(__name__)


class LocalRunner:
    def __init__(self, ingest: Ingest, max_attempts: int = 3, idle_seconds: float = 2.0):
        self.ingest = ingest
        self.max_attempts = max_attempts
        self.idle_seconds = idle_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._batch = threading.Lock()  # held while a batch runs
        self._thread = threading.Thread(target=self._loop, name="ingest", daemon=True)

    def start(self) -> None:
        # Only one process opens the data folder, so anything still "running" was
        # interrupted by a crash or restart: queue it again (or give up after N tries).
        requeued = self.ingest.jobs.requeue_stale(0, self.max_attempts)
        if requeued:
            log.info("requeued %d interrupted uploads", requeued)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No batch runs inside: the one running finishes first; queued uploads wait."""
        self._paused.set()
        with self._batch:
            pass
        try:
            yield
        finally:
            self._paused.clear()
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._batch:
                taken = 0 if self._paused.is_set() else self._run_batch()
            if taken:  # a cheap question: the store decides whether a rebuild is due
                self.ingest.store.optimize_in_background()
                continue
            self._wake.wait(self.idle_seconds)
            self._wake.clear()

    def _run_batch(self) -> int:
        try:
            return self.ingest.run_pending()
        except StoreUnavailable:
            log.warning("vector store unreachable; retrying", exc_info=True)
            self._stop.wait(self.idle_seconds)
        except Exception:
            log.exception("ingest batch failed")
        return 0
