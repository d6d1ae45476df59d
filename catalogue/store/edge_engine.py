"""qdrant-edge-py's side of the embedded store: the domain's filters, vectors, words and
query stages as the engine's objects, and the engine's own answers back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from tqdm import tqdm

from catalogue.store.base import GRAPH_VECTOR, IMAGE_VECTOR, TEXT_VECTOR, graph_vector
from catalogue.store.filters import Filter, FilterModels, to_engine_filter
from catalogue.store.query import KEPT, Query, Sparse, Stage

EDGE_FILTERS = FilterModels(qe.Filter, qe.FieldCondition, qe.MatchValue, qe.MatchAny,
                            qe.RangeFloat, qe.RangeDateTime,
                            lambda ids: qe.HasIdCondition(point_ids=set(ids)),
                            lambda key, f: qe.NestedCondition(key, f))
INDEX_TYPES = {"keyword": qe.PayloadSchemaType.Keyword, "number": qe.PayloadSchemaType.Float,
               "boolean": qe.PayloadSchemaType.Bool, "date": qe.PayloadSchemaType.Datetime}
WORDS = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)  # BM25's IDF, by the engine
CURRENT = "CURRENT"
"""The file in a store's folder naming its live generation (shard-<n>)."""
PHOTOS = "PHOTOS"
"""The file holding the most photos a product written to the store had: with one, the
graph over the photos' mean answers alone (catalogue.store.query.plan)."""


def engine_filter(f: Filter | None) -> qe.Filter | None:
    return to_engine_filter(f, EDGE_FILTERS)


def photo_rows(v) -> np.ndarray | None:
    """A stored vector as photo rows (n x dim); a shard of the one-photo layout had one."""
    if isinstance(v, dict):
        v = v.get(IMAGE_VECTOR, v.get(""))
    return None if v is None else np.atleast_2d(np.asarray(v, dtype=np.float32))


def rows_of(record: Any) -> np.ndarray:
    rows = photo_rows(record.vector)
    if rows is None:
        raise RuntimeError(f"point {record.id} has no vector to carry over")
    return rows


def unindexed_count(shard: qe.EdgeShard) -> int:
    """Points whose vectors are not in an index yet. The engine counts the indexed vectors of
    every name: a point's words count at once, its photo rows and its graph vector both
    once the segment holding them is built."""
    info = shard.info()
    words = shard.count(qe.CountRequest(exact=True, filter=qe.Filter(
        must=[qe.HasVectorCondition(TEXT_VECTOR)])))
    return info.points_count - (info.indexed_vectors_count - words) // 2


def text_of(v: Any) -> Sparse | None:
    words = v.get(TEXT_VECTOR) if isinstance(v, dict) else None
    return None if words is None else Sparse(list(words.indices), list(words.values))


def sparse_vector(text: Sparse) -> qe.SparseVector:
    return qe.SparseVector(text.indices, text.values)


def point_vectors(rows: np.ndarray, text: Sparse | None) -> dict[str, Any]:
    vectors: dict[str, Any] = {IMAGE_VECTOR: rows.tolist(),
                               GRAPH_VECTOR: graph_vector(rows).tolist()}
    if text is not None and text.indices:
        vectors[TEXT_VECTOR] = sparse_vector(text)
    return vectors


def scoring(stage: Stage, query: Query, conditions: qe.Filter | None = None) -> Any:
    """A stage's scoring as the engine's query object; a "keep" stage's by `conditions`."""
    def rows(vectors: list[np.ndarray]) -> list[Any]:
        return [np.atleast_2d(v).astype(np.float32).tolist() for v in vectors]

    dense = [] if query.dense is None else rows([query.dense])[0]
    if stage.kind == "keep":
        assert conditions is not None  # a keep stage comes with the filter it applies
        e = qe.Expression
        return qe.Formula(e.Sum([e.Variable("$score"),
                                 e.Mult([e.Constant(KEPT), e.Condition(conditions)])]))
    if stage.graph:  # the graph's vectors are plain: each photo of a liked product one
        if stage.kind == "dense":
            return qe.Query.Nearest(graph_vector(np.asarray(dense)).tolist(),
                                    GRAPH_VECTOR)
        return qe.Query.RecommendBestScore(qe.RecommendQuery(
            [r for v in rows(query.positives) for r in v],
            [r for v in rows(query.negatives) for r in v]), GRAPH_VECTOR)
    if stage.kind == "dense":
        return qe.Query.Nearest(dense, IMAGE_VECTOR)
    if stage.kind == "sparse":
        assert query.sparse is not None
        return qe.Query.Nearest(qe.SparseVector(query.sparse.indices, query.sparse.values),
                                TEXT_VECTOR)
    if stage.kind == "recommend":
        return qe.Query.RecommendBestScore(
            qe.RecommendQuery(rows(query.positives), rows(query.negatives)), IMAGE_VECTOR)
    if stage.kind == "fuse":
        return (qe.Fusion.Dbsf() if query.fusion == "dbsf" else
                qe.Fusion.Rrf(Query.RRF_K, [1 - query.keyword_weight, query.keyword_weight]))
    pool = stage.prefetch[0].limit if stage.prefetch else stage.limit
    return qe.Mmr(dense, 1 - query.diversity, pool, IMAGE_VECTOR)


def with_images(payload: dict[str, Any]) -> dict[str, Any]:
    """A one-photo payload with its photo listed in `images`, as products are kept now."""
    if "images" not in payload and payload.get("image_sha256"):
        payload["images"] = [{"sha256": payload["image_sha256"],
                              "display_sha256": payload.get("display_sha256")}]
    return payload


def copy_points(old: qe.EdgeShard, fresh: qe.EdgeShard, batch: int = 256) -> int:
    """Every point of `old` (a shard of an earlier layout) written into `fresh` in this one,
    payloads and words kept; returns the most photos a point had."""
    offset, most = None, 0
    bar = tqdm(total=old.count(qe.CountRequest(exact=True)), desc="converting the shard",
               unit="point", disable=None)  # a bar on a terminal, none in a log
    while True:
        records, offset = old.scroll(qe.ScrollRequest(offset=offset, limit=batch,
                                                      with_payload=True, with_vector=True))
        rows = [rows_of(r) for r in records]
        if records:
            fresh.update(qe.UpdateOperation.upsert_points([
                qe.Point(r.id, point_vectors(v, text_of(r.vector)), with_images(r.payload or {}))
                for r, v in zip(records, rows, strict=True)]))
        most = max([most, *map(len, rows)])
        bar.update(len(records))
        if offset is None:
            bar.close()
            return most


def legacy_model(folder: Path) -> str | None:
    """The model recorded in a point of the shard in `folder` (a store from before model
    versions), or None when it has none."""
    marker = folder / CURRENT
    shard_path = folder / f"shard-{marker.read_text().strip() if marker.exists() else 0}"
    if not shard_path.exists():
        return None
    shard = qe.EdgeShard.load(str(shard_path))
    try:
        records, _ = shard.scroll(qe.ScrollRequest(limit=1, with_payload=True))
        return (records[0].payload or {}).get("model") if records else None
    finally:
        shard.close()


def move_shard(source: Path, target: Path) -> None:
    """The store kept in `source` (a store from before model versions) moved into
    `target`: its generations, then its markers, CURRENT last."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in [*source.glob("shard-*"), source / PHOTOS, source / CURRENT]:
        if entry.exists():
            entry.rename(target / entry.name)
