"""Server backend: a Qdrant server or cluster through qdrant-client.

The same class runs against `QdrantClient(url=...)` in the cluster profile and
against qdrant-client's in-process local mode (`location=":memory:"` or
`path=...`) in tests, so the client code under test is the code that ships.
The server's optimizer indexes new points by itself, so the indexing methods
keep `VectorStore`'s no-op defaults except `unindexed()`, which the server
reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from catalogue.store.base import (
    FLOAT_FIELDS,
    KEYWORD_FIELDS,
    Filter,
    FilterModels,
    Hit,
    StoredPoint,
    VectorStore,
    to_engine_filter,
)

SERVER_FILTERS = FilterModels(models.Filter, models.FieldCondition, models.MatchValue,
                              models.MatchAny, models.Range,
                              lambda ids: models.HasIdCondition(has_id=list(ids)))


def _filter(f: Filter | None) -> models.Filter | None:
    return to_engine_filter(f, SERVER_FILTERS)


class ServerStore(VectorStore):
    def __init__(self, client: QdrantClient, collection: str, dim: int,
                 hnsw_ef: int | None = None):
        self.client, self.collection, self.dim, self.hnsw_ef = client, collection, dim, hnsw_ef
        if not client.collection_exists(collection):
            client.create_collection(collection, vectors_config=models.VectorParams(
                size=dim, distance=models.Distance.COSINE))
            for name in KEYWORD_FIELDS:
                client.create_payload_index(collection, name, models.PayloadSchemaType.KEYWORD)
            for name in FLOAT_FIELDS:
                client.create_payload_index(collection, name, models.PayloadSchemaType.FLOAT)
        vectors = client.get_collection(collection).config.params.vectors
        # Named vectors (a dict) are not a layout this store makes: no size of ours.
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        if size != dim:
            raise ValueError(f"collection {collection!r} holds vectors of size {size}, "
                             f"the model makes {dim}: use a new collection for a new model")

    @classmethod
    def connect(cls, url: str, collection: str, dim: int, api_key: str | None = None,
                hnsw_ef: int | None = None) -> ServerStore:
        """`url` is http(s)://host:port, ':memory:', or a folder path (local mode)."""
        if url == ":memory:":
            client = QdrantClient(location=":memory:")
        elif url.startswith(("http://", "https://")):
            client = QdrantClient(url=url, api_key=api_key, timeout=30)
        else:
            client = QdrantClient(path=url)
        return cls(client, collection, dim, hnsw_ef)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        for p in points:
            if p.vector is None or len(p.vector) != self.dim:
                raise ValueError(f"point {p.id} needs a vector of size {self.dim}")
        self.client.upsert(self.collection, wait=True, points=[
            models.PointStruct(id=p.id, vector=np.asarray(p.vector, np.float32).tolist(),
                               payload=p.payload) for p in points])

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        if ids:
            self.client.set_payload(self.collection, payload=payload, points=list(ids), wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, points_selector=models.PointIdsList(
                points=list(ids)), wait=True)

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[StoredPoint]:
        if not ids:
            return []
        records = self.client.retrieve(self.collection, list(ids), with_payload=True,
                                       with_vectors=with_vectors)
        by_id = {str(r.id): StoredPoint(str(r.id), r.payload or {},
                                        None if r.vector is None
                                        else np.asarray(r.vector, np.float32))
                 for r in records}
        return [by_id[i] for i in ids if i in by_id]

    def count(self, filter: Filter | None = None) -> int:
        return self.client.count(self.collection, count_filter=_filter(filter),
                                 exact=True).count

    def _nearest(self, vector, filter, limit, offset, score_threshold, exact) -> list[Hit]:
        response = self.client.query_points(
            self.collection, query=np.asarray(vector, np.float32).tolist(),
            query_filter=_filter(filter), limit=limit, offset=offset or None,
            score_threshold=score_threshold, with_payload=True,
            search_params=models.SearchParams(exact=exact, hnsw_ef=self.hnsw_ef))
        # In f32, as Qdrant's server (and Edge) score: local mode answers in float64, where
        # one photo encoded in two batches (vectors an ulp apart) would not tie as it does
        # on the server, so the two would order and page differently.
        return [Hit(str(p.id), float(np.float32(p.score)), p.payload or {})
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
        """As the server counts it (approximate); local mode indexes nothing, so all points."""
        info = self.client.get_collection(self.collection)
        return (info.points_count or 0) - (info.indexed_vectors_count or 0)

    def close(self) -> None:
        self.client.close()
