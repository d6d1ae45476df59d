"""A filter keeping too many points for the engine's links per value is applied among the
best photos found without it (catalogue.store.query.loose_pool), on both stores."""

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import models

from catalogue.store.base import Query, StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.filters import Filter
from catalogue.store.query import LOOSE_POOL_MAX, Sparse, gathers, loose_pool
from catalogue.store.server import ServerStore
from testkit.stores import sent_requests

DIM = 64
COLOURS = ["black", "white", "blue"]


def points(n, seed=0):
    """Random unit vectors, a third of them of each colour."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, DIM))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return [StoredPoint(point_id(f"{seed}-{i}"), {"product_id": f"{seed}-{i}",
                                                  "colour": COLOURS[i % 3]}, v[i])
            for i in range(n)]


def test_only_a_vector_search_under_a_filter_past_the_linked_share_gathers_a_pool():
    assert loose_pool(10, 0.25, 16, 8) == 320  # 8 x 10 / 0.25
    assert loose_pool(10, 0.1, 16, 8) is None  # under 2 / m: the engine links its values
    assert loose_pool(10, 0.3, 4, 8) is None  # fewer links a point: linked up to a half
    assert loose_pool(100, 0.25, 16, 8) is None  # more than LOOSE_POOL_MAX
    assert LOOSE_POOL_MAX < 3200
    assert loose_pool(10, 0.25, 16, 0) is None  # VITRINE_LOOSE_FILTER_OVERSAMPLING=0
    dense, words = np.ones(DIM, np.float32), Sparse([1], [1.0])
    assert gathers(Query(dense=dense))
    for query in (Query(dense=dense, sparse=words), Query(sparse=words),
                  Query(dense=dense, diversity=0.5), Query(dense=dense, positives=[dense])):
        assert not gathers(query)


def test_a_loose_filter_finds_more_of_its_top_10_among_the_unfiltered_best(tmp_path,
                                                                           monkeypatch):
    """A colour a third of 3,000 random 64-d points hold gets no links of its own from the
    engine; at a narrow beam the filtered graph search found 0.41 of its exact top 10
    here, the filter applied among the best 198 found without it all of it (6 x 11, one
    past the page, over a third)."""
    store = EdgeStore(tmp_path, DIM, indexing_threshold_kb=1, full_scan_threshold_kb=100,
                      indexes=[("colour", "keyword")])  # the store 768 KB: not scanned whole
    store.upsert(points(3000))
    store.optimize()
    store.hnsw_ef = 10
    queries = [p.vector for p in points(40, seed=1)]
    black = Filter(match={"colour": "black"})
    assert abs(store._estimate(black) / 3000 - 1 / 3) < 0.05

    def recall():
        found = 0
        for q in queries:
            exact = {h.id for h in store.search(q, black, limit=10, exact=True)}
            found += len(exact & {h.id for h in store.search(q, black, limit=10)})
        return found / (10 * len(queries))

    loose = recall()
    monkeypatch.setattr(store, "_loose_pool", lambda *a: None)  # the filter into the graph
    graph = recall()
    store.close()
    assert loose >= 0.95, loose
    assert graph < loose - 0.2, (graph, loose)


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    if request.param == "edge":  # 300 points (77 KB) searched through the graph
        s = EdgeStore(tmp_path, DIM, indexing_threshold_kb=1, full_scan_threshold_kb=50,
                      indexes=[("colour", "keyword")])
    else:
        s = ServerStore.connect(":memory:", "products", DIM, indexes=[("colour", "keyword")])
        s.full_scan_threshold_kb = 50  # as the edge store's: local mode scans all anyway
    yield s
    s.close()


def stages(request) -> list[dict]:
    """An engine query as its chain of stages from the root down its first prefetch: each
    stage's limit, filter, whether it scores by a formula, and the oversampling it asks
    the engine for (qdrant-client names a prefetch's own prefetches `prefetch`)."""
    inner = getattr(request, "prefetches", None) or getattr(request, "prefetch", None)
    stage = {"limit": request.limit, "filter": request.filter,
             "formula": isinstance(request.query, (qe.Formula, models.FormulaQuery)),
             "oversampling": request.params.quantization.oversampling}
    return [stage, *(stages(inner[0]) if inner else [])]


def test_a_loose_filter_is_applied_among_the_pool_found_without_it_in_one_query(
        store, monkeypatch):
    """Both stores, one engine query: the best 108 found without the filter (from the graph
    on the quantised copy at the store's beam, no oversampling: nothing rescores them
    there; the server store, not knowing its products have one photo each, by MaxSim over
    the graph's best), those the filter keeps by a score formula, then scored as any
    search's candidates. A tight filter and a search with words send the filter into
    the search, as before."""
    store.upsert(points(300))
    store.optimize()
    sent = sent_requests(store, monkeypatch, stages)
    q = points(1, seed=1)[0].vector
    black = Filter(match={"colour": "black"})
    hits = store.search(q, black, limit=5)
    assert len(sent) == 1
    top, graph = sent[0][0], sent[0][-1]
    keep = next(i for i, stage in enumerate(sent[0]) if stage["formula"])
    assert not any(stage["filter"] for stage in sent[0])
    assert sent[0][keep]["limit"] == sent[0][keep + 1]["limit"] == 6 * 6 * 3  # 6: one past
    assert graph["oversampling"] in (None, 1.0)
    assert top["oversampling"] == store.index.oversampling
    assert [h.id for h in hits] == [h.id for h in store.search(q, black, limit=5, exact=True)]
    assert all(h.payload["colour"] == "black" for h in store.search(q, black, limit=30))
    sent.clear()
    one = Filter(ids=[p.id for p in points(300)[:20]])  # 20 of 300: under the linked share
    store.search(q, one, limit=5)
    store.search(Query(dense=q, sparse=Sparse([1], [1.0])), black, limit=5)
    assert [s[0]["filter"] is not None for s in sent] == [True, True]
    assert not any(stage["formula"] for s in sent for stage in s)


def test_products_of_several_photos_score_the_kept_pool_by_their_photos(store, monkeypatch):
    """With several photos a product, the pool comes from the graph over their mean and
    the products the filter keeps are scored by their best photo, as any search's
    candidates are: here the same top 5 as the exact search."""
    rng = np.random.default_rng(3)
    products = []
    for p in points(300):
        rows = p.vector + 0.3 * rng.normal(size=(3, DIM)).astype(np.float32)
        products.append(StoredPoint(p.id, p.payload, (rows / np.linalg.norm(
            rows, axis=1, keepdims=True)).astype(np.float32)))
    store.upsert(products)
    store.optimize()
    sent = sent_requests(store, monkeypatch, stages)
    black = Filter(match={"colour": "black"})
    for q in [p.vector for p in points(5, seed=1)]:
        hits = store.search(q, black, limit=5)
        assert any(stage["formula"] for stage in sent[-1])
        assert [h.id for h in hits] == [h.id for h in store.search(q, black, limit=5,
                                                                    exact=True)]
