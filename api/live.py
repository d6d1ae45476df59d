"""The services a running gateway serves with, and how they are replaced without a restart.

Routes get the `Services` through api.deps, which counts the requests using each one; a
reindex (vitrine.lifecycle) puts new services in place with `put` (one assignment:
a request gets the old or the new, never a mix), then `drain`s the old ones before
closing them. While a reindex takes its last pass and switches, `writes_held` makes
the routes that write to the store directly (edits, deletes, moderation decisions,
imports that prune) wait, and then run on the new services.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from catalogue.services import Services


class LiveServices:
    def __init__(self, state: Any):
        """`state`: the app's state, whose `services` attribute the routes read."""
        self._state = state
        self._lock = threading.Condition()
        self._using: dict[int, int] = {}  # id(services) -> requests using them
        self._writing = 0  # requests in a route that writes to the store
        self._held = False

    @property
    def current(self) -> Services | None:
        services: Services | None = self._state.services
        return services

    # -- requests ------------------------------------------------------------------
    def use(self, services: Services) -> None:
        with self._lock:
            self._using[id(services)] = self._using.get(id(services), 0) + 1

    def done(self, services: Services) -> None:
        with self._lock:
            left = self._using.get(id(services), 1) - 1
            if left:
                self._using[id(services)] = left
            else:
                self._using.pop(id(services), None)
            self._lock.notify_all()

    @contextmanager
    def writing(self, timeout: float = 600) -> Iterator[None]:
        """A request that writes to the store: waits while writes are held."""
        with self._lock:
            self._lock.wait_for(lambda: not self._held, timeout)
            self._writing += 1
        try:
            yield
        finally:
            with self._lock:
                self._writing -= 1
                self._lock.notify_all()

    # -- the swap -----------------------------------------------------------------
    @contextmanager
    def writes_held(self) -> Iterator[None]:
        """No request writes to the store inside: those writing finish first, new ones wait."""
        with self._lock:
            self._held = True
            self._lock.wait_for(lambda: self._writing == 0)
        try:
            yield
        finally:
            with self._lock:
                self._held = False
                self._lock.notify_all()

    def put(self, services: Services) -> Services | None:
        """Serve with `services` from the next request on; returns the ones replaced."""
        old = self.current
        self._state.services = services
        return old

    def drain(self, services: Services, timeout: float = 60) -> bool:
        """Wait until no request uses `services`; False if some still do after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            return self._lock.wait_for(lambda: id(services) not in self._using,
                                       max(0.0, deadline - time.monotonic()))
