"""How the photo vectors are indexed: quantisation, rescoring, HNSW build parameters.

One engine-neutral description that both stores translate (catalogue.store.edge_config
for the embedded engine, catalogue.store.server for a Qdrant server), so that a setting
means the same on both. The figures behind the defaults are in BENCHMARKS.md ("Vector
search"): 512-d CLIP-like vectors at 100k and 1M points on two cores.

Quantisation keeps a compressed copy of every photo vector in memory and searches the
HNSW graph on it; the best `oversampling` x limit candidates are then rescored with the
original vectors, which can stay on disk. `auto` quantises to int8 once the store holds
`quantization_threshold` points: below it the originals are small, exact enough and
cheap to keep in memory, so compressing them buys nothing. The choice is made when the
index is built (the embedded store's optimize, a server store's open and optimize), so a
store that grows past the threshold is quantised at its next build; a store already
quantised stays so (a reindex into a new version builds afresh).

The search beam grows with the store (`grown_beam`): a graph of ten times the points
needs a wider beam to find as much of the exact top 10, and a fixed beam chosen for a
small store would lose recall as the catalogue grows (see `BeamWidth`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from catalogue.store.base import SYSTEM_INDEXES

if TYPE_CHECKING:
    from catalogue.store.query import Stage

Quantization = Literal["auto", "none", "int8", "binary", "binary-2bit"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)


@dataclass(frozen=True)
class IndexConfig:
    """See the module docstring; every field has a VITRINE_* setting (README)."""

    quantization: str = "auto"
    quantization_threshold: int = 100_000
    """Points from which `auto` quantises (int8 scalar)."""
    rescore: bool = True
    """Rescore the quantised candidates with the original vectors."""
    oversampling: float = 2.0
    """Candidates rescored per hit asked for (1: no more than asked)."""
    originals_on_disk: bool = True
    """Where a quantised index keeps its original vectors: read from disk (the page cache)
    for rescoring only. Unquantised vectors stay in memory: the graph search reads them."""
    graph_pool: int = 256
    """Candidates of the graph over the photos' mean that MaxSim over the rows scores, at
    least (`pool`; no more than the search beam finds): a product of several photos may
    match a query by one photo better than by their mean, so the graph's best few are not
    always the rows' best. (While every product has one photo, the graph alone answers.)"""
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef_growth: int = 128
    """Search beam added per tenfold of points beyond BEAM_FROM (0: a fixed beam)."""
    filter_links: bool = True
    """Extra graph links per value of the shop's filterable fields (Qdrant's payload-aware
    HNSW): a graph per value, paid at every index build; without them a filter of one
    colour in twelve found 0.44 of its top 10 at 100k points, and even unfiltered recall
    fell (0.96 against 0.997), as they also add links to the main graph."""
    acorn: bool = False
    """Filtered graph searches also look at the neighbours of neighbours the filter
    excludes (ACORN), so a selective filter keeps its recall without per-value links."""
    loose_oversampling: float = 6.0
    """A filter keeping more of the points than the engine links per value (2 / m) is
    applied among this many x limit / its share of the best found without it (0: never;
    catalogue.store.query.loose_pool)."""
    optimizer_memory_mb: int = 0
    """Private memory the embedded store's index-building child may take (0: no limit)."""

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization {self.quantization!r}: one of {QUANTIZATIONS}")

    def quantization_for(self, points: int) -> str:
        """The quantisation an index of `points` points is built with."""
        if self.quantization == "auto":
            return "int8" if points >= self.quantization_threshold else "none"
        return self.quantization

    def pool(self, limit: int, beam: int | None) -> int:
        """Candidates of the graph over the photos' mean scored by MaxSim for `limit` hits,
        searched with `beam`: oversampling x limit, and at least `graph_pool` of those the
        beam finds anyway; without rescoring, the graph's own best `limit` (ranked on the
        quantised copy)."""
        if not self.rescore:
            return limit
        wanted = math.ceil(limit * self.oversampling)
        return max(wanted, self.graph_pool if beam is None else min(self.graph_pool, beam))

    def for_stage(self, stage: Stage) -> IndexConfig:
        """The settings one stage of a query searches with: it rescores only where the
        stage rescores its own candidates, and the store's oversampling widens the
        engine's beam only where the stage is `widened` (a loose filter's pool is not)."""
        return replace(self, rescore=self.rescore and stage.rescore,
                       oversampling=self.oversampling if stage.widened else 1.0)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexConfig:
        return cls(**data)


BEAM_FROM = 100_000
"""Points up to which the configured beam (VITRINE_HNSW_EF) is searched as it is."""
BEAM_REFRESH_S = 60.0


def grown_beam(base: int | None, growth: int, points: int) -> int | None:
    """The search beam for `points` points: `base` up to BEAM_FROM, then `growth` more per
    tenfold. Measured on 512-d CLIP-like vectors, int8 with rescoring (BENCHMARKS.md): 256
    found 0.997 of the exact top 10 at 100k but 0.980 at 1M, where 384 (256 + 128) found
    0.990. None (the engine's default beam) stays None."""
    if base is None or growth <= 0 or points <= BEAM_FROM:
        return base
    return round(base + growth * math.log10(points / BEAM_FROM))


class BeamWidth:
    """A store's search beam (`grown_beam`) over its point count, read at most every
    BEAM_REFRESH_S seconds: a count on every search would cost more than it tells."""

    def __init__(self, count: Callable[[], int]):
        self._count, self._points, self._read_at = count, 0, -math.inf

    def points(self) -> int:
        """The store's points, as last counted."""
        now = time.monotonic()
        if now - self._read_at >= BEAM_REFRESH_S:
            self._points, self._read_at = self._count(), now
        return self._points

    def __call__(self, base: int | None, growth: int) -> int | None:
        if base is None or growth <= 0:
            return base
        return grown_beam(base, growth, self.points())


def linked_fields(index: IndexConfig, indexes: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The payload fields of `indexes` (path, type) that get graph links per value: the
    shop's filterable fields where `filter_links` is on, never the store's own (a shop
    filters by colour, never by product id, model or moderation status, and each linked
    field costs a graph per value at every build)."""
    if not index.filter_links:
        return frozenset()
    return frozenset(name for name, _ in indexes) - {name for name, _ in SYSTEM_INDEXES}


def payload_indexes(schema: Mapping[str, Any] | None) -> dict[str, tuple[Any, bool]]:
    """The payload indexes an engine reports (the embedded shard's or a collection's
    payload schema: both carry `data_type` and `params`), as name -> (data type, whether it
    has graph links per value: yes unless its params say no)."""
    return {name: (info.data_type, getattr(info.params, "enable_hnsw", None) is not False)
            for name, info in (schema or {}).items()}
