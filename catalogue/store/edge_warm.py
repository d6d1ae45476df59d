"""The embedded shard's files read once after the engine opens them, so its first
searches do not wait on the disk.

On load the engine drops its files from the page cache, so a shard just opened (at
start, or a freshly indexed copy about to be swapped in) answers its first searches from
the disk, a page at a time. Measured with bench.vector_search.warm on 500k int8 points
(2026-12-06; BENCHMARKS.md, "A shard just opened"): the first search took 75 ms and the
first 300 had p99 41 ms; with the files read after the open (2-3 s for 1.5 GB), 3-5 ms and
2.7-3.5 ms. Reading them before the open does nothing, and a few warm-up searches
instead (at 200k) left p99 at 3.1 ms against 2.0: they touch only the parts of the
graph they walk. Reading is sequential, in large blocks, and only while the shard fits
in half the memory the kernel says is available: a bigger one would only push other
files out. Warming only saves time, so a file it cannot read is skipped. At 1M points
the first pass after a build is still about twice as slow at p99 as a second one:
reading fills the page cache, not the engine's own mappings (BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

BLOCK = 1 << 20


def warm(path: Path, budget: int | None = None) -> int:
    """Read every file under `path` once; returns the bytes read (0 when the shard is
    larger than `budget`, by default half the available memory)."""
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    budget = psutil.virtual_memory().available // 2 if budget is None else budget
    if size > budget:
        log.info("not warming %s: %d MB, more than %d MB to spare", path, size >> 20,
                 budget >> 20)
        return 0
    started, done = time.perf_counter(), 0
    for file in files:
        try:
            with file.open("rb", buffering=0) as f:
                while chunk := f.read(BLOCK):
                    done += len(chunk)
        except OSError as e:
            log.warning("not warming %s: %s", file, e)
    log.info("warmed %s: %d MB in %.1f s", path, done >> 20, time.perf_counter() - started)
    return done
