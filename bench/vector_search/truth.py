"""Exact top-10 per query and filter mode: the reference recall@10 is measured against.

Computed once per size in the parent, before any system runs, and saved beside the
vectors so that every system's process reads the same answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.vector_search.data import DIM, K, QueryFilter, Workdir, generate, query_filters


def _top_k(scores: np.ndarray, ids: np.ndarray, k: int = K) -> np.ndarray:
    """Top-k ids per column of `scores` (rows are candidates), padded with -1."""
    out = np.full((scores.shape[1], k), -1, dtype=np.int64)
    if scores.shape[0] == 0:
        return out
    kk = min(k, scores.shape[0])
    part = np.argpartition(-scores, kk - 1, axis=0)[:kk]
    order = np.take_along_axis(scores, part, 0).argsort(0)[::-1]
    out[:, :kk] = ids[np.take_along_axis(part, order, 0)].T
    return out


def ground_truth(wd: Workdir, filters: dict[str, list[QueryFilter | None]]) -> dict:
    """Exact top-10 per mode; filtered modes by numpy over the subset matching each filter."""
    import faiss

    q, _ = wd.queries()
    cols = wd.columns()
    index = faiss.IndexFlatIP(DIM)
    for _, x in wd.read_chunks(desc="ground truth: load"):
        index.add(x)
    truth = {"none": index.search(q, K)[1].astype(np.int64)}
    x_all = faiss.rev_swig_ptr(index.get_xb(), wd.n * DIM).reshape(wd.n, DIM)  # no copy
    selectivity = {"none": 1.0}

    colour_truth = np.full((len(q), K), -1, np.int64)
    for colour in np.unique([f.colour for f in filters["colour"]]):
        qs = np.array([i for i, f in enumerate(filters["colour"]) if f.colour == colour])
        ids = np.nonzero(cols["colour"] == colour)[0]
        for a in range(0, len(qs), 256):
            colour_truth[qs[a:a + 256]] = _top_k(x_all[ids] @ q[qs[a:a + 256]].T, ids)
    truth["colour"] = colour_truth

    cp_truth = np.full((len(q), K), -1, np.int64)
    for cat in np.unique([f.category for f in filters["category+price"]]):
        qs = np.array([i for i, f in enumerate(filters["category+price"]) if f.category == cat])
        ids = np.nonzero(cols["category"] == cat)[0]
        scores = x_all[ids] @ q[qs].T
        price = cols["price"][ids]
        for j, qi in enumerate(qs):
            lo, hi = filters["category+price"][qi].price
            keep = (price >= lo) & (price <= hi)
            cp_truth[qi] = _top_k(scores[keep, j:j + 1], ids[keep])[0]
    truth["category+price"] = cp_truth
    for mode in ("colour", "category+price"):
        selectivity[mode] = float(np.mean([f.mask(cols).mean() for f in filters[mode][:200]]))
    np.savez(wd.root / "truth.npz", **truth)
    return selectivity


def prepared(root: Path, n: int, queries: int, seed: int) -> Workdir:
    """`n` points and `queries` held-out queries written under `root`, with the exact top k
    of every filter mode: what a run of one size measures against."""
    wd = Workdir(root, n, queries, chunk=min(50_000, n))
    gen = generate(wd, seed)
    ground_truth(wd, query_filters(gen, wd.queries()[1], seed))
    return wd
