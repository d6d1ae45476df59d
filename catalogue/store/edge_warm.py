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
in half the memory available: a bigger one would only push other files out. Available
means what the kernel says, or less where the process's memory cgroup (a container's
limit) leaves less room above its own memory: psutil sees the machine, not the
container, and a 1M shard (5 GB) read in a 3 GB container is evicted as it is read
(BENCHMARKS.md, "A million products held to 3 GB"). Warming only saves time, so a file it
cannot read is skipped. At 1M points
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
CGROUP = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 62  # cgroup v1 writes "no limit" as a number near 2**63


def available_memory(cgroup: Path = CGROUP, membership: Path = Path("/proc/self/cgroup")
                     ) -> int:
    """Bytes this process may still fill: the kernel's available memory, or the room left
    under its memory cgroup's tightest limit (that limit less the group's anonymous
    memory, which cannot be reclaimed) where that is less."""
    available = psutil.virtual_memory().available
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return available
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":  # v2: one hierarchy
            root, limit, anon = cgroup, "memory.max", "anon"
        elif "memory" in controllers.split(","):  # v1: the memory controller's own
            root, limit, anon = cgroup / "memory", "memory.limit_in_bytes", "total_rss"
        else:
            continue
        group = root / path.lstrip("/")
        while group.is_relative_to(root):
            room = _room(group, limit, anon)
            if room is not None:
                available = min(available, room)
            group = group.parent
    return available


def _room(group: Path, limit_file: str, anon_key: str) -> int | None:
    """The room under `group`'s memory limit, None without one (or without the files)."""
    try:
        text = (group / limit_file).read_text().strip()
        if text == "max" or int(text) >= UNLIMITED:
            return None
        stat = dict(line.split()[:2] for line in (group / "memory.stat").read_text().splitlines()
                    if line.strip())
        return max(0, int(text) - int(stat.get(anon_key, 0)))
    except (OSError, ValueError):
        return None


def warm(path: Path, budget: int | None = None) -> int:
    """Read every file under `path` once; returns the bytes read (0 when the shard is
    larger than `budget`, by default half of `available_memory()`)."""
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    budget = available_memory() // 2 if budget is None else budget
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
