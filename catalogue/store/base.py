"""The vector store interface: one surface, an embedded and a server backend.

Everything above the store speaks only these types and calls only the methods
of `VectorStore`, indexing included: a backend that indexes by itself keeps the
documented no-op defaults, so callers never ask which backend they hold. The
domain `Filter` and its translation into both engines' objects are in
catalogue.store.filters.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from catalogue import metrics
from catalogue.store.filters import Filter
from catalogue.store.paging import MAX_WINDOW, After, Window, order_key
from catalogue.store.query import Query, Sparse, gathers, loose_pool

if TYPE_CHECKING:
    from catalogue.store.index_config import BeamWidth, IndexConfig

# Every filterable payload field gets an index: without one, filtered search is
# slow or loses recall (FIELD.md). These are the store's own; the shop's attributes
# add theirs (catalogue.attributes).
SYSTEM_INDEXES: tuple[tuple[str, str], ...] = (
    ("product_id", "keyword"), ("moderation_status", "keyword"), ("model", "keyword"),
    ("created_at", "number"), ("min_price", "number"))
IMAGE_VECTOR = "image"
"""The named multi-vector of a product's photos, one row per photo: search compares a query
with each and keeps the best (MaxSim), so a product matches by its best photo."""
GRAPH_VECTOR = "graph"
"""The named plain vector of a product's photos' mean (`graph_vector`), where a store keeps
its HNSW graph: a product is one node of it whatever its photos, and the candidates a
search finds there are scored by MaxSim over the rows (catalogue.store.query.plan)."""
TEXT_VECTOR = "text"
"""The named sparse vector of a product's words (catalogue.keywords), scored by BM25 with
the engine's IDF."""

FULL_SCAN_THRESHOLD_KB = 10_000
"""Both engines' default: a search under a filter keeping vectors of fewer KB, or of a
segment that small, scans them exactly instead of walking the graph."""

_POINT_NAMESPACE = uuid.UUID("5b1e9a52-3f0e-4c55-9d3e-6f1c2a7b8d90")

POINT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A point id as `point_id` makes them (a UUID): listing offsets are point ids."""


def graph_vector(rows: np.ndarray) -> np.ndarray:
    """The unit mean of a product's photo rows (its one photo's vector when it has one)."""
    mean = np.asarray(rows, np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def point_id(product_id: str) -> str:
    """The point id of a product: the same product always lands on the same point."""
    return str(uuid.uuid5(_POINT_NAMESPACE, product_id))


@dataclass
class StoredPoint:
    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None
    """One row per photo (n x dim), in the order of the payload's `images`."""
    text: Sparse | None = None
    """The product's words (catalogue.keywords), for keyword search."""


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any]
    position: int | None = None
    """Its place in the whole ordered result (0: the best), where `search` knows it."""


class VectorStore(ABC):
    """Cosine search over unit vectors with metadata payloads."""

    dim: int
    index: IndexConfig
    beam: BeamWidth
    full_scan_threshold_kb: int | None = None
    """The engine's full-scan threshold where the store sets it (None: the default)."""
    hnsw_ef: int | None = None
    """Search-time HNSW beam width (more: better recall, slower); None: the engine's default."""

    def rows(self, point: StoredPoint) -> np.ndarray:
        """A point's photo rows (n x dim, n >= 1), or ValueError naming what is wrong."""
        rows = None if point.vector is None else np.atleast_2d(
            np.asarray(point.vector, np.float32))
        if rows is None or rows.ndim != 2 or not len(rows) or rows.shape[1] != self.dim:
            raise ValueError(f"point {point.id} needs one or more vectors of size {self.dim}")
        return rows

    @abstractmethod
    def upsert(self, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points (vector and whole payload); applied when this returns."""

    @abstractmethod
    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge `payload` into the payload of existing points, keeping their vectors."""

    @abstractmethod
    def set_texts(self, texts: Mapping[str, Sparse]) -> None:
        """Replace existing points' words by point id, in one write (vectors, payloads stay)."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False, words: bool = True
                 ) -> list[StoredPoint]:
        """The points that exist among `ids`, in the order asked; with their vectors, the
        photo rows and, unless not `words`, the words (turning a page's words into Python
        took half the time of presenting it, which reads them only to explain: BENCHMARKS.md)."""
        if not ids:
            return []
        with metrics.store_call("retrieve"):
            return self._retrieve(ids, [IMAGE_VECTOR] if with_vectors and not words
                                  else with_vectors)

    @abstractmethod
    def _retrieve(self, ids: Sequence[str], with_vectors: bool | list[str]
                  ) -> list[StoredPoint]:
        """`with_vectors`: all, none, or those named, as both engines take it."""

    @abstractmethod
    def count(self, filter: Filter | None = None) -> int: ...

    @abstractmethod
    def _nearest(self, query: Query, filter: Filter | None, limit: int, offset: int,
                 score_threshold: float | None, exact: bool, with_payload: bool = True,
                 loose: int | None = None) -> list[Hit]:
        """The engine's hits at [offset, offset + limit) by score (in MMR's order with
        diversity), equal scores in any order. `score_threshold` holds on the photo side;
        without payloads, each hit's payload is empty. With `loose`, the filter is applied
        among the graph's best `loose` found without it (`plan`'s "keep" stage)."""

    @abstractmethod
    def _estimate(self, filter: Filter) -> int:
        """The points `filter` keeps, as the engine estimates them from its payload indexes."""

    def _scanned_whole(self) -> bool:
        """A store the engine scans whole anyway, under its full-scan threshold: there the
        embedded store scores the photo rows directly, which is exact and faster than
        scoring the means first (demo catalogue, 3,060 products of 5 photos: 3.5 against
        4.1 ms a search, BENCHMARKS.md)."""
        threshold_kb = self.full_scan_threshold_kb or FULL_SCAN_THRESHOLD_KB
        return self.beam.points() * self.dim * 4 < threshold_kb * 1024

    def _loose_pool(self, query: Query, filter: Filter | None, need: int) -> int | None:
        """The candidates to apply `filter` among for the best `need` hits where it is loose
        (catalogue.store.query.loose_pool); None where the filter goes into the graph
        search, or the store is scanned whole."""
        if (filter is None or filter.is_empty() or not gathers(query)
                or self.index.loose_oversampling <= 0 or self._scanned_whole()):
            return None
        share = self._estimate(filter) / max(1, self.beam.points())
        return loose_pool(need, share, self.index.hnsw_m, self.index.loose_oversampling)

    def _hits(self, query: Query, filter: Filter | None, limit: int, offset: int,
              score_threshold: float | None, exact: bool, with_payload: bool = True
              ) -> list[Hit]:
        """`_nearest`, a loose filter applied among the best photos found without it, as
        ranked on the quantised copy, in the same engine query."""
        pool = None if exact else self._loose_pool(query, filter, offset + limit)
        return self._nearest(query, filter, limit, offset, score_threshold, exact,
                             with_payload, loose=pool)

    def top(self, query: Query, filter: Filter | None = None, limit: int = 10,
            score_threshold: float | None = None) -> list[Hit]:
        """The engine's best `limit` hits without payloads, in (score desc, point id asc)
        order, equal scores at the edge chosen by the engine: a candidate set, where
        `search` would widen its window past every tie to page exactly."""
        with metrics.store_call("search"):
            hits = self._hits(query, filter, limit, 0, score_threshold, False,
                              with_payload=False)
        return sorted(hits, key=lambda h: order_key(h.score, h.id))

    def search(self, query: Query | np.ndarray, filter: Filter | None = None, limit: int = 10,
               offset: int = 0, score_threshold: float | None = None,
               exact: bool = False, after: After | None = None) -> list[Hit]:
        """Up to `limit` hits in (score desc, point id asc) order, from `offset` or, with
        `after`, strictly after that hit (`offset` is then ignored); each with its
        `position` in that order. A diverse query (MMR) keeps the engine's order and pages
        by offset only."""
        if limit <= 0:  # nothing to find (a window of none would widen to the end)
            return []
        query = query if isinstance(query, Query) else Query(dense=query)
        if query.diversity:
            if after is not None:
                raise ValueError("diverse results page by offset, not by cursor")
            with metrics.store_call("search"):
                hits = self._hits(query, filter, limit, offset, score_threshold, exact)
            for i, hit in enumerate(hits):
                hit.position = offset + i
            return hits
        if after is None:  # one hit either side, to see where the edge groups end
            lo, hi = max(0, offset - 1), offset + limit + 1
        else:  # from the hit before the cursor's, so the window starts above its score
            lo, hi = max(0, after.position - 1), after.position + limit + 2
        grow = limit + 2
        while True:
            with metrics.store_call("search"):
                raw = self._hits(query, filter, hi - lo, lo, score_threshold, exact)
            window = Window(raw, lo, hi, limit, offset, after)
            if (window.head and window.tail) or hi - lo >= MAX_WINDOW:
                return window.page()
            lo = lo if window.head else max(0, lo - grow)
            hi = hi if window.tail else hi + grow
            grow *= 2

    @abstractmethod
    def _ordered(self, key: str, descending: bool, filter: Filter | None, limit: int,
                 start_from: float | None) -> list[Hit]:
        """The engine's first `limit` points by payload `key` from `start_from` on (included),
        each hit's score its value; equal values in any order, points without `key` left out."""

    def order(self, key: str, descending: bool = False, filter: Filter | None = None,
              limit: int = 10, offset: int = 0, after: After | None = None) -> list[Hit]:
        """Up to `limit` points by payload `key`, equal values by point id, from `offset` or
        strictly after `after` (whose score is a value); each hit's score is its value."""
        sign = -1.0 if descending else 1.0

        def key_of(h: Hit) -> tuple[float, str]:
            return sign * h.score, h.id

        skip = 0 if after else offset
        fetch = skip + limit + 1
        while True:
            with metrics.store_call("order"):
                raw = self._ordered(key, descending, filter, fetch,
                                    after.score if after else None)
            hits = sorted(raw, key=key_of)
            if after is not None:
                hits = [h for h in hits if key_of(h) > (sign * after.score, after.id)]
            last = skip + limit - 1
            # Only the engine's last value may be a tie group cut short: the page is whole
            # when it ends before that value, or the engine had no more.
            if (len(raw) < fetch or fetch >= MAX_WINDOW
                    or (last < len(hits) and key_of(hits[last])[0] < sign * raw[-1].score)):
                page = hits[skip:skip + limit]
                first = after.position + 1 if after else offset
                for i, hit in enumerate(page):
                    hit.position = first + i
                return page
            fetch *= 2

    @abstractmethod
    def scroll(self, filter: Filter | None = None, limit: int = 100,
               offset: str | None = None) -> tuple[list[StoredPoint], str | None]:
        """A page of points in id order and the id to continue from (None at the end)."""

    @abstractmethod
    def facet(self, key: str, filter: Filter | None = None, limit: int = 50) -> dict[str, int]:
        """Exact counts of each value of `key` among points matching `filter`."""

    # -- indexing: no-ops by default, for a backend that indexes by itself -------------
    def unindexed(self) -> int:
        """Points not yet in the vector index, searched by brute force until they are;
        0 by default, for a backend that does not say."""
        return 0

    @property
    def optimizing(self) -> bool:
        """True while `optimize()` runs in this process (search keeps answering)."""
        return False

    def optimize(self) -> None:  # noqa: B027 - a no-op where the backend indexes by itself
        """Index the points added since the last call, blocking the caller until done."""

    def optimize_in_background(self, force: bool = False) -> bool:
        """Start `optimize()` without waiting if enough points await indexing (any, with
        `force`); True if one started. Never starts one by default."""
        return False

    def wait_for_optimizer(self, timeout: float | None = None) -> None:  # noqa: B027
        """Wait for a background `optimize()` to finish, at most `timeout` seconds."""

    def publish(self, name: str) -> None:  # noqa: B027 - a no-op where names mean nothing
        """Let `name` stand for this store, for outside tools (a Qdrant server's alias on
        the live version's collection); nothing by default."""

    @property
    def photos(self) -> int | None:
        """The most photos a product brought, where the store keeps count (1: every
        product one, so its photo is the one to show); None, unknown, by default."""
        return None

    def version(self) -> Hashable | None:
        """Moves whenever what a search answers may change, where this process sees every
        write (the embedded store); None where others write too (a server)."""
        return None

    def close(self) -> None:  # noqa: B027
        """Release files and connections."""

    def get(self, id: str) -> StoredPoint | None:
        found = self.retrieve([id])
        return found[0] if found else None
