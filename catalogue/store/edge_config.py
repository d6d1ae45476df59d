"""The embedded shard's configuration: vectors, words, HNSW, quantisation, payload indexes.

An `IndexConfig` (catalogue.store.index_config) as qdrant-edge-py's objects. A product's
photo rows (IMAGE_VECTOR, MaxSim) get no graph of their own: the HNSW graph, and the
quantised copy it is searched on, are built over one plain vector a product, its
photos' mean (GRAPH_VECTOR), and a search scores that graph's candidates by MaxSim over
the rows (catalogue.store.query.plan). A graph over the rows themselves held one node a
photo with MaxSim links between products: at 1M products of one photo it built in 1,335
s against 704 s for plain vectors, and searched half as fast (BENCHMARKS.md, "What the
several-photos layout costs"). A shard is
created unquantised with the configured HNSW parameters; the index build
(catalogue.store.edge_build) reopens its copy with the quantisation chosen for the
points it holds, which the engine then applies to every segment it builds: the engine
takes a changed configuration on load (`EdgeShard.load(path, config)`) and writes it to
the shard, so the choice travels with the copy that is swapped in.
"""

from __future__ import annotations

import json
from pathlib import Path

import qdrant_edge as qe

from catalogue.store.base import FULL_SCAN_THRESHOLD_KB, GRAPH_VECTOR, IMAGE_VECTOR, TEXT_VECTOR
from catalogue.store.edge_engine import WORDS
from catalogue.store.index_config import IndexConfig


def quantization(kind: str) -> qe.ScalarQuantizationConfig | qe.BinaryQuantizationConfig | None:
    """A quantisation by name (IndexConfig.quantization_for), the compressed vectors
    pinned in memory: searching them from disk would cost more than it saves."""
    if kind == "int8":
        return qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99,
                                           memory=qe.Memory.Pinned)
    if kind == "binary":
        return qe.BinaryQuantizationConfig(memory=qe.Memory.Pinned)
    if kind == "binary-2bit":
        return qe.BinaryQuantizationConfig(encoding=qe.BinaryQuantizationEncoding.TwoBits,
                                           memory=qe.Memory.Pinned)
    return None


def vector_params(dim: int, index: IndexConfig, kind: str = "none"
                  ) -> dict[str, qe.EdgeVectorParams]:
    """The photo rows (one multi-vector a product, MaxSim, no graph) and the graph vector
    (their mean), the graph's quantised as `kind`; with a quantised graph, the vectors
    it does not search are kept on disk where `originals_on_disk` says. Both in float32:
    an unquantised graph vector in float16 found 0.983 of one-photo queries' exact top
    10 at 50k products, against 0.995 (BENCHMARKS.md), and a shard keeps the storage
    type it was made with."""
    quantized = quantization(kind)
    originals = qe.Memory.Cold if quantized is not None and index.originals_on_disk else None
    rows = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine,
                               multivector_config=qe.MultiVectorConfig(
                                   qe.MultiVectorComparator.MaxSim),
                               hnsw_config=qe.HnswIndexConfig(  # no graph, nor any per value
                                   m=0, ef_construct=index.hnsw_ef_construct,
                                   full_scan_threshold=FULL_SCAN_THRESHOLD_KB, payload_m=0),
                               memory=originals)
    graph = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine,
                                quantization_config=quantized, memory=originals)
    return {IMAGE_VECTOR: rows, GRAPH_VECTOR: graph}


def hnsw(index: IndexConfig, full_scan_threshold_kb: int | None,
         payload_m: int | None = None) -> qe.HnswIndexConfig:
    """The graph's parameters; `payload_m`: links per point in the graphs per filter value
    (None: m). 32 against 16 found 0.977 of a colour filter's top 10 at 1M against 0.971,
    at 1.6x the filtered search time (BENCHMARKS.md), so the store keeps m."""
    return qe.HnswIndexConfig(
        m=index.hnsw_m, ef_construct=index.hnsw_ef_construct,
        full_scan_threshold=full_scan_threshold_kb or FULL_SCAN_THRESHOLD_KB, payload_m=payload_m)


def new_shard(dim: int, index: IndexConfig, indexing_threshold_kb: int | None,
              full_scan_threshold_kb: int | None) -> qe.EdgeConfig:
    """A new shard's configuration: unquantised until its first index build."""
    optimizers = (qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb)
                  if indexing_threshold_kb is not None else None)
    return qe.EdgeConfig(vectors=vector_params(dim, index),
                         hnsw_config=hnsw(index, full_scan_threshold_kb),
                         sparse_vectors={TEXT_VECTOR: WORDS}, optimizers=optimizers)


def for_build(path: Path, dim: int, index: IndexConfig, points: int) -> qe.EdgeConfig:
    """The configuration the shard at `path` is indexed with: quantised as chosen for
    `points` (a shard already quantised keeps its quantisation), its own full-scan
    threshold kept."""
    saved = _saved(path)
    have = _saved_quantization(saved)
    kind = index.quantization_for(points)
    if have and kind == "none":
        kind = next(iter(have))  # "scalar" or "binary": kept as it was built
        kind = {"scalar": "int8"}.get(kind, kind)
        if kind == "binary" and have["binary"].get("encoding") == "two_bits":
            kind = "binary-2bit"
    full_scan = (saved.get("hnsw_config") or {}).get("full_scan_threshold")
    return qe.EdgeConfig(vectors=vector_params(dim, index, kind),
                         hnsw_config=hnsw(index, full_scan))


def quantized(path: Path) -> str:
    """The quantisation the shard at `path` is configured with, by the engine's name
    ("scalar", "binary"...; "none" without)."""
    have = _saved_quantization(_saved(path))
    return next(iter(have)) if have else "none"


def _saved(path: Path) -> dict:
    """The configuration the engine wrote beside the shard at `path`."""
    return json.loads((path / "edge_config.json").read_text())


def _saved_quantization(saved: dict) -> dict | None:
    """The graph vectors' quantisation in a saved configuration, keyed by the engine's name."""
    return saved["vectors"].get(GRAPH_VECTOR, {}).get("quantization_config")


def search_params(index: IndexConfig, hnsw_ef: int | None, exact: bool) -> qe.SearchParams:
    """Exact search ignores the quantised copy; otherwise the best `oversampling` x limit
    candidates found on it are rescored with the originals (on segments with no
    quantised copy, the engine ignores both). With `acorn`, a filtered graph search also
    looks past neighbours the filter excludes (the engine skips it for loose filters)."""
    rescoring = (qe.QuantizationSearchParams(ignore=True) if exact else
                 qe.QuantizationSearchParams(rescore=index.rescore,
                                             oversampling=index.oversampling))
    return qe.SearchParams(exact=exact, hnsw_ef=hnsw_ef, quantization=rescoring,
                           acorn=qe.AcornSearchParams(enable=True) if index.acorn else None)


_INDEX_PARAMS = {"keyword": qe.KeywordIndexParams, "number": qe.FloatIndexParams,
                 "boolean": qe.BoolIndexParams, "date": qe.DatetimeIndexParams}


def field_index(kind: str, links: bool):
    """A payload index of `kind`, with or without its own HNSW links per value."""
    return _INDEX_PARAMS[kind](enable_hnsw=links)
