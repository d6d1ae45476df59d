"""A Qdrant server collection's configuration: photo vectors, words, HNSW, quantisation,
payload indexes, as qdrant-client's objects (catalogue.store.edge_config is the
embedded store's), and the collection made from them.

API replicas starting together on a new cluster each find the collection missing and
make it; the one that comes second is told it exists (an error from the server or
local mode) and goes on with the collection the other made (`create`).
"""

from __future__ import annotations

import logging
from typing import Any

from qdrant_client import QdrantClient, models

from catalogue.store.base import GRAPH_VECTOR, IMAGE_VECTOR, TEXT_VECTOR
from catalogue.store.index_config import IndexConfig

log = logging.getLogger(__name__)

INDEX_TYPES = {"keyword": models.PayloadSchemaType.KEYWORD,
               "number": models.PayloadSchemaType.FLOAT,
               "boolean": models.PayloadSchemaType.BOOL,
               "date": models.PayloadSchemaType.DATETIME}
_INDEX_PARAMS = {"keyword": models.KeywordIndexParams, "number": models.FloatIndexParams,
                 "boolean": models.BoolIndexParams, "date": models.DatetimeIndexParams}
WORDS = models.SparseVectorParams(modifier=models.Modifier.IDF)  # BM25's IDF, by the engine


def field_index(kind: str, links: bool) -> Any:
    """A payload index of `kind`, with or without its own HNSW links per value."""
    return _INDEX_PARAMS[kind](type=INDEX_TYPES[kind].value, enable_hnsw=links)


def quantization(kind: str) -> models.QuantizationConfig | None:
    """As the embedded store's (catalogue.store.edge_config.quantization): in memory."""
    if kind == "int8":
        return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
            type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
    if kind in ("binary", "binary-2bit"):
        encoding = (models.BinaryQuantizationEncoding.TWO_BITS if kind == "binary-2bit"
                    else None)
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(
            always_ram=True, encoding=encoding))
    return None


def hnsw(index: IndexConfig) -> models.HnswConfigDiff:
    return models.HnswConfigDiff(m=index.hnsw_m, ef_construct=index.hnsw_ef_construct)


def vectors(dim: int, index: IndexConfig, kind: str) -> dict[str, models.VectorParams]:
    """As the embedded store's (catalogue.store.edge_config.vector_params): photo rows (a
    MaxSim multi-vector) without a graph, and the graph over their mean, quantised as
    `kind`; with a quantised graph, originals on disk where `originals_on_disk` says."""
    on_disk = index.originals_on_disk if kind != "none" else None
    return {IMAGE_VECTOR: models.VectorParams(
                size=dim, distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM),
                hnsw_config=models.HnswConfigDiff(m=0, payload_m=0), on_disk=on_disk),
            GRAPH_VECTOR: models.VectorParams(size=dim, distance=models.Distance.COSINE,
                                              quantization_config=quantization(kind),
                                              on_disk=on_disk)}


def create(client: QdrantClient, collection: str, dim: int, index: IndexConfig,
           shards: tuple[int, int, int]) -> None:
    """Make `collection` unless it exists: photo rows and the graph over their mean
    (`vectors`), words, quantised as `index` chooses for an empty one, spread as `shards`
    (shard number, replication factor, write consistency factor) says."""
    if client.collection_exists(collection):
        return
    kind = index.quantization_for(0)
    shard_number, replication_factor, write_consistency_factor = shards
    try:
        client.create_collection(
            collection, vectors_config=vectors(dim, index, kind), hnsw_config=hnsw(index),
            sparse_vectors_config={TEXT_VECTOR: WORDS}, shard_number=shard_number,
            replication_factor=replication_factor,
            write_consistency_factor=write_consistency_factor)
    except Exception:
        if not client.collection_exists(collection):
            raise
        log.info("collection %r was made meanwhile (another replica starting)", collection)
