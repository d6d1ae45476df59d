"""Closed-loop shoppers for `bench.search_http`'s throughput: Locust users sending text
searches, each as soon as its previous answer came back, for a bounded time.

    .venv/bin/python -m bench.search_clients --url http://127.0.0.1:8000 --clients 4 \\
        --seconds 20 --texts texts.json --out clients.json

The users share one position in the list of query texts (`--texts`, a JSON list), so a
list of distinct texts keeps every request cold: the server's query-vector cache never
answers one. Should the list run out, it starts again; the result counts how often.
Locust's FastHttpUser (geventhttpclient) is the client, the lightest Locust has, since it
shares the machine's cores with the server. One process per run: Locust patches the
standard library with gevent on import, which `bench.search_http` must not inherit.
Loopback only; bounded by --seconds and a per-request timeout.
"""

# ruff: noqa: I001 - locust's import must stay first (below)
from __future__ import annotations

# gevent's monkey-patching must come before anything imports ssl, threading or sockets.
import locust  # noqa: F401

import argparse
import json
import time
from itertools import count
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

RAMP_S = 1.0  # left out of the figures: the users connecting and the first passes


def user_class(texts: list[str], params: dict, position: count):
    from locust import FastHttpUser, constant, task

    class Shopper(FastHttpUser):
        wait_time = constant(0)
        network_timeout = 30.0
        connection_timeout = 5.0

        @task
        def search(self) -> None:
            q = texts[next(position) % len(texts)]
            url = "/v1/search?" + urlencode({**params, "q": q})
            with self.client.get(url, name="search", catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"answered {r.status_code}: {r.text[:200] if r.text else ''}")
                else:
                    r.success()

    return Shopper


def run(url: str, clients: int, seconds: float, texts: list[str], params: dict) -> dict:
    from locust.env import Environment

    rows: list[tuple[float, float, bool]] = []  # (when it ended, ms, ok)
    first_failure: list[str] = []

    def on_request(response_time, exception=None, **_) -> None:
        rows.append((time.monotonic(), float(response_time), exception is None))
        if exception is not None and not first_failure:
            first_failure.append(str(exception)[:300])

    position = count()
    env = Environment(user_classes=[user_class(texts, params, position)], host=url)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    start = time.monotonic()
    runner.start(clients, spawn_rate=clients)
    time.sleep(seconds)  # gevent's sleep: the users run meanwhile
    end = time.monotonic()
    runner.quit()
    sent = next(position)  # the texts taken, this call's included
    window = [(ms, ok) for t, ms, ok in rows if start + RAMP_S <= t < end]
    ms = np.array([m for m, ok in window if ok]) if window else np.array([0.0])
    return {"clients": clients, "seconds": end - start - RAMP_S, "requests": len(window),
            "errors": sum(not ok for _, ok in window),
            "rps": len(window) / (end - start - RAMP_S),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "sent": sent, "texts": len(texts), "wrapped": max(0, sent - len(texts)),
            "first_failure": first_failure[0] if first_failure else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--texts", type=Path, required=True, help="JSON list of query texts")
    p.add_argument("--params", default="{}", help="JSON: other query parameters")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        p.error("loopback only")
    texts = json.loads(args.texts.read_text())
    result = run(args.url, args.clients, args.seconds, texts, json.loads(args.params))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
