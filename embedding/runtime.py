"""Thread settings of a whole process that runs the encoder.

They belong to the process, not to an `Encoder`: a thread pool's size is global state, and
changing it as a side effect of building an object would surprise every other part of the
process (and each test that builds one). So the composition root calls
`configure_threads()` once at process start, before it serves or works.
"""

from __future__ import annotations

import threading

import numpy  # noqa: F401  (loaded first: threadpoolctl limits only libraries already loaded)
from threadpoolctl import threadpool_limits

_lock = threading.Lock()
_configured = False


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
