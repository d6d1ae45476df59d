"""The vector store interface: one surface, an embedded and a server backend.

Everything above the store speaks only these types and calls only the methods
of `VectorStore`, indexing included: a backend that indexes by itself keeps the
documented no-op defaults, so callers never ask which backend they hold. The
domain `Filter` is translated once, by `to_engine_filter`: the embedded engine
(qdrant_edge) and qdrant-client build filters from the same condition classes.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

# Every filterable payload field gets an index: without one, filtered search is
# slow or loses recall (FIELD.md). Keyword fields unless named in FLOAT_FIELDS.
KEYWORD_FIELDS = ("product_id", "category", "colour", "gender", "brand", "tags",
                  "pattern", "moderation_status", "model")
FLOAT_FIELDS = ("price",)
FACET_FIELDS = ("category", "colour", "gender", "brand")

_POINT_NAMESPACE = uuid.UUID("5b1e9a52-3f0e-4c55-9d3e-6f1c2a7b8d90")


POINT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A point id as `point_id` makes them (a UUID): listing offsets are point ids."""


def point_id(product_id: str) -> str:
    """The point id of a product: the same product always lands on the same point."""
    return str(uuid.uuid5(_POINT_NAMESPACE, product_id))


@dataclass
class Filter:
    """Conditions on payload fields, all of which must hold."""

    match: dict[str, Any] = field(default_factory=dict)  # field == value
    any: dict[str, Sequence[Any]] = field(default_factory=dict)  # field in values
    range: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    exclude: dict[str, Sequence[Any]] = field(default_factory=dict)  # field not in values
    exclude_ids: Sequence[str] = ()  # point ids left out

    def is_empty(self) -> bool:
        return not (self.match or self.any or self.range or self.exclude or self.exclude_ids)


class FilterModels(NamedTuple):
    """One engine's filter classes, for `to_engine_filter`.

    qdrant_edge and qdrant_client.models take the same keywords for `Filter(must,
    must_not)`, `FieldCondition(key, match, range)`, `MatchValue(value)` and
    `MatchAny(any)`; they differ only in the float range's class name (`RangeFloat`,
    `Range`) and in the id condition's argument, hence `Range` and `has_id` here.
    """

    Filter: Callable[..., Any]
    FieldCondition: Callable[..., Any]
    MatchValue: Callable[..., Any]
    MatchAny: Callable[..., Any]
    Range: Callable[..., Any]  # gte=, lte=
    has_id: Callable[[set[str]], Any]  # the condition "point id is one of these"


def to_engine_filter(f: Filter | None, models: FilterModels) -> Any:
    """`f` as the engine's filter object, or None (no filter) when `f` has no conditions."""
    if f is None or f.is_empty():
        return None
    must: list = [models.FieldCondition(key=k, match=models.MatchValue(value=v))
                  for k, v in f.match.items()]
    must += [models.FieldCondition(key=k, match=models.MatchAny(any=list(v)))
             for k, v in f.any.items()]
    must += [models.FieldCondition(key=k, range=models.Range(gte=lo, lte=hi))
             for k, (lo, hi) in f.range.items()]
    # must_not + MatchAny rather than MatchExcept: a point without the field is kept.
    must_not: list = [models.FieldCondition(key=k, match=models.MatchAny(any=list(v)))
                      for k, v in f.exclude.items()]
    if f.exclude_ids:
        must_not.append(models.has_id(set(f.exclude_ids)))
    return models.Filter(must=must or None, must_not=must_not or None)


@dataclass
class StoredPoint:
    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any]
    position: int | None = None
    """Its place in the whole ordered result (0: the best), where `search` knows it."""


def order_key(score: float, id: str) -> tuple[float, str]:
    """The one search order: score descending, ties by point id ascending (as `scroll`)."""
    return -score, id


@dataclass(frozen=True)
class After:
    """Continue a search strictly after this hit in (score desc, id asc) order.

    `position` is where the hit was when the cursor was made: only where to start
    looking, since the catalogue may have changed since."""

    score: float
    id: str
    position: int = 0


# Widening stops here: a window this large that still ends inside one group of equal
# scores is returned as it is (ties then lose their order, nothing worse).
MAX_WINDOW = 65_536


class VectorStore(ABC):
    """Cosine search over unit vectors with metadata payloads."""

    dim: int
    hnsw_ef: int | None = None
    """Search-time HNSW beam width (more: better recall, slower); None: the engine's default."""

    @abstractmethod
    def upsert(self, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points (vector and whole payload); applied when this returns."""

    @abstractmethod
    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge `payload` into the payload of existing points, keeping their vectors."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[StoredPoint]:
        """The points that exist among `ids`, in the order asked."""

    @abstractmethod
    def count(self, filter: Filter | None = None) -> int: ...

    @abstractmethod
    def _nearest(self, vector: np.ndarray, filter: Filter | None, limit: int, offset: int,
                 score_threshold: float | None, exact: bool) -> list[Hit]:
        """The engine's hits at [offset, offset + limit) by score, equal scores in any order."""

    def search(self, vector: np.ndarray, filter: Filter | None = None, limit: int = 10,
               offset: int = 0, score_threshold: float | None = None,
               exact: bool = False, after: After | None = None) -> list[Hit]:
        """Up to `limit` hits in (score desc, point id asc) order, from `offset` or, with
        `after`, strictly after that hit (`offset` is then ignored); each with its
        `position` in that order."""
        if after is None:  # one hit either side, to see where the edge groups end
            lo, hi = max(0, offset - 1), offset + limit + 1
        else:  # from the hit before the cursor's, so the window starts above its score
            lo, hi = max(0, after.position - 1), after.position + limit + 2
        grow = limit + 2
        while True:
            raw = self._nearest(vector, filter, hi - lo, lo, score_threshold, exact)
            window = Window(raw, lo, hi, limit, offset, after)
            if (window.head and window.tail) or hi - lo >= MAX_WINDOW:
                return window.page()
            lo = lo if window.head else max(0, lo - grow)
            hi = hi if window.tail else hi + grow
            grow *= 2

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

    def close(self) -> None:  # noqa: B027
        """Release files and connections."""

    def get(self, id: str) -> StoredPoint | None:
        found = self.retrieve([id])
        return found[0] if found else None


class Window:
    """The engine's hits at positions [lo, hi), sorted into the search order, and whether
    they hold the whole group of equal scores at the page's start (`head`) and end
    (`tail`): only then is the sorted window's slice the page.

    Equal scores sit together in the engine's score order, so a group is whole when a
    strictly higher score comes before it in the window (or the window starts at the
    top) and a strictly lower one after it (or the engine had no more)."""

    def __init__(self, raw: list[Hit], lo: int, hi: int, limit: int, offset: int,
                 after: After | None):
        self.hits = sorted(raw, key=lambda h: order_key(h.score, h.id))
        self.lo, self.limit = lo, limit
        exhausted = len(raw) < hi - lo
        if after is None:
            self.start = offset - lo
            self.head = (lo == 0 or self.start >= len(self.hits)  # past the last hit: empty
                         or self.hits[0].score > self.hits[self.start].score)
        else:
            keys = [order_key(h.score, h.id) for h in self.hits]
            self.start = bisect_right(keys, order_key(after.score, after.id))
            self.head = lo == 0 or (bool(self.hits) and self.hits[0].score > after.score)
        last = self.start + limit - 1
        self.tail = exhausted or (last < len(self.hits)
                                  and self.hits[-1].score < self.hits[last].score)

    def page(self) -> list[Hit]:
        page = self.hits[self.start:self.start + self.limit]
        for i, hit in enumerate(page):
            hit.position = self.lo + self.start + i
        return page
