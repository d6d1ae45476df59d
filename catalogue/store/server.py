"""Server backend: a Qdrant server or cluster through qdrant-client.

The same class runs against `QdrantClient(url=...)` in the cluster profile and
against qdrant-client's in-process local mode (`location=":memory:"` or
`path=...`) in tests, so the client code under test is the code that ships.
The server's optimizer indexes new points by itself, so the indexing methods
keep `VectorStore`'s no-op defaults except `unindexed()`, which the server
reports, and `optimize()`, which turns quantisation on once the collection has grown
past the threshold (catalogue.store.index_config): the server then requantises and
reindexes in the background, as it does for any configuration change.

`connect` to a URL first reads the server's version and refuses one this qdrant-client
does not support (`check_server_version`); the images pin qdrant-client to the minor
version of the Qdrant image (pyproject.toml, docker-compose.yml, deploy/k8s/qdrant.yaml).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from catalogue.store.base import (
    GRAPH_VECTOR,
    IMAGE_VECTOR,
    SYSTEM_INDEXES,
    TEXT_VECTOR,
    Hit,
    StoredPoint,
    VectorStore,
    graph_vector,
)
from catalogue.store.filters import Filter, FilterModels, to_engine_filter
from catalogue.store.index_config import (
    BeamWidth,
    IndexConfig,
    linked_fields,
    payload_indexes,
)
from catalogue.store.query import KEPT, Query, Sparse, Stage, plan
from catalogue.store.server_config import INDEX_TYPES, create, field_index, quantization

log = logging.getLogger(__name__)

SERVER_FILTERS = FilterModels(
    models.Filter, models.FieldCondition, models.MatchValue, models.MatchAny, models.Range,
    models.DatetimeRange, lambda ids: models.HasIdCondition(has_id=list(ids)),
    lambda key, f: models.NestedCondition(nested=models.Nested(key=key, filter=f)))


def _filter(f: Filter | None) -> models.Filter | None:
    return to_engine_filter(f, SERVER_FILTERS)


def _words(text: Sparse) -> models.SparseVector:
    return models.SparseVector(indices=text.indices, values=text.values)


def _text(vector: Any) -> Sparse | None:
    words = vector.get(TEXT_VECTOR) if isinstance(vector, dict) else None
    return None if words is None else Sparse(list(words.indices), list(words.values))


def _vectors(rows: np.ndarray, text: Sparse | None, graph: bool) -> dict[str, Any]:
    vectors: dict[str, Any] = {IMAGE_VECTOR: rows.tolist()}
    if graph:
        vectors[GRAPH_VECTOR] = graph_vector(rows).tolist()
    if text is not None and text.indices:
        vectors[TEXT_VECTOR] = _words(text)
    return vectors


def _scoring(stage: Stage, query: Query, conditions: models.Filter | None = None
             ) -> tuple[Any, str | None]:
    """A stage's scoring as qdrant-client's query object, and the vector it uses; a "keep"
    stage's by `conditions`."""
    def rows(vectors: list[np.ndarray]) -> list[list[list[float]]]:
        return [np.atleast_2d(v).astype(np.float32).tolist() for v in vectors]

    dense = [] if query.dense is None else rows([query.dense])[0]
    if stage.kind == "keep":
        return models.FormulaQuery(formula=models.SumExpression(sum=[
            "$score", models.MultExpression(mult=[KEPT, conditions])])), None
    if stage.graph:  # the graph's vectors are plain: each photo of a liked product one
        if stage.kind == "dense":
            mean = graph_vector(np.asarray(dense)).tolist()
            return models.NearestQuery(nearest=mean), GRAPH_VECTOR
        return models.RecommendQuery(recommend=models.RecommendInput(
            positive=[r for v in rows(query.positives) for r in v],
            negative=[r for v in rows(query.negatives) for r in v] or None,
            strategy=models.RecommendStrategy.BEST_SCORE)), GRAPH_VECTOR
    if stage.kind == "dense":
        return models.NearestQuery(nearest=dense), IMAGE_VECTOR
    if stage.kind == "sparse":
        assert query.sparse is not None
        return models.NearestQuery(nearest=_words(query.sparse)), TEXT_VECTOR
    if stage.kind == "recommend":
        return models.RecommendQuery(recommend=models.RecommendInput(
            positive=rows(query.positives), negative=rows(query.negatives) or None,
            strategy=models.RecommendStrategy.BEST_SCORE)), IMAGE_VECTOR
    if stage.kind == "fuse":
        if query.fusion == "dbsf":
            return models.FusionQuery(fusion=models.Fusion.DBSF), None
        return models.RrfQuery(rrf=models.Rrf(k=Query.RRF_K, weights=[
            1 - query.keyword_weight, query.keyword_weight])), None
    pool = stage.prefetch[0].limit if stage.prefetch else stage.limit
    return models.NearestQuery(nearest=dense, mmr=models.Mmr(
        diversity=query.diversity, candidates_limit=pool)), IMAGE_VECTOR


def is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def client_for(url: str, api_key: str | None = None) -> QdrantClient:
    """`url` is http(s)://host:port, ':memory:', or a folder path (local mode)."""
    if url == ":memory:":
        return QdrantClient(location=":memory:")
    if is_remote(url):
        # The client's own check only warns, from a thread: `check_server_version` refuses.
        return QdrantClient(url=url, api_key=api_key, timeout=30, check_compatibility=False)
    return QdrantClient(path=url)


class IncompatibleServer(RuntimeError):
    """The Qdrant server's version is one this qdrant-client does not support."""


def _major_minor(text: str) -> tuple[int, int] | None:
    try:
        major, minor = text.lstrip("v").split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def check_server_version(client: QdrantClient, url: str) -> str:
    """The server's version, logged with the client's; refused unless the two have the
    same major version and minor versions at most one apart (Qdrant's compatibility rule,
    which qdrant-client's own check applies), with a warning when they are one apart."""
    ours, theirs = version("qdrant-client"), client.info().version
    log.info("Qdrant server %s at %s; qdrant-client %s", theirs, url, ours)
    client_mm, server_mm = _major_minor(ours), _major_minor(theirs)
    if client_mm is None or server_mm is None or client_mm[0] != server_mm[0] \
            or abs(client_mm[1] - server_mm[1]) > 1:
        raise IncompatibleServer(
            f"Qdrant server {theirs} at {url} and qdrant-client {ours} are not compatible "
            "(the same major version and minor versions at most one apart are): run the "
            "Qdrant image the deployment pins, or install qdrant-client of its minor version")
    if client_mm != server_mm:
        log.warning("Qdrant server %s and qdrant-client %s are one minor version apart "
                    "(supported; pin them to the same one)", theirs, ours)
    return theirs


@dataclass(frozen=True)
class Replication:
    """How a collection the store creates spreads over a distributed Qdrant (a single node
    and local mode ignore it; an existing collection keeps its own)."""

    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1


def _rows(vector: Any) -> np.ndarray | None:
    if isinstance(vector, dict):
        vector = vector.get(IMAGE_VECTOR)
    return None if vector is None else np.atleast_2d(np.asarray(vector, np.float32))


class ServerStore(VectorStore):
    def __init__(self, client: QdrantClient, collection: str, dim: int,
                 hnsw_ef: int | None = None, indexes: Sequence[tuple[str, str]] = (),
                 replication: Replication | None = None, index: IndexConfig | None = None):
        """`indexes`: (payload path, type) of the shop's attributes, kept in step on start;
        `index`: quantisation, rescoring and HNSW parameters of a collection it creates."""
        self.client, self.collection, self.dim, self.hnsw_ef = client, collection, dim, hnsw_ef
        self.index = index or IndexConfig()
        self.beam = BeamWidth(lambda: client.count(collection, exact=False).count)
        replication = replication or Replication()
        create(client, collection, dim, self.index, astuple(replication))
        info = client.get_collection(collection)
        made = info.config.params
        kept = (made.shard_number, made.replication_factor, made.write_consistency_factor)
        if None not in kept and kept != astuple(replication):
            log.warning("collection %r keeps the shards, replication and write consistency "
                        "it was made with, %s, not the settings' %s", collection, kept,
                        astuple(replication))
        vectors = info.config.params.vectors
        params = vectors.get(IMAGE_VECTOR) if isinstance(vectors, dict) else None
        # A collection made before the graph over the photos' mean keeps its graph over the
        # rows (a server adds no vector to a collection) until a reindex makes a new one.
        self.graph = isinstance(vectors, dict) and GRAPH_VECTOR in vectors
        if params is None or params.size != dim:
            size = params.size if params else getattr(vectors, "size", None)
            raise ValueError(f"collection {collection!r} holds vectors of size {size}"
                             f"{'' if params else ' in the one-photo layout'}, the model "
                             f"makes {dim} per photo: use a new collection (VITRINE_COLLECTION)")
        wanted = dict(SYSTEM_INDEXES) | dict(indexes)
        linked = linked_fields(self.index, indexes)
        have = payload_indexes(info.payload_schema)
        for name, kind in wanted.items():
            links = name in linked
            if have.get(name) != (INDEX_TYPES[kind], links):
                client.create_payload_index(collection, name, field_index(kind, links),
                                            wait=True)
        for name in set(have) - set(wanted):
            client.delete_payload_index(collection, name, wait=True)
        self.optimize()

    @classmethod
    def connect(cls, url: str, collection: str, dim: int, api_key: str | None = None,
                hnsw_ef: int | None = None, indexes: Sequence[tuple[str, str]] = (),
                replication: Replication | None = None, index: IndexConfig | None = None
                ) -> ServerStore:
        """`url` is http(s)://host:port (its version checked first), ':memory:', or a folder
        path (local mode)."""
        client = client_for(url, api_key)
        try:
            if is_remote(url):
                check_server_version(client, url)
            return cls(client, collection, dim, hnsw_ef, indexes, replication, index)
        except BaseException:
            client.close()
            raise

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        self.client.upsert(self.collection, wait=True, points=[
            models.PointStruct(id=p.id, vector=_vectors(self.rows(p), p.text, self.graph),
                               payload=p.payload)
            for p in points])

    def set_texts(self, texts: Mapping[str, Sparse]) -> None:
        if texts:
            self.client.update_vectors(self.collection, wait=True, points=[
                models.PointVectors(id=id, vector={TEXT_VECTOR: _words(t)})
                for id, t in texts.items()])

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if ids:
            self.client.set_payload(self.collection, payload=payload, points=list(ids), wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, points_selector=models.PointIdsList(
                points=list(ids)), wait=True)

    def _retrieve(self, ids: Sequence[str], with_vectors: bool | list[str]
                  ) -> list[StoredPoint]:
        records = self.client.retrieve(self.collection, list(ids), with_payload=True,
                                       with_vectors=with_vectors)
        by_id = {str(r.id): StoredPoint(str(r.id), r.payload or {}, _rows(r.vector),
                                        _text(r.vector)) for r in records}
        return [by_id[i] for i in ids if i in by_id]

    def count(self, filter: Filter | None = None) -> int:
        return self.client.count(self.collection, count_filter=_filter(filter),
                                 exact=True).count

    def _estimate(self, filter: Filter) -> int:
        return self.client.count(self.collection, count_filter=_filter(filter),
                                 exact=False).count

    def _nearest(self, query, filter, limit, offset, score_threshold, exact,
                 with_payload=True, loose=None) -> list[Hit]:
        beam = self.beam(self.hnsw_ef, self.index.hnsw_ef_growth)
        pool = self.index.pool(offset + limit, beam) if self.graph and not exact else None
        loose = loose if pool else None  # no graph (exact, or a collection from before it)
        top = plan(query, offset + limit, score_threshold, pool, loose=loose)
        engine_filter = _filter(filter)
        placed = None if loose else engine_filter  # a loose filter: in the keep stage alone

        def params(stage: Stage) -> models.SearchParams:
            searched = self.index.for_stage(stage)
            rescoring = (models.QuantizationSearchParams(ignore=True) if exact else
                         models.QuantizationSearchParams(rescore=searched.rescore,
                                                         oversampling=searched.oversampling))
            return models.SearchParams(
                exact=exact, hnsw_ef=beam, quantization=rescoring,
                acorn=models.AcornSearchParams(enable=True) if self.index.acorn else None)

        def prefetch(stage: Stage) -> models.Prefetch:
            scoring, using = _scoring(stage, query, engine_filter)
            return models.Prefetch(query=scoring, using=using, limit=stage.limit,
                                   prefetch=[prefetch(s) for s in stage.prefetch] or None,
                                   filter=placed, params=params(stage),
                                   score_threshold=stage.threshold)

        scoring, using = _scoring(top, query)
        response = self.client.query_points(
            self.collection, query=scoring, using=using,
            prefetch=[prefetch(s) for s in top.prefetch] or None, query_filter=placed,
            limit=limit, offset=offset or None, score_threshold=top.threshold,
            with_payload=with_payload, search_params=params(top))
        # In f32, as Qdrant's server (and Edge) score: local mode answers in float64, where
        # one photo encoded in two batches (vectors an ulp apart) would not tie as it does
        # on the server, so the two would order and page differently.
        return [Hit(str(p.id), float(np.float32(p.score)), p.payload or {})
                for p in response.points]

    def _ordered(self, key, descending, filter, limit, start_from) -> list[Hit]:
        response = self.client.query_points(
            self.collection, query=models.OrderByQuery(order_by=models.OrderBy(
                key=key, direction=models.Direction.DESC if descending else models.Direction.ASC,
                start_from=start_from)),
            query_filter=_filter(filter), limit=limit, with_payload=True)
        return [Hit(str(p.id), float(p.order_value or 0), p.payload or {})
                for p in response.points]

    def scroll(self, filter=None, limit=100, offset=None):
        records, next_id = self.client.scroll(self.collection, scroll_filter=_filter(filter),
                                              limit=limit, offset=offset, with_payload=True)
        points = [StoredPoint(str(r.id), r.payload or {}) for r in records]
        return points, (str(next_id) if next_id is not None else None)

    def facet(self, key, filter=None, limit=50) -> dict[str, int]:
        response = self.client.facet(self.collection, key, facet_filter=_filter(filter),
                                     limit=limit, exact=True)
        return {str(h.value): int(h.count) for h in response.hits}

    def unindexed(self) -> int:
        """As the server counts it (approximate: indexed vectors of both dense names, with
        the graph over the photos' mean); local mode indexes nothing, so all points."""
        info = self.client.get_collection(self.collection)
        return (info.points_count or 0) - (info.indexed_vectors_count or 0) // (
            2 if self.graph else 1)

    def optimize(self) -> None:
        """Quantise the collection once it holds `quantization_threshold` points (with
        `auto`), originals on disk or in memory as set; the server does the rest."""
        info = self.client.get_collection(self.collection)
        kind = self.index.quantization_for(info.points_count or 0)
        vectors = info.config.params.vectors
        graph = vectors.get(GRAPH_VECTOR) if self.graph and isinstance(vectors, dict) else None
        if kind == "none" or info.config.quantization_config is not None or (
                graph is not None and graph.quantization_config is not None):
            return
        log.info("quantising collection %r (%s, %s points)", self.collection, kind,
                 info.points_count)
        on_disk = models.VectorParamsDiff(on_disk=self.index.originals_on_disk)
        if not self.graph:  # a collection from before the graph over the photos' mean
            self.client.update_collection(self.collection, quantization_config=quantization(kind),
                                          vectors_config={IMAGE_VECTOR: on_disk})
            return
        self.client.update_collection(self.collection, vectors_config={
            IMAGE_VECTOR: on_disk, GRAPH_VECTOR: models.VectorParamsDiff(
                on_disk=self.index.originals_on_disk, quantization_config=quantization(kind))})

    def optimize_in_background(self, force: bool = False) -> bool:
        """The server indexes by itself: only the quantisation is checked, and no
        optimization is ever said to have started."""
        self.optimize()
        return False

    def publish(self, name: str) -> None:
        """Point the alias `name` at this collection, in one operation (a collection that
        itself has that name, from before versions, keeps it)."""
        if name == self.collection or self.client.collection_exists(name) and name not in {
                a.alias_name for a in self.client.get_aliases().aliases}:
            return
        self.client.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name)),
            models.CreateAliasOperation(create_alias=models.CreateAlias(
                collection_name=self.collection, alias_name=name))])

    def close(self) -> None:
        self.client.close()


def legacy_model(url: str, collection: str, api_key: str | None = None) -> str | None:
    """The model recorded in a point of `collection` when it is a collection from before
    model versions (not an alias); None when there is none."""
    client = client_for(url, api_key)
    try:
        aliases = {a.alias_name for a in client.get_aliases().aliases}
        if collection in aliases or not client.collection_exists(collection):
            return None
        records, _ = client.scroll(collection, limit=1, with_payload=True)
        return (records[0].payload or {}).get("model") if records else None
    finally:
        client.close()
