"""Settings of a whole process that runs the encoder: its threads, and its garbage collector.

They belong to the process, not to an `Encoder`: a thread pool's size is global state, and
changing it as a side effect of building an object would surprise every other part of the
process (and each test that builds one). So the composition root calls
`configure_threads()` once at process start, before it serves or works, and a server
keeps its parts out of the garbage collector's walks while it serves (`frozen_heap`).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy  # noqa: F401  (loaded first: threadpoolctl limits only libraries already loaded)
from threadpoolctl import threadpool_limits

_lock = threading.Lock()
_configured = False
_heap = threading.Lock()  # freezing and thawing, one at a time


def configure_threads() -> None:
    """Hold the BLAS libraries loaded so far (numpy's) to one thread. Call once at process
    start; later calls do nothing, so calling it again is safe.

    torch's intra-op pool owns the cores. numpy's BLAS only multiplies small matrices in
    this project (moderation, tagging, mixing queries); with a thread per core, its pool
    spins beside torch's after each call and slows both. Measured on 2 cores with the demo
    model (commit b9acc88): a 32-image batch's moderation right after the forward pass took
    2.9 ms instead of 0.5 ms, and the next forward pass 18.5 ms instead of 12.1 ms.
    """
    global _configured
    with _lock:
        if _configured:
            return
        threadpool_limits(1, user_api="blas")
        _configured = True


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Inside, every object alive at entry is beyond the garbage collector's walks
    (`gc.freeze`): a server enters once its parts are built, and leaves as it stops.

    A served process holds some 440,000 objects once its model, tokenizer and store are
    loaded, nearly all of them for good. Each full collection walked them all: 220 ms on 2
    cores, one every few thousand requests, taken by whichever request was running (the
    250-440 ms maxima of `bench.search_http`'s runs). Frozen, they are still freed when
    nothing refers to them; a full collection walks only what was made since. Building the
    parts leaves almost no cyclic garbage to freeze with them (10 objects, measured).
    """
    with _heap:
        gc.freeze()
    try:
        yield
    finally:
        with _heap:
            gc.unfreeze()


def refreeze_heap() -> None:
    """After the parts were replaced (a new model version served): collect the old parts'
    cycles, frozen with them, and freeze the new parts. Nothing, once the server stopped
    (a reindex may end after it): its heap stays thawed."""
    with _heap:
        if not gc.get_freeze_count():
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()
