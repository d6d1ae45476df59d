"""What a search scores by, and the stages the engine runs for it.

`Query` says it in the domain's words (photo vectors, words, fusion, diversity,
recommendations); `plan` turns it into `Stage`s, written once here and translated by
each backend into its own query objects (qdrant-edge-py's and qdrant-client's differ
only in names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass
class Sparse:
    """A sparse vector (keyword weights by token id)."""

    indices: list[int]
    values: list[float]


@dataclass
class Query:
    """What a search scores by: the photo vectors (`dense`, a query vector), the words
    (`sparse`), or both, fused by reciprocal rank ("rrf", the keyword side weighing
    `keyword_weight` against the photo side's 1 - keyword_weight) or by
    distribution-based score fusion ("dbsf"), each side contributing its best
    `candidates`. With `positives` (and `negatives`), photo rows of liked (disliked)
    products, the photo side recommends: nearest to a liked photo and farther from the
    disliked (best score). `diversity` > 0 reorders by maximal marginal relevance
    (0: relevance only, 1: diversity only)."""

    dense: np.ndarray | None = None
    sparse: Sparse | None = None
    fusion: str = "rrf"
    keyword_weight: float = 0.5
    candidates: int = 200
    diversity: float = 0.0
    positives: list[np.ndarray] = field(default_factory=list)
    negatives: list[np.ndarray] = field(default_factory=list)
    words_only: bool = False
    """Score by the words alone; `dense` then serves only the relevance cutoff."""
    words_first: bool = False
    """Fused: the products the words find rank above those only the photos find (the
    domain runs it as a head of its own: catalogue.search)."""
    head: Literal["fused", "looks"] | None = None
    """The words-first head (catalogue.search.Search.worded) in one engine query: "fused",
    the keyword side's best `candidates` in their fused order (the photo side scoring
    only those); "looks", those and the photo side's best `candidates` that have the
    words, in the photo side's order."""

    RRF_K = 2  # Qdrant's: at the paper's 60 a side's weight hardly moves its ranks' scores


@dataclass
class Stage:
    """One step of an engine query, written once here (`plan`) and translated by each
    backend: `kind` "dense" (nearest photos), "sparse" (keywords), "recommend", "fuse"
    (its `prefetch` stages' hits, fused), "mmr" (its prefetch's hits, diversified) or
    "keep" (its prefetch's hits that the search's filter keeps, `KEPT` added to their
    scores), scoring at most `limit` candidates, from those of its `prefetch` stages if
    any."""

    kind: str
    limit: int
    threshold: float | None = None
    prefetch: list[Stage] = field(default_factory=list)
    graph: bool = False
    """A photo stage searching the graph over the photos' mean (GRAPH_VECTOR), rather than
    scoring photo rows."""
    rescore: bool = True
    """Quantised candidates rescored with this stage's own original vectors; not where the
    next stage scores them anyway (the graph's candidates, by MaxSim over the rows)."""
    widened: bool = True
    """The engine's beam widened to the store's oversampling x limit for candidates that
    are not rescored; not for a loose filter's pool (`loose_pool`), whose beam is the
    larger of the store's and the pool."""


KEPT = 4.0
"""What a "keep" stage adds to the score of a candidate its filter keeps: scores by cosine
lie within [-1, 1], so those kept score over KEPT / 2 (its threshold), the rest under.
The filter is a condition of the engine's score formula, because a filter on a stage
would also hold in the stages under it, the graph search among them."""


# Candidates a relevance cutoff leaves for the keyword side to score (keyword search
# with min_score: words among the products that look the part).
THRESHOLD_POOL = 1000


def plan(query: Query, limit: int, threshold: float | None, pool: int | None = None,
         graph_alone: bool = False, loose: int | None = None) -> Stage:
    """The stages that answer `query`'s first `limit` hits. A relevance cutoff always holds
    on the photo side: the keyword side scores only products above it. Under diversity
    the candidates are a fixed pool, so that pages of it neither overlap nor skip.

    With `pool`, a store keeping its graph over the photos' mean, each photo stage scores
    by MaxSim over the photo rows only the best `pool` (or its own limit, if more)
    candidates of that graph; without (exact search), it scores every product's rows.
    With `graph_alone` (every product has one photo, so its mean is its photo, and MaxSim
    over its one row the same score), each photo stage searches the graph itself. With
    `query.head`, the photo stage scores the candidates of keyword stages instead.

    With `loose` (a filter `loose_pool` gathers a pool for: the backend then applies it
    in the "keep" stage alone), the photo stage scores the best `loose` found without the
    filter (by MaxSim over the rows of the graph's best, where products have several
    photos), those of them the filter keeps."""
    if loose and not (pool or graph_alone):
        raise ValueError("a loose filter's pool is found on the graph: none is searched")
    size = max(query.candidates, limit)
    kind = "recommend" if query.positives else "dense"

    def photo(stage_limit: int, stage_threshold: float | None,
              among: list[Stage] | None = None) -> Stage:
        if loose and not among:  # the best `loose` found as without the filter, then kept
            best = Stage(kind, loose if graph_alone else max(pool or 0, loose), graph=True,
                         rescore=False, widened=False)
            found = best if graph_alone else Stage(kind, loose, None, [best])
            among = [Stage("keep", loose, KEPT / 2, [found])]
        if among:  # its candidates are given (all of theirs): no graph search
            return Stage(kind, stage_limit, stage_threshold, among, graph=graph_alone)
        if graph_alone:
            return Stage(kind, stage_limit, stage_threshold, graph=True)
        graph = [Stage(kind, max(pool, stage_limit), graph=True, rescore=False)] if pool else []
        return Stage(kind, stage_limit, stage_threshold, graph)

    has_photo = query.dense is not None or bool(query.positives)
    threshold = threshold if has_photo else None
    first = size if query.diversity else limit
    if query.sparse is None:
        top = photo(first, threshold)
    elif query.head == "looks":
        narrowed = Stage("sparse", size, None, [photo(size, None)])  # looks with the words
        top = photo(first, threshold, [Stage("sparse", size), narrowed])
    else:
        looks = [photo(max(THRESHOLD_POOL, size), threshold)] if threshold is not None else []
        words = Stage("sparse", size, None, looks)
        if not has_photo or query.words_only:
            top = Stage("sparse", first, None, looks)
        else:
            among = [words] if query.head == "fused" else None
            top = Stage("fuse", first, None, [photo(size, threshold, among), words])
    if query.diversity:
        return Stage("mmr", limit, None, [top])
    return top


LOOSE_POOL_MAX = 1000
"""The most candidates a search gathers to apply a loose filter among (`loose_pool`)."""


def loose_pool(need: int, share: float, m: int, oversampling: float) -> int | None:
    """How many of the photos' best, found without the filter, a search for the best
    `need` hits applies a filter keeping `share` of the points among: `oversampling` x
    need / share; None where the filter goes into the graph search, as the engine does it.

    The engine links the points of each filter value among themselves (payload-aware
    HNSW) only for values holding at most 4 / K of the points, K the graph's links per
    point at its base layer (at most 2m: a share of 2 / m): past that, percolation theory
    says the main graph keeps them connected. Connected is not easy to walk: a filtered
    graph search steps only on points the filter keeps, and for black, a fifth of 1M
    clustered CLIP-like points, it found 0.912 of the exact top 10 at the store's beam.
    Among the best 6 x need / share found without the filter, 0.981 (0.986 over every
    colour against 0.970), in one engine query as fast as the filtered graph search
    (BENCHMARKS.md, "Loose filters in one engine query")."""
    if oversampling <= 0 or share * m <= 2:
        return None
    pool = math.ceil(oversampling * need / share)
    return pool if pool <= LOOSE_POOL_MAX else None


def gathers(query: Query) -> bool:
    """Whether a search for `query` may apply a loose filter among candidates (`loose_pool`):
    by a query vector alone, whose photo side is its whole answer; a fused or diverse
    search scores hundreds of candidates a side, too many to gather this way."""
    return (query.dense is not None and query.sparse is None and not query.positives
            and not query.diversity)
