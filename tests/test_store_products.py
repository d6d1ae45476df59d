"""The store contract for products as shops have them, on both backends: several photos a
product (one point, MaxSim over its photo rows), variants (nested conditions), and value
orders (price, newest) that page without duplicates or gaps while products arrive."""

import json

import numpy as np
import pytest

from catalogue.store.base import Filter, StoredPoint, point_id
from catalogue.store.edge import EdgeStore
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
    assert "image" in config["vectors"]
    store.close()
    # A schema that no longer declares category drops its index; payloads stay.
    store = EdgeStore(folder, DIM, indexes=[("brand", "keyword")])
    with pytest.raises(Exception, match="index"):
        store.facet("category")
    assert store.facet("brand") == {}
    assert store.get(point_id("x")).payload["category"] == "Dresses"
    store.close()
