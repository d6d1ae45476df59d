"""The deadline of a fetch (catalogue.fetch), enforced at every socket wait.

The default transport's sockets never wait past the deadline of the fetch running on
their thread: a server that trickles its status line or headers a byte at a time would
otherwise reset httpx's read timeout at every byte. httpx's sync client does all its I/O
on the calling thread, so a thread-local carries the deadline down to the sockets.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpcore

current = threading.local()


def clip(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = getattr(current, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("past the fetch's deadline")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, clip(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, clip(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, clip(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
