"""Worker health check that proves work is moving, not just that the process answers.

`python -m workers.health` exits non-zero when this worker does not answer a
ping over the broker, or when uploads have been waiting past the sweep
deadline (a worker that stopped consuming after a Redis reconnect looks alive
but moves nothing). Used by the compose health check and the Kubernetes probe.
"""

from __future__ import annotations

import socket
import sys


def check(node: str | None = None) -> list[str]:
    from catalogue.jobs import JobStore
    from catalogue.settings import CatalogueSettings
    from workers.celery_app import app
    from workers.settings import get_worker_settings

    problems = []
    node = node or f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=5)
    if not replies:
        problems.append(f"{node} does not answer over the broker")
    catalogue = CatalogueSettings()
    jobs = JobStore(catalogue.jobs_url or catalogue.jobs_db)
    try:
        stalled = jobs.queued_count(older_than=get_worker_settings().sweep_deadline * 2)
    finally:
        jobs.close()
    if stalled:
        problems.append(f"{stalled} uploads waited past twice the sweep deadline: "
                        "no work is moving")
    return problems


def main() -> int:
    problems = check(sys.argv[1] if len(sys.argv) > 1 else None)
    for p in problems:
        print(f"unhealthy: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
