"""The embedded store's index build, in a child process of its own.

The engine's `optimize()` blocks every search of the process it runs in, so EdgeStore
(catalogue.store.edge) has a copy of the shard indexed here and swaps it in. This module
is that child: it reopens the copy with the configuration chosen for its size
(catalogue.store.edge_config.for_build: HNSW parameters, quantisation), builds, and
exits. Two guards: the kernel kills it when its parent dies (no indexer outlives the
server), and the parent kills it once its private memory passes `optimizer_memory_mb`
(resident memory less the shard's mapped files, which the kernel can drop and reread), so
a build too big for the machine fails alone, and the store keeps searching the unindexed
points exactly, instead of the machine running out of memory. The parent watches rather
than setting an rlimit: under RLIMIT_DATA the engine's thread pool hangs when a thread
cannot get its stack, instead of failing.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import qdrant_edge as qe

from catalogue.store.edge_config import for_build
from catalogue.store.index_config import IndexConfig

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.25


def index_copy(path: Path, dim: int, index: IndexConfig, points: int) -> None:
    """Index the shard copy at `path` (holding `points` points) in a child process, so
    this one keeps searching; RuntimeError with the child's last words if it fails."""
    spec = json.dumps({"dim": dim, "points": points, "index": index.as_json()})
    # Its last words go to a file: a pipe nobody reads while it builds could fill and stop it.
    with tempfile.TemporaryFile("w+") as log, subprocess.Popen(
            [sys.executable, "-m", "catalogue.store.edge_build", str(path), str(os.getpid()),
             spec], stdout=subprocess.DEVNULL, stderr=log) as child:
        over = _watch(child, index.optimizer_memory_mb)
        log.seek(0)
        stderr = log.read()
    if over:
        raise RuntimeError(f"optimizing the shard failed: the index build passed "
                           f"{index.optimizer_memory_mb} MB of private memory "
                           "(VITRINE_OPTIMIZER_MEMORY_MB)")
    if child.returncode != 0:
        raise RuntimeError(f"optimizing the shard failed (exit {child.returncode}): "
                           f"{stderr[-2000:]}")


def _watch(child: subprocess.Popen, cap_mb: int) -> bool:
    """Wait for `child`; with a cap, kill it once its private memory passes the cap.
    True if it was killed for that."""
    if cap_mb <= 0:
        child.wait()
        return False
    process = psutil.Process(child.pid)
    while True:
        try:
            child.wait(WATCH_SECONDS)
            return False
        except subprocess.TimeoutExpired:
            pass
        try:
            memory = process.memory_info()
        except psutil.Error:  # exited between the wait and the look
            continue
        if memory.rss - memory.shared > cap_mb * 2**20:
            child.kill()
            child.wait()
            return True


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux); the engine's
    optimize is native code, so no Python thread could be relied on to notice."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before the signal was asked for
        os._exit(1)


def build(path: str, dim: int, index: IndexConfig, points: int) -> None:
    """Open the copy with its build configuration, index it, close it."""
    shard = qe.EdgeShard.load(path, for_build(Path(path), dim, index, points))
    shard.optimize()
    shard.flush()
    shard.close()


if __name__ == "__main__":
    _die_with_parent(int(sys.argv[2]))
    spec = json.loads(sys.argv[3])
    build(sys.argv[1], spec["dim"], IndexConfig.from_json(spec["index"]), spec["points"])
