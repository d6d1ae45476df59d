"""One contract, two backends: the embedded engine and qdrant-client's local mode."""

import dataclasses

import numpy as np
import pytest

from catalogue.store import index_config
from catalogue.store.base import Query, StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.filters import Filter
from catalogue.store.index_config import grown_beam
from catalogue.store.paging import After
from catalogue.store.server import ServerStore
from testkit.stores import sent_search_params

DIM = 8
COLOURS = ["red", "blue", "green"]
CATEGORIES = ["dress", "shirt"]
INDEXES = [("colour", "keyword"), ("category", "keyword"), ("price", "number"),
           ("variants[].size", "keyword"), ("variants[].price", "number")]


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    if request.param == "edge":
        s = EdgeStore(tmp_path / "edge", DIM, indexes=INDEXES)
    else:
        s = ServerStore.connect(":memory:", "products", DIM, indexes=INDEXES)
    yield s
    s.close()


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def make_points(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return [StoredPoint(point_id(f"p{i}"), {
        "product_id": f"p{i}", "colour": COLOURS[i % 3], "category": CATEGORIES[i % 2],
        "price": float(i), "moderation_status": "visible"}, unit(rng.normal(size=DIM)))
        for i in range(n)]


def test_upsert_count_retrieve(store):
    points = make_points()
    store.upsert(points)
    assert store.count() == 30
    got = store.retrieve([points[3].id, "00000000-0000-0000-0000-000000000000", points[5].id],
                         with_vectors=True)
    assert [p.payload["product_id"] for p in got] == ["p3", "p5"]
    assert np.allclose(got[0].vector, points[3].vector, atol=1e-5)


def test_overwrite_by_id_does_not_duplicate(store):
    points = make_points(5)
    store.upsert(points)
    again = StoredPoint(points[0].id, {**points[0].payload, "colour": "green"}, points[1].vector)
    store.upsert([again])
    assert store.count() == 5
    got = store.get(points[0].id)
    assert got.payload["colour"] == "green"
    hit = store.search(points[1].vector, limit=2)
    assert {h.id for h in hit} == {points[0].id, points[1].id}


def test_set_payload_keeps_vector(store):
    points = make_points(3)
    store.upsert(points)
    store.set_payload([points[2].id], {"colour": "blue", "brand": "Acme"})
    got = store.retrieve([points[2].id], with_vectors=True)[0]
    assert got.payload["colour"] == "blue" and got.payload["brand"] == "Acme"
    assert got.payload["product_id"] == "p2"
    assert np.allclose(got.vector, points[2].vector, atol=1e-5)


def test_delete(store):
    points = make_points(10)
    store.upsert(points)
    store.delete([points[0].id, points[1].id])
    assert store.count() == 8
    assert store.get(points[0].id) is None
    assert points[0].id not in {h.id for h in store.search(points[0].vector, limit=10)}


def test_search_ranks_nearest_first(store):
    points = make_points()
    store.upsert(points)
    hits = store.search(points[7].vector, limit=5)
    assert hits[0].id == points[7].id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert hits[0].payload["product_id"] == "p7"


def test_filtered_search(store):
    points = make_points()
    store.upsert(points)
    q = points[0].vector
    red = store.search(q, Filter(match={"colour": "red"}), limit=30)
    assert len(red) == 10 and all(h.payload["colour"] == "red" for h in red)
    red_or_blue = store.search(q, Filter(any={"colour": ["red", "blue"]}), limit=30)
    assert len(red_or_blue) == 20
    cheap = store.search(q, Filter(range={"price": (5, 9)}), limit=30)
    assert sorted(h.payload["price"] for h in cheap) == [5, 6, 7, 8, 9]
    not_red = store.search(q, Filter(exclude={"colour": ["red"]}), limit=30)
    assert len(not_red) == 20 and all(h.payload["colour"] != "red" for h in not_red)
    both = store.search(q, Filter(match={"colour": "red", "category": "dress"},
                                  range={"price": (None, 20)}), limit=30)
    assert {h.payload["product_id"] for h in both} == {"p0", "p6", "p12", "p18"}
    no_self = store.search(q, Filter(exclude_ids=[points[0].id]), limit=30)
    assert points[0].id not in {h.id for h in no_self} and len(no_self) == 29


def test_score_threshold(store):
    points = make_points()
    store.upsert(points)
    hits = store.search(points[0].vector, limit=30, score_threshold=0.5)
    assert hits and all(h.score >= 0.5 for h in hits) and len(hits) < 30


def test_pagination_has_no_duplicates(store):
    points = make_points(30)
    store.upsert(points)
    seen = []
    for page in range(4):
        seen += [h.id for h in store.search(points[0].vector, limit=8, offset=page * 8)]
    assert len(seen) == 30 and len(set(seen)) == 30


def test_scroll_walks_everything_once(store):
    store.upsert(make_points(25))
    seen, ids, offset = [], [], None
    while True:
        page, offset = store.scroll(Filter(match={"category": "dress"}), limit=4, offset=offset)
        seen += [p.payload["product_id"] for p in page]
        ids += [p.id for p in page]
        if offset is None:
            break
    assert sorted(seen) == sorted(f"p{i}" for i in range(0, 25, 2))
    assert ids == sorted(ids)  # point-id order, the order search breaks ties in


def tied_points(n_tied=40, n_other=20):
    """`n_tied` points sharing one vector (products sharing a photo), and some others."""
    shared = unit(np.arange(1, DIM + 1))
    tied = [StoredPoint(point_id(f"t{i}"), {"product_id": f"t{i}"}, shared.copy())
            for i in range(n_tied)]
    return shared, tied + make_points(n_other, seed=3)


def in_search_order(hits):
    return sorted(hits, key=lambda h: (-h.score, h.id))


@pytest.mark.parametrize("query", ["shared", "other"])
def test_equal_scores_page_in_point_id_order_by_offset(store, query):
    """Ties come in point-id order in every window, so offset pages fit together: each
    point once, none skipped, whatever the page size."""
    shared, points = tied_points()
    store.upsert(points)
    q = shared if query == "shared" else points[-1].vector
    everything = store.search(q, limit=100)
    assert len(everything) == 60 and everything == in_search_order(everything)
    assert [h.position for h in everything] == list(range(60))
    tied_scores = {h.score for h in everything if h.payload["product_id"].startswith("t")}
    assert len(tied_scores) == 1  # identical vectors score exactly the same
    for limit in (1, 7, 25):
        paged = [h.id for offset in range(0, 60, limit)
                 for h in store.search(q, limit=limit, offset=offset)]
        assert paged == [h.id for h in everything], f"limit {limit}"


def test_equal_scores_page_in_point_id_order_after_a_hit(store):
    shared, points = tied_points()
    store.upsert(points)
    everything = [h.id for h in store.search(shared, limit=100)]
    paged, after = [], None
    while True:
        page = store.search(shared, limit=7, after=after)
        paged += [h.id for h in page]
        if not page:
            break
        after = After(page[-1].score, page[-1].id, page[-1].position)
    assert paged == everything


def test_after_a_hit_whose_position_moved(store):
    """The position in `After` is a hint: hits added above, or removed, since the cursor
    was made don't make the next page repeat or skip any."""
    shared, points = tied_points()
    store.upsert(points)
    everything = store.search(shared, limit=100)
    cursor = everything[29]
    want = [h.id for h in everything[30:37]]
    for hint in (0, 5, 29, 31, 59, 500):
        page = store.search(shared, limit=7, after=After(cursor.score, cursor.id, hint))
        assert [h.id for h in page] == want, f"hint {hint}"
        assert [h.position for h in page] == list(range(30, 37))
    store.delete([everything[0].id, everything[45].id])  # the cursor's own point stays
    store.upsert([StoredPoint(point_id("new"), {"product_id": "new"}, shared.copy())])
    now = [h.id for h in store.search(shared, limit=100)]
    after_cursor = now[now.index(cursor.id) + 1:]
    page = store.search(shared, limit=7, after=After(cursor.score, cursor.id, 29))
    assert [h.id for h in page] == after_cursor[:7]
    store.delete([cursor.id])  # a cursor outlives its point
    page = store.search(shared, limit=100, after=After(cursor.score, cursor.id, 29))
    assert [h.id for h in page] == after_cursor


def test_facets_add_up(store):
    store.upsert(make_points(30))
    counts = store.facet("colour")
    assert counts == {"red": 10, "blue": 10, "green": 10}
    dresses = store.facet("colour", Filter(match={"category": "dress"}))
    assert sum(dresses.values()) == store.count(Filter(match={"category": "dress"})) == 15


def test_wrong_vector_size_is_refused(store):
    with pytest.raises(ValueError, match="size"):
        store.upsert([StoredPoint(point_id("x"), {}, np.ones(DIM + 1, np.float32))])
    assert store.count() == 0


@pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")
def test_beam_width_goes_with_every_search(store, monkeypatch):
    """`hnsw_ef` is in each search request, and None leaves the engine its default.

    Results cannot show it here: Edge scans small segments exactly whatever the beam,
    and qdrant-client's local mode always searches exactly. That a narrow beam does cost
    recall once an index is built is shown on Edge in test_edge_store.py."""
    points = make_points()
    store.upsert(points)
    sent = sent_search_params(store, monkeypatch)
    store.search(points[0].vector)
    store.hnsw_ef = 16
    store.search(points[0].vector, Filter(match={"colour": "red"}), limit=3)
    store.hnsw_ef = 200
    store.search(points[0].vector, offset=5)
    assert [params.hnsw_ef for params in sent] == [None, 16, 200]


@pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")
def test_the_beam_grows_with_the_store(store, monkeypatch):
    """Past BEAM_FROM points the beam widens by hnsw_ef_growth per tenfold of points, the
    count read at most every BEAM_REFRESH_S, so recall holds as the catalogue grows."""
    assert grown_beam(256, 128, 100_000) == 256 and grown_beam(256, 128, 1_000_000) == 384
    assert grown_beam(256, 128, 10_000_000) == 512 and grown_beam(None, 128, 10**7) is None
    monkeypatch.setattr(index_config, "BEAM_FROM", 3)
    points = make_points()
    store.upsert(points[:3])
    sent = sent_search_params(store, monkeypatch)
    store.hnsw_ef = 100
    store.search(points[0].vector)  # 3 points: the beam as configured
    store.upsert(points[3:])
    store.search(points[0].vector)  # 30, but counted less than a minute ago: still 100
    monkeypatch.setattr(index_config, "BEAM_REFRESH_S", 0.0)
    store.search(points[0].vector)  # 30 points, ten times BEAM_FROM: 100 + 128
    store.index = dataclasses.replace(store.index, hnsw_ef_growth=0)
    store.search(points[0].vector)  # a fixed beam
    assert [params.hnsw_ef for params in sent] == [100, 100, 228, 100]


def test_indexing_methods_answer_on_every_store(store):
    """What callers use to keep the index fresh, with no question of which backend it is."""
    points = make_points()
    store.upsert(points)
    assert 0 <= store.unindexed() <= store.count()
    assert not store.optimizing
    assert store.optimize_in_background() is False  # 30 points are below every threshold
    store.wait_for_optimizer(timeout=60)
    store.optimize()
    assert not store.optimizing
    assert 0 <= store.unindexed() <= store.count() == 30
    assert store.search(points[4].vector, limit=1)[0].id == points[4].id


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_hnsw_ef_setting_reaches_the_store(backend, tmp_path, monkeypatch):
    from catalogue.settings import CatalogueSettings
    from vitrine.wiring import open_store

    monkeypatch.setenv("VITRINE_HNSW_EF", "64")
    settings = CatalogueSettings(data_dir=tmp_path, store=backend, qdrant_url=":memory:")
    store = open_store(settings, DIM)
    assert store.hnsw_ef == 64
    store.close()


def test_top_is_a_candidate_set_kept_to_ids(store):
    points = make_points()
    store.upsert(points)
    query = Query(dense=points[4].vector)
    best = store.top(query, limit=5)
    assert len(best) == 5 and best[0].id == points[4].id
    assert all(h.payload == {} for h in best)  # ids and scores only
    assert [h.score for h in best] == sorted((h.score for h in best), reverse=True)
    kept = [points[i].id for i in (1, 2, 3)]
    assert {h.id for h in store.top(query, Filter(ids=kept), limit=10)} == set(kept)
    both = Filter(ids=kept).both(Filter(match={"colour": COLOURS[1]}))  # p1 is blue
    assert [h.id for h in store.search(query, both, limit=10)] == [points[1].id]
    assert store.top(query, Filter(ids=[]), limit=10) == []


def test_asking_for_no_hits_asks_the_engine_nothing(store, monkeypatch):
    """A page already filled by pins and the words' products asks for 0 more: a window of
    none used to widen, call after call, to the end of the result."""
    points = make_points()
    store.upsert(points)
    calls = []
    real = type(store)._nearest
    monkeypatch.setattr(type(store), "_nearest",
                        lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    assert store.search(points[0].vector, limit=0) == [] and calls == []
    assert len(store.search(points[0].vector, limit=3)) == 3 and len(calls) == 1
