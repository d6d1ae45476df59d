"""Ranking metrics with binary relevance, in plain numpy.

Every function takes `relevance`, a (queries, ranked items) boolean array in
ranked order: relevance[q, r] says whether the item at rank r + 1 of query q is
relevant. `ranked_relevance` builds it from a score matrix. Where a metric needs
the number of relevant items per query and the ranking is truncated, pass
`n_relevant`; by default it is counted from the (full) ranking. Each function
returns the mean over queries; queries with no relevant item count as zero.

For the product-caption protocol (a product's own caption must retrieve it)
there is exactly one relevant item per query, so Recall@k is the hit rate,
MRR is the mean of 1 / rank and NDCG@k is 1 / log2(rank + 1) within k.
"""

from __future__ import annotations

import numpy as np


def ranked_relevance(scores: np.ndarray, relevant: np.ndarray, k: int | None = None
                     ) -> np.ndarray:
    """Scores (queries, items) and relevant (queries, items) -> relevance in ranked order.

    Items are ranked by descending score; ties keep the item order. With `k`,
    only the top k ranks are kept.
    """
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    if k is not None:
        order = order[:, :k]
    return np.take_along_axis(np.asarray(relevant, dtype=bool), order, axis=1)


def _check(relevance: np.ndarray, k: int | None = None) -> np.ndarray:
    relevance = np.asarray(relevance, dtype=bool)
    if relevance.ndim != 2:
        raise ValueError(f"relevance must be (queries, ranks), got shape {relevance.shape}")
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return relevance


def _n_relevant(relevance: np.ndarray, n_relevant) -> np.ndarray:
    if n_relevant is None:
        return relevance.sum(1)
    return np.broadcast_to(np.asarray(n_relevant), relevance.shape[:1])


def recall_at_k(relevance: np.ndarray, k: int, n_relevant=None) -> float:
    """Mean fraction of each query's relevant items found in its top k."""
    relevance = _check(relevance, k)
    found = relevance[:, :k].sum(1)
    total = _n_relevant(relevance, n_relevant)
    return float(np.mean(np.where(total > 0, found / np.maximum(total, 1), 0.0)))


def precision_at_k(relevance: np.ndarray, k: int, n_relevant=None, capped: bool = False
                   ) -> float:
    """Mean fraction of the top k that is relevant.

    With `capped`, divide by min(k, relevant items) instead of k, so that a query
    with only three relevant items in the gallery can still score 1.0.
    """
    relevance = _check(relevance, k)
    found = relevance[:, :k].sum(1)
    if not capped:
        return float(np.mean(found / k))
    best = np.minimum(k, _n_relevant(relevance, n_relevant))
    return float(np.mean(np.where(best > 0, found / np.maximum(best, 1), 0.0)))


def mrr(relevance: np.ndarray) -> float:
    """Mean reciprocal rank of the first relevant item (0 when none is ranked)."""
    relevance = _check(relevance)
    hit = relevance.any(1)
    first = relevance.argmax(1) + 1
    return float(np.mean(np.where(hit, 1.0 / first, 0.0)))


def ndcg_at_k(relevance: np.ndarray, k: int, n_relevant=None) -> float:
    """Normalised discounted cumulative gain at k: sum rel_r / log2(r + 1), over its ideal."""
    relevance = _check(relevance, k)
    top = relevance[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (top * discounts).sum(1)
    ideal_hits = np.minimum(_n_relevant(relevance, n_relevant), k)
    ideal_discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = ideal_discounts[ideal_hits]
    return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)))
