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
from bench.vector_search.data import COLOURS, MODES, QueryFilter


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
        if mode == "colour":  # common colours get no links of their own (BENCHMARKS.md)
            out[mode]["recall_by_colour"] = by_colour(found, truth[mode][:n], filters[mode][:n])
    return out


def by_colour(found: list, truth: np.ndarray, filters: list) -> dict[str, float]:
    """Recall@10 of the colour mode's queries by the colour filtered on."""
    asked = np.array([f.colour for f in filters])
    return {COLOURS[c]: recall_at_k([found[i] for i in np.flatnonzero(asked == c)],
                                    truth[asked == c]) for c in np.unique(asked)}
