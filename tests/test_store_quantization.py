"""Quantisation and rescoring reach the engine, on both stores.

The embedded engine shows it by recall: binary quantisation keeps one bit a dimension,
so on vectors whose signs say little it ranks poorly unless the candidates are rescored
with the original vectors. qdrant-client's local mode searches exactly whatever the
configuration, so there the requests the client sends are checked instead.
"""

import dataclasses

import numpy as np
import pytest

from catalogue.store.base import StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.edge_config import quantized
from catalogue.store.index_config import IndexConfig
from catalogue.store.server import ServerStore
from testkit.stores import sent_search_params


def points(n, dim, seed=0, offset=0.0):
    """Unit vectors; `offset` shifts the first half of the dimensions, so that their signs
    (all a binary code keeps) are the same for every point and tell them apart less."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim))
    v[:, : dim // 2] += offset
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return [StoredPoint(point_id(f"{seed}-{i}"), {"product_id": f"{seed}-{i}"}, v[i])
            for i in range(n)]


def recall(store, queries, k=10):
    found = 0
    for q in queries:
        exact = {h.id for h in store.search(q.vector, limit=k, exact=True)}
        found += len(exact & {h.id for h in store.search(q.vector, limit=k)})
    return found / (k * len(queries))


def test_binary_quantization_loses_recall_that_rescoring_wins_back(tmp_path):
    """On random vectors a one-bit code ranks poorly (recall@10 about 0.16 here); rescoring
    the best oversampling x 10 of its candidates with the originals wins recall back, the
    more the wider (about 0.3 at 4, 0.63 at 16), as the unquantised index has it all.
    The candidates are the graph's (over the photos' mean, here the one photo), rescored
    by MaxSim over the rows."""
    dim = 64
    index = IndexConfig(quantization="binary", oversampling=16.0)
    store = EdgeStore(tmp_path, dim, indexing_threshold_kb=1, full_scan_threshold_kb=1,
                      index=index)
    store.upsert(points(3000, dim))
    store.optimize()
    assert quantized(store._path(store._generation)) == "binary"
    queries = points(40, dim, seed=1)
    store.hnsw_ef = 400
    wide = recall(store, queries)
    store.index = dataclasses.replace(index, oversampling=4.0)
    narrow = recall(store, queries)
    store.index = dataclasses.replace(index, rescore=False)
    codes_only = recall(store, queries)
    store.close()
    assert codes_only < 0.3, codes_only
    assert narrow > codes_only + 0.1, (codes_only, narrow)
    assert wide > narrow + 0.2, (narrow, wide)


def test_unquantised_index_of_the_same_data_keeps_its_recall(tmp_path):
    """The baseline the test above is measured against: no quantisation, same beam."""
    dim = 64
    store = EdgeStore(tmp_path, dim, indexing_threshold_kb=1, full_scan_threshold_kb=1,
                      index=IndexConfig(quantization="none"))
    store.upsert(points(3000, dim))
    store.optimize()
    store.hnsw_ef = 400
    assert recall(store, points(40, dim, seed=1)) >= 0.95
    store.close()


@pytest.mark.parametrize(("setting", "points_stored", "expected"), [
    ("auto", 300, "scalar"), ("auto", 100, "none"), ("none", 300, "none"),
    ("int8", 100, "scalar")])
def test_quantization_is_chosen_at_the_index_build(tmp_path, setting, points_stored, expected):
    """`auto` quantises (int8 scalar) from the threshold up, decided when the index is
    built; the store keeps answering as it did."""
    index = IndexConfig(quantization=setting, quantization_threshold=200)
    store = EdgeStore(tmp_path, 16, indexing_threshold_kb=1, index=index)
    pts = points(points_stored, 16)
    store.upsert(pts)
    assert quantized(store._path(store._generation)) == "none"  # created unquantised
    store.optimize()
    assert quantized(store._path(store._generation)) == expected
    assert store.search(pts[5].vector, limit=1)[0].id == pts[5].id
    store.close()


def test_a_quantised_store_stays_quantised_below_the_threshold(tmp_path):
    store = EdgeStore(tmp_path, 16, indexing_threshold_kb=1,
                      index=IndexConfig(quantization="int8"))
    store.upsert(points(300, 16))
    store.optimize()
    store.index = IndexConfig(quantization="auto", quantization_threshold=10_000)
    store.upsert(points(300, 16, seed=2))
    store.optimize()
    assert quantized(store._path(store._generation)) == "scalar"
    store.close()


def test_the_optimizer_memory_cap_reaches_the_build(tmp_path):
    """A cap too small for the build fails the build alone: the store keeps searching the
    unindexed points exactly."""
    store = EdgeStore(tmp_path, 16, indexing_threshold_kb=1,
                      index=IndexConfig(optimizer_memory_mb=16))
    pts = points(300, 16)
    store.upsert(pts)
    with pytest.raises(RuntimeError, match="optimizing the shard failed"):
        store.optimize()
    assert store.unindexed() == 300
    assert store.search(pts[3].vector, limit=1)[0].id == pts[3].id
    store.close()


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_quantization_settings_reach_the_store(backend, tmp_path, monkeypatch):
    from catalogue.settings import CatalogueSettings
    from vitrine.wiring import open_store

    for name, value in {"QUANTIZATION": "binary", "QUANTIZATION_OVERSAMPLING": "3",
                        "QUANTIZATION_RESCORE": "false", "HNSW_M": "24",
                        "HNSW_EF_CONSTRUCT": "80", "HNSW_ACORN": "false",
                        "ORIGINAL_VECTORS_ON_DISK": "false"}.items():
        monkeypatch.setenv(f"VITRINE_{name}", value)
    settings = CatalogueSettings(data_dir=tmp_path, store=backend, qdrant_url=":memory:")
    store = open_store(settings, 8)
    assert store.index == IndexConfig(quantization="binary", oversampling=3.0, rescore=False,
                                      hnsw_m=24, hnsw_ef_construct=80, acorn=False,
                                      originals_on_disk=False)
    store.upsert(points(20, 8))
    sent = sent_search_params(store, monkeypatch)
    store.search(points(1, 8, seed=3)[0].vector, limit=3)
    store.search(points(1, 8, seed=3)[0].vector, limit=3, exact=True)
    approximate, exact = sent
    assert (approximate.quantization.rescore, approximate.quantization.oversampling) == (
        False, 3.0)
    assert approximate.acorn is None
    assert exact.quantization.ignore  # exact search never scores on the compressed copy
    store.close()


def test_server_store_creates_and_quantises_its_collection(monkeypatch):
    """A collection is created with the HNSW parameters, unquantised under `auto`, and
    quantised by `optimize()` once it holds the threshold's points (the server then
    requantises by itself; local mode ignores the configuration, so the calls are read)."""
    from qdrant_client import QdrantClient

    calls: dict[str, list] = {"create_collection": [], "update_collection": []}
    for name in calls:
        real = getattr(QdrantClient, name)

        def record(self, *args, _real=real, _name=name, **kwargs):
            calls[_name].append(kwargs)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(QdrantClient, name, record)
    index = IndexConfig(quantization_threshold=50, hnsw_m=24, hnsw_ef_construct=80)
    store = ServerStore.connect(":memory:", "products", 8, index=index)
    (created,) = calls["create_collection"]
    made = created["vectors_config"]
    assert made["graph"].quantization_config is None
    assert made["image"].hnsw_config.m == 0  # the graph is over the photos' mean
    assert (created["hnsw_config"].m, created["hnsw_config"].ef_construct) == (24, 80)
    store.upsert(points(40, 8))
    store.optimize()
    assert calls["update_collection"] == []
    store.upsert(points(20, 8, seed=1))
    store.optimize()
    (update,) = calls["update_collection"][:1]
    graph = update["vectors_config"]["graph"]
    assert graph.quantization_config.scalar.type.value == "int8" and graph.on_disk is True
    assert update["vectors_config"]["image"].on_disk is True
    store.close()


@pytest.mark.parametrize("links", [True, False])
def test_graph_links_per_value_only_for_the_shops_filters(tmp_path, links):
    """Per-value graph links cost a graph per value at every build: the shop's filter
    fields get them as set, the system fields (product id, model...) never."""
    store = EdgeStore(tmp_path, 8, indexes=[("colour", "keyword"), ("variants[].price", "number")],
                      index=IndexConfig(filter_links=links))
    schema = {name: info.params.enable_hnsw
              for name, info in store._shard.info().payload_schema.items()}
    store.close()
    assert schema["colour"] is links and schema["variants[].price"] is links
    assert schema["product_id"] is False and schema["moderation_status"] is False
    reopened = EdgeStore(tmp_path, 8, indexes=[("colour", "keyword")],
                         index=IndexConfig(filter_links=not links))
    assert reopened._shard.info().payload_schema["colour"].params.enable_hnsw is (not links)
    assert "variants[].price" not in reopened._shard.info().payload_schema
    reopened.close()
