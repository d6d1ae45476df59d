"""The query loop every system is timed with: latency percentiles and recall@10 per mode.

One loop for all systems, single-threaded and one query at a time, so that the
figures differ only by the system behind `search`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from bench.common import latency_summary, recall_at_k
from bench.vector_search.data import MODES, QueryFilter


def measure(search: Callable[[np.ndarray, QueryFilter | None], list[int]], q: np.ndarray,
            filters: dict[str, list[QueryFilter | None]], truth: dict[str, np.ndarray],
            limit: int | None = None, modes=MODES, desc: str = "") -> dict:
    """Single-threaded query loop per mode: latency percentiles and recall@10."""
    out = {}
    n = len(q) if limit is None else min(limit, len(q))
    for mode in modes:
        for i in range(min(10, n)):  # warm caches and lazy initialisation
            search(q[i], filters[mode][i])
        times, found = [], []
        for i in tqdm(range(n), desc=f"{desc} {mode}", leave=False):
            t0 = time.perf_counter()
            hits = search(q[i], filters[mode][i])
            times.append(time.perf_counter() - t0)
            found.append(hits)
        out[mode] = {**latency_summary(times), "recall_at_10": recall_at_k(found, truth[mode][:n])}
    return out
