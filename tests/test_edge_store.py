"""What only the embedded backend does: persistence, exclusivity, copy-and-swap indexing."""

import threading

import numpy as np
import pytest

from catalogue.store.base import StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.filters import Filter


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


class HeldOptimizer:
    """Holds `store`'s next optimization open between taking its copy and swapping it in.

    `copied` is set once the copy is taken; the real child process then indexes it,
    and the swap waits for `release` (at most `HOLD_SECONDS`, so that a test that
    never gets to release fails instead of hanging).
    """

    HOLD_SECONDS = 60

    def __init__(self, store, monkeypatch):
        self.copied, self.release = threading.Event(), threading.Event()
        index_copy = store._index_copy

        def index_and_hold(path):
            self.copied.set()
            index_copy(path)
            self.release.wait(self.HOLD_SECONDS)

        monkeypatch.setattr(store, "_index_copy", index_and_hold)

    def wait_until_copied(self) -> None:
        assert self.copied.wait(self.HOLD_SECONDS), "the optimizer never took a copy"


def test_optimize_swaps_in_indexed_copy_and_keeps_concurrent_writes(tmp_path, monkeypatch):
    store = EdgeStore(tmp_path, 16, optimize_threshold=100, indexing_threshold_kb=1)
    pts = points(400)
    store.upsert(pts[:300])
    assert store.unindexed() == 300
    held = HeldOptimizer(store, monkeypatch)
    assert store.optimize_in_background()
    held.wait_until_copied()
    assert not store.optimize_in_background(force=True)  # one at a time
    # The copy was taken without these writes: only the replay at the swap keeps them.
    store.upsert(pts[300:])
    store.delete([pts[0].id])
    store.set_payload([pts[1].id], {"colour": "green"})
    assert store.optimizing
    held.release.set()
    store.wait_for_optimizer()
    assert not store.optimizing
    assert store.count() == 399
    assert store.get(pts[0].id) is None
    assert store.get(pts[1].id).payload["colour"] == "green"
    # The copy's 300 are in the HNSW index, the 100 replayed writes are not yet (99 counted:
    # the deleted point still counts as indexed until the engine vacuums it).
    assert 0 < store.unindexed() <= 100
    assert store.search(pts[350].vector, limit=1)[0].id == pts[350].id
    store.close()
    reopened = EdgeStore(tmp_path, 16)
    assert reopened.count() == 399
    assert len(list(tmp_path.glob("shard-*"))) == 1
    reopened.close()


def test_search_keeps_answering_while_the_index_is_built(tmp_path, monkeypatch):
    """Searches finish inside an optimization, not only before and after it.

    They start once the copy is taken, as the child process starts indexing it, and
    the optimization is held open until they are done: it is still in progress after
    the last one. A search that waited for the optimization would return only after
    the hold gave up and the swap was made, when `optimizing` is False again."""
    store = EdgeStore(tmp_path, 16, optimize_threshold=100, indexing_threshold_kb=1)
    pts = points(3000)
    store.upsert(pts)
    held = HeldOptimizer(store, monkeypatch)
    assert store.optimize_in_background()
    held.wait_until_copied()
    found = [store.search(p.vector, limit=1)[0].id for p in pts[:50]]
    assert store.optimizing
    held.release.set()
    store.wait_for_optimizer()
    assert not store.optimizing and store.unindexed() == 0
    assert found == [p.id for p in pts[:50]]
    assert store.search(pts[7].vector, limit=1)[0].id == pts[7].id
    store.close()


def test_a_narrow_beam_loses_recall_once_the_index_is_built(tmp_path):
    """A wider search beam finds more of the exact top 10 when the HNSW index is searched.

    The engine scans segments under its full-scan threshold exactly, whatever the beam;
    at 1 KB every segment of these 3,000 random 64-d vectors is searched through the
    graph, and random vectors are hard for HNSW (recall about 0.5 at ef 10, 1.0 at 400).
    """
    dim, k = 64, 10
    store = EdgeStore(tmp_path, dim, indexing_threshold_kb=1, full_scan_threshold_kb=1)
    store.upsert(points(3000, dim))
    store.optimize()
    assert store.unindexed() == 0
    queries = [p.vector for p in points(40, dim, seed=1)]

    def recall(ef):
        store.hnsw_ef = ef
        found = 0
        for q in queries:
            exact = {h.id for h in store.search(q, limit=k, exact=True)}
            found += len(exact & {h.id for h in store.search(q, limit=k)})
        return found / (k * len(queries))

    narrow, wide = recall(10), recall(400)
    store.close()
    assert wide >= 0.95, wide
    assert narrow < wide - 0.2, (narrow, wide)


def test_a_shard_is_warmed_when_opened_and_the_indexed_copy_before_it_takes_over(
        tmp_path, monkeypatch):
    """The engine drops a shard's files from the page cache when it opens them, so the
    store reads them once (catalogue.store.edge_warm): on open, and for the indexed copy
    while the old shard still answers, never after the swap."""
    import catalogue.store.edge as edge

    store = EdgeStore(tmp_path, 16, optimize_threshold=100, indexing_threshold_kb=1)
    pts = points(300)
    store.upsert(pts)
    warmed = []
    monkeypatch.setattr(edge, "warm", lambda path: warmed.append((path, store._generation)))
    store.optimize()
    assert warmed == [(tmp_path / "shard-1", 0)]  # the copy, while generation 0 served
    assert store._generation == 1
    store.close()
    warmed.clear()
    EdgeStore(tmp_path, 16).close()
    assert [path for path, _ in warmed] == [tmp_path / "shard-1"]


def test_warming_reads_every_file_of_a_shard_that_fits_and_none_of_one_that_does_not(
        tmp_path):
    from catalogue.store.edge_warm import warm

    store = EdgeStore(tmp_path, 16)
    store.upsert(points(200))
    store.close()
    shard = tmp_path / "shard-0"
    size = sum(p.stat().st_size for p in shard.rglob("*") if p.is_file())
    assert size > 0
    assert warm(shard) == size
    assert warm(shard, budget=size - 1) == 0


def test_the_memory_warming_may_fill_is_held_to_the_tightest_cgroup_limit(tmp_path):
    """psutil sees the machine, not a container: under a memory cgroup's limit (at any
    level above the process), warming may fill only the room the limit leaves above the
    group's anonymous memory, in cgroup v1 and v2 alike."""
    import psutil

    from catalogue.store.edge_warm import available_memory

    def group(path, limit_file, limit, stat):
        path.mkdir(parents=True, exist_ok=True)
        (path / limit_file).write_text(f"{limit}\n")
        (path / "memory.stat").write_text(f"{stat}\n")

    machine = psutil.virtual_memory().available
    membership = tmp_path / "cgroup"
    v2 = tmp_path / "v2"
    membership.write_text("0::/pod/app\n")
    group(v2 / "pod" / "app", "memory.max", "max", "anon 5\nfile 7")
    assert available_memory(v2, membership) == pytest.approx(machine, rel=0.05)
    group(v2 / "pod", "memory.max", 3 << 30, f"anon {1 << 30}\nfile {2 << 30}")
    assert available_memory(v2, membership) == 2 << 30  # the parent's limit less its anon

    v1 = tmp_path / "v1"
    membership.write_text("12:pids:/x\n4:memory:/box\n0::/\n")
    group(v1 / "memory" / "box", "memory.limit_in_bytes", 2**63 - 4096, "total_rss 1")
    assert available_memory(v1, membership) == pytest.approx(machine, rel=0.05)
    group(v1 / "memory", "memory.limit_in_bytes", 1 << 30, f"cache 9\ntotal_rss {1 << 28}")
    assert available_memory(v1, membership) == (1 << 30) - (1 << 28)
