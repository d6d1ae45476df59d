"""The store contract for products as shops have them, on both backends: several photos a
product (one point, MaxSim over its photo rows), variants (nested conditions), and value
orders (price, newest) that page without duplicates or gaps while products arrive."""

import json

import numpy as np
import pytest

from catalogue.store.base import StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.filters import Filter
from catalogue.store.paging import After
from catalogue.store.server import ServerStore

DIM = 8
INDEXES = [("variants[].size", "keyword"), ("variants[].availability", "keyword"),
           ("variants[].price", "number"), ("category", "keyword"), ("price", "number")]


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    s = (EdgeStore(tmp_path / "edge", DIM, indexes=INDEXES) if request.param == "edge"
         else ServerStore.connect(":memory:", "products", DIM, indexes=INDEXES))
    yield s
    s.close()


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def rows(seed, n):
    return np.stack([unit(np.random.default_rng(seed * 100 + i).normal(size=DIM))
                     for i in range(n)])


def product(name, vectors, **payload):
    return StoredPoint(point_id(name), {"product_id": name, **payload}, vectors)


def test_a_product_matches_by_its_best_photo_and_comes_once(store):
    photos = rows(1, 4)
    store.upsert([product("four", photos)] + [product(f"o{i}", rows(i + 10, 1))
                                              for i in range(20)])
    for j in range(4):
        hits = store.search(photos[j], limit=21)
        assert hits[0].id == point_id("four") and hits[0].score == pytest.approx(1, abs=1e-5)
        assert [h.id for h in hits].count(point_id("four")) == 1
    got = store.retrieve([point_id("four")], with_vectors=True)[0]
    assert got.vector.shape == (4, DIM) and np.allclose(got.vector, photos, atol=1e-5)


def test_variant_conditions_hold_on_one_variant(store):
    store.upsert([
        product("a", rows(1, 1), variants=[{"size": "M", "availability": "out_of_stock"},
                                           {"size": "L", "availability": "in_stock"}]),
        product("b", rows(2, 1), variants=[{"size": "M", "availability": "in_stock"}]),
        product("c", rows(3, 1), variants=[{"size": "S", "availability": "in_stock",
                                            "price": 10.0}])])
    m_in_stock = Filter(nested={"variants": Filter(any={"size": ["M"],
                                                        "availability": ["in_stock"]})})
    assert {h.payload["product_id"] for h in store.search(rows(1, 1)[0], m_in_stock,
                                                          limit=10)} == {"b"}
    assert store.count(m_in_stock) == 1
    cheap = Filter(nested={"variants": Filter(range={"price": (None, 20)})})
    assert [p.payload["product_id"] for p in store.scroll(cheap)[0]] == ["c"]
    assert store.facet("variants[].size") == {"M": 2, "L": 1, "S": 1}  # products, not variants


@pytest.mark.parametrize("descending", [False, True])
def test_value_order_pages_without_duplicates_or_gaps_while_products_arrive(store, descending):
    # 40 products on 5 prices (ties everywhere), paged 7 at a time by cursor, while a new
    # product arrives before every page, some of them at prices already shown.
    store.upsert([product(f"p{i:02d}", rows(i, 1), price=float(i % 5)) for i in range(40)])
    seen, after, arrived = [], None, 0
    while True:
        page = store.order("price", descending, limit=7, after=after)
        seen += [h.payload["product_id"] for h in page]
        if len(page) < 7:
            break
        last = page[-1]
        after = After(last.score, last.id, last.position or 0)
        store.upsert([product(f"new{arrived}", rows(100 + arrived, 1),
                              price=float(arrived % 5))])
        arrived += 1
    old = [p for p in seen if p.startswith("p")]
    assert sorted(old) == [f"p{i:02d}" for i in range(40)]  # every one, once
    assert len(seen) == len(set(seen))
    prices = [i % 5 for i in (int(p[1:]) for p in old)]
    assert prices == sorted(prices, reverse=descending)


def test_value_order_by_offset_breaks_ties_by_point_id(store):
    store.upsert([product(f"p{i}", rows(i, 1), price=1.0) for i in range(30)]
                 + [product("unpriced", rows(99, 1))])
    pages = [store.order("price", limit=8, offset=k * 8) for k in range(4)]
    ids = [h.id for page in pages for h in page]
    assert ids == sorted(point_id(f"p{i}") for i in range(30))  # the unpriced one left out


def test_edge_converts_a_one_photo_shard_and_keeps_indexes_in_step(tmp_path):
    import qdrant_edge as qe

    folder = tmp_path / "edge"
    (folder / "shard-0").mkdir(parents=True)
    old = qe.EdgeShard.create(str(folder / "shard-0"), qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)))
    v = rows(5, 1)[0]
    old.update(qe.UpdateOperation.upsert_points([qe.Point(point_id("x"), v.tolist(), {
        "product_id": "x", "image_sha256": "abc", "category": "Dresses"})]))
    old.flush()
    old.close()
    store = EdgeStore(folder, DIM, indexes=[("category", "keyword")])
    got = store.retrieve([point_id("x")], with_vectors=True)[0]
    assert got.vector.shape == (1, DIM) and np.allclose(got.vector[0], v, atol=1e-5)
    assert got.payload["images"] == [{"sha256": "abc", "display_sha256": None}]
    assert store.facet("category") == {"Dresses": 1}
    config = json.loads((folder / "shard-1" / "edge_config.json").read_text())
    assert {"image", "graph"} <= set(config["vectors"])
    store.close()
    # A schema that no longer declares category drops its index; payloads stay.
    store = EdgeStore(folder, DIM, indexes=[("brand", "keyword")])
    with pytest.raises(Exception, match="index"):
        store.facet("category")
    assert store.facet("brand") == {}
    assert store.get(point_id("x")).payload["category"] == "Dresses"
    store.close()


def test_edge_scores_its_graphs_candidates_by_the_best_photo(tmp_path):
    """The embedded store's graph is over each product's photos' mean: a product whose one
    photo is the query, among three that are not, has a mean the query barely resembles
    (0.5), below forty one-photo products at about 0.7. MaxSim over the rows of the
    graph's best `graph_pool` candidates still puts it first; scoring only as many
    candidates as hits asked for shows that the graph is over the mean."""
    from catalogue.store.index_config import IndexConfig

    q = np.eye(DIM, dtype=np.float32)[0]
    four = np.eye(DIM, dtype=np.float32)[[0, 1, 2, 3]]

    def near(i):  # cosine 0.7 and up with the query, off the four photos' plane
        other = np.concatenate([np.zeros(4), rows(i + 50, 1)[0][4:]])
        c = 0.7 + 0.002 * i  # all different: equal scores would widen the search's window
        return product(f"near{i}", unit(c * q + np.sqrt(1 - c * c) * unit(other))[None])

    # Over the full-scan threshold (1 KB: 32 points of 8 dimensions), where the graph is used.
    store = EdgeStore(tmp_path / "edge", DIM, full_scan_threshold_kb=1)
    store.upsert([product("four", four)] + [near(i) for i in range(40)])
    assert store.search(q, limit=1)[0].id == point_id("four")
    store.index = IndexConfig(graph_pool=0, oversampling=1.0)
    assert point_id("four") not in {h.id for h in store.search(q, limit=5)}
    assert store.search(q, limit=1, exact=True)[0].id == point_id("four")
    store.close()
    # Under the threshold the engine scans the store whole: the rows are scored directly.
    small = EdgeStore(tmp_path / "small", DIM, index=IndexConfig(graph_pool=0, oversampling=1.0))
    small.upsert([product("four", four)] + [near(i) for i in range(40)])
    assert small.search(q, limit=1)[0].id == point_id("four")
    small.close()


def test_edge_converts_a_shard_whose_graph_was_over_the_photo_rows(tmp_path):
    """A shard of the layout before the graph over the photos' mean (rows with a graph of
    their own) is copied into the current one on open: photos, words and payloads kept."""
    import qdrant_edge as qe

    from catalogue.store.query import Query, Sparse

    folder = tmp_path / "edge"
    (folder / "shard-0").mkdir(parents=True)
    old = qe.EdgeShard.create(str(folder / "shard-0"), qe.EdgeConfig(
        vectors={"image": qe.EdgeVectorParams(
            size=DIM, distance=qe.Distance.Cosine,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim))},
        sparse_vectors={"text": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}))
    photos = rows(3, 2)
    old.update(qe.UpdateOperation.upsert_points([
        qe.Point(point_id("x"), {"image": photos.tolist(), "text": qe.SparseVector([7], [1.0])},
                 {"product_id": "x", "category": "Dresses"}),
        qe.Point(point_id("y"), {"image": rows(4, 1).tolist()}, {"product_id": "y"})]))
    old.flush()
    old.close()
    store = EdgeStore(folder, DIM, indexes=[("category", "keyword")])
    vectors = json.loads((folder / "shard-1" / "edge_config.json").read_text())["vectors"]
    assert vectors["image"]["hnsw_config"]["m"] == vectors["image"]["hnsw_config"]["payload_m"] == 0
    assert "multivector_config" not in vectors["graph"]  # one plain vector a product
    got = store.retrieve([point_id("x")], with_vectors=True)[0]
    assert np.allclose(got.vector, photos, atol=1e-5) and got.text.indices == [7]
    assert store.search(photos[1], limit=1)[0].id == point_id("x")
    assert [h.id for h in store.search(Query(sparse=Sparse([7], [1.0])))] == [point_id("x")]
    assert store.facet("category") == {"Dresses": 1} and store.count() == 2
    store.close()


def test_a_server_collection_from_before_the_graph_keeps_its_layout():
    """A server adds no vector to an existing collection: one made before the graph over
    the photos' mean is searched on its rows as it was (a reindex makes a new one)."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(location=":memory:")
    client.create_collection("old", vectors_config={"image": models.VectorParams(
        size=DIM, distance=models.Distance.COSINE, multivector_config=models.MultiVectorConfig(
            comparator=models.MultiVectorComparator.MAX_SIM))},
        sparse_vectors_config={"text": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    store = ServerStore(client, "old", DIM)
    assert not store.graph
    photos = rows(1, 3)
    store.upsert([product("three", photos), product("one", rows(2, 1))])
    assert store.search(photos[2], limit=1)[0].id == point_id("three")
    assert set(client.get_collection("old").config.params.vectors) == {"image"}
    store.close()


def test_edge_searches_the_graph_alone_while_every_product_has_one_photo(tmp_path,
                                                                         monkeypatch):
    """With one photo a product the mean is the photo: the graph alone answers, with the
    hits and scores exact search over the rows gives. The store remembers the most photos
    a product brought, across restarts, and from the first product with several scores
    the graph's pool by MaxSim over the rows."""
    from catalogue.store import edge as edge_module
    from catalogue.store.index_config import IndexConfig

    index = IndexConfig()
    assert index.pool(10, 384) == 256 and index.pool(10, 100) == 100  # within the beam
    assert IndexConfig(rescore=False).pool(10, 384) == 10
    alone: list[bool] = []  # whether each plan the store made searched the graph alone
    real = edge_module.plan
    monkeypatch.setattr(edge_module, "plan",
                        lambda *a, **k: alone.append(k["graph_alone"]) or real(*a, **k))
    folder, q = tmp_path / "edge", rows(99, 1)[0]

    def opened():  # over the full-scan threshold (1 KB: 32 points of 8 dimensions)
        return EdgeStore(folder, DIM, full_scan_threshold_kb=1)

    store = opened()
    store.upsert([product(f"p{i}", rows(i, 1)) for i in range(40)])
    hits = store.search(q, limit=5)
    assert alone[-1]
    exact = store.search(q, limit=5, exact=True)
    assert not alone[-1]  # exact search scores the rows
    assert [h.id for h in hits] == [h.id for h in exact]
    assert [h.score for h in hits] == pytest.approx([h.score for h in exact], abs=1e-6)
    store.close()
    store = opened()
    store.search(q, limit=5)
    assert alone[-1]
    store.upsert([product("three", rows(9, 3))])
    store.search(q, limit=5)
    assert not alone[-1]
    store.close()
    store = opened()
    store.search(q, limit=5)
    assert not alone[-1] and store.photos == 3
    store.close()


def test_a_point_is_retrieved_with_its_words_only_when_asked(store):
    """Presenting a page reads the photo rows, and the words only to explain a score."""
    from catalogue.store.query import Sparse

    point = StoredPoint(point_id("w"), {"product_id": "w"}, rows(5, 2), Sparse([3, 7], [1.0, 0.5]))
    store.upsert([point])
    [full] = store.retrieve([point.id], with_vectors=True)
    [photos] = store.retrieve([point.id], with_vectors=True, words=False)
    assert full.text is not None and sorted(full.text.indices) == [3, 7]
    assert photos.text is None
    assert photos.vector.shape == (2, DIM)
    np.testing.assert_allclose(photos.vector, full.vector, atol=1e-6)
