"""A filter keeping too many points for the engine's links per value is applied among the
best photos found without it (catalogue.store.query.loose_pool), on both stores."""

import numpy as np
import pytest

from catalogue.store.base import Query, StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.filters import Filter
from catalogue.store.query import LOOSE_POOL_MAX, Sparse, gathers, loose_pool
from catalogue.store.server import ServerStore

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
    past the page, over a third), which the engine scans (50 KB, under its 100 KB)."""
    store = EdgeStore(tmp_path, DIM, indexing_threshold_kb=1, full_scan_threshold_kb=100,
                      indexes=[("colour", "keyword")])  # the store 768 KB, the pool 68
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
    if request.param == "edge":  # 300 points (77 KB) searched through the graph, 108 scanned
        s = EdgeStore(tmp_path, DIM, indexing_threshold_kb=1, full_scan_threshold_kb=50,
                      indexes=[("colour", "keyword")])
    else:
        s = ServerStore.connect(":memory:", "products", DIM, indexes=[("colour", "keyword")])
        s.full_scan_threshold_kb = 50  # as the edge store's: local mode scans all anyway
    yield s
    s.close()


def test_the_pool_is_gathered_without_the_filter_and_the_filter_applied_among_it(store,
                                                                                monkeypatch):
    """Both stores: the unfiltered best first, then the filtered search among them; a
    tight filter and a search with words go into one search, as the engine takes them."""
    store.upsert(points(300))
    store.optimize()
    calls = []
    real = type(store)._nearest
    monkeypatch.setattr(type(store), "_nearest", lambda self, query, f, limit, *a, **k:
                        calls.append((f, limit)) or real(self, query, f, limit, *a, **k))
    q = points(1, seed=1)[0].vector
    black = Filter(match={"colour": "black"})
    hits = store.search(q, black, limit=5)
    assert [c[0] for c in calls[:1]] == [None] and calls[0][1] == 6 * 6 * 3  # 6: one past
    pool = calls[1][0].ids
    assert len(pool) == calls[0][1] and calls[1][0].match == black.match
    assert [h.id for h in hits] == [h.id for h in store.search(q, black, limit=5, exact=True)]
    calls.clear()
    store.full_scan_threshold_kb = 20  # the pool (27 KB) would be walked, not scanned
    store.search(q, black, limit=5)
    assert len(calls) == 1 and calls[0][0] == black
    store.full_scan_threshold_kb = 50
    calls.clear()
    one = Filter(ids=[p.id for p in points(300)[:20]])  # 20 of 300: under the linked share
    store.search(q, one, limit=5)
    store.search(Query(dense=q, sparse=Sparse([1], [1.0])), black, limit=5)
    assert [c[0] for c in calls] == [one, black]
