"""Run an ASGI app under uvicorn in a background thread: for tests and benchmarks that
drive the real server over HTTP from the same process (`vitrine serve` uses uvicorn.run)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable


def serve_in_thread(app, timeout: float = 60) -> tuple[str, Callable[[], None]]:
    """Start `app` on a free port of 127.0.0.1; return its URL and a function that stops it.

    The socket is bound before uvicorn starts, so the port is ours: no race for it.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"uvicorn did not start within {timeout:.0f} s")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(30)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop
