"""The embedded shard's files read once after the engine opens them, so its first
searches do not wait on the disk.

On load the engine drops its files from the page cache, so a shard just opened (at
start, or a freshly indexed copy about to be swapped in) answers its first searches from
the disk: measured on 200k int8 points (2026-12-06), the first of 300 took 72 ms, the
tenth 10, p99 21.6 ms against 2.0 warm, and reading the files beforehand did nothing
while reading them after the load took 0.3 s and left p99 at 2.0 ms from the first
search (BENCHMARKS.md, "Vector search"). A few warm-up searches instead left p99 at 3.1
ms: they touch only the graph's neighbourhoods they walk. Reading is sequential, in
large blocks, and only while the shard fits in half the memory the kernel says is
available: a bigger one would only push other files out.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK = 1 << 20


def available_bytes() -> int:
    """The kernel's estimate of memory available without swapping (0 where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def warm(path: Path, budget: int | None = None) -> int:
    """Read every file under `path` once; returns the bytes read (0 when the shard is
    larger than `budget`, by default half the available memory)."""
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    budget = available_bytes() // 2 if budget is None else budget
    if size > budget:
        log.info("not warming %s: %d MB, more than %d MB to spare", path, size >> 20,
                 budget >> 20)
        return 0
    started, done = time.perf_counter(), 0
    for file in files:
        with file.open("rb", buffering=0) as f:
            while chunk := f.read(BLOCK):
                done += len(chunk)
    log.info("warmed %s: %d MB in %.1f s", path, done >> 20, time.perf_counter() - started)
    return done
