"""What only the embedded backend does: persistence, exclusivity, copy-and-swap indexing."""

import numpy as np
import pytest

from catalogue.store.base import Filter, StoredPoint, point_id
from catalogue.store.edge import EdgeStore


def points(n, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [StoredPoint(point_id(str(i)), {"product_id": str(i), "colour": ["red", "blue"][i % 2]},
                        v[i]) for i in range(n)]


def test_survives_restart(tmp_path):
    store = EdgeStore(tmp_path, 16)
    store.upsert(points(50))
    store.close()
    reopened = EdgeStore(tmp_path, 16)
    assert reopened.count() == 50
    assert reopened.count(Filter(match={"colour": "red"})) == 25
    reopened.close()


def test_second_open_is_refused(tmp_path):
    store = EdgeStore(tmp_path, 16)
    with pytest.raises(Exception, match="WAL"):
        EdgeStore(tmp_path, 16)
    store.close()


def test_optimize_swaps_in_indexed_copy_and_keeps_concurrent_writes(tmp_path):
    store = EdgeStore(tmp_path, 16, optimize_threshold=100, indexing_threshold_kb=1)
    pts = points(400)
    store.upsert(pts[:300])
    assert store.unindexed() == 300
    assert store.optimize_in_background()
    # Writes while the child process indexes the copy must survive the swap.
    store.upsert(pts[300:])
    store.delete([pts[0].id])
    store.set_payload([pts[1].id], {"colour": "green"})
    hits_during = store.search(pts[5].vector, limit=1)
    store.wait_for_optimizer()
    assert hits_during[0].id == pts[5].id
    assert store.count() == 399
    assert store.get(pts[0].id) is None
    assert store.get(pts[1].id).payload["colour"] == "green"
    assert store.unindexed() < 300  # the first 300 are in the HNSW index now
    assert store.search(pts[350].vector, limit=1)[0].id == pts[350].id
    store.close()
    reopened = EdgeStore(tmp_path, 16)
    assert reopened.count() == 399
    assert len(list(tmp_path.glob("shard-*"))) == 1
    reopened.close()


def test_search_keeps_answering_while_the_index_is_built(tmp_path):
    import threading
    import time

    store = EdgeStore(tmp_path, 16, optimize_threshold=100, indexing_threshold_kb=1)
    pts = points(3000)
    store.upsert(pts)
    latencies, done = [], threading.Event()

    def search_loop():
        while not done.is_set():
            t = time.perf_counter()
            store.search(pts[0].vector, limit=5)
            latencies.append(time.perf_counter() - t)

    reader = threading.Thread(target=search_loop)
    reader.start()
    store.optimize()
    done.set()
    reader.join()
    assert store.unindexed() == 0
    assert len(latencies) > 20  # searches ran throughout, not only before and after
    assert store.search(pts[7].vector, limit=1)[0].id == pts[7].id
    store.close()


def test_hnsw_ef_reaches_the_index(tmp_path):
    """A wider search beam finds more of the exact top 10 once the HNSW index is built.

    The engine scans segments under its full-scan threshold (10 MB of vectors) exactly,
    whatever the beam: 20,000 random 128-d vectors are just over it, and hard for HNSW.
    """
    dim, k = 128, 10
    store = EdgeStore(tmp_path, dim, indexing_threshold_kb=1)
    pts = points(20_000, dim)
    store.upsert(pts)
    store.optimize()
    assert store.unindexed() == 0
    queries = [p.vector for p in points(60, dim, seed=1)]

    def recall(ef):
        store.hnsw_ef = ef
        found = 0
        for q in queries:
            exact = {h.id for h in store.search(q, limit=k, exact=True)}
            found += len(exact & {h.id for h in store.search(q, limit=k)})
        return found / (k * len(queries))

    narrow, wide = recall(10), recall(400)
    store.close()
    assert wide >= 0.9, wide
    assert narrow < wide - 0.3, (narrow, wide)
