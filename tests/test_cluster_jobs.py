"""The job store contract, run on SQLite and on PostgreSQL (a fresh schema per test run)."""

from __future__ import annotations

import threading

import pytest

from catalogue.jobs import JobStore, NewItem
from testkit.postgres import postgres_schema


@pytest.fixture(scope="module")
def pg_url():
    with postgres_schema("jobs") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "jobs.sqlite3"
    url = request.getfixturevalue("pg_url")
    store = JobStore(url)  # each test starts from empty tables
    with store._db.transaction() as db:
        db.execute("DELETE FROM items")
        db.execute("DELETE FROM jobs")
    store.close()
    return url


@pytest.fixture
def jobs(location):
    store = JobStore(location)
    yield store
    store.close()


def new(n: int, start: int = 0) -> list[NewItem]:
    return [NewItem(f"p{i}", {"id": f"p{i}", "version": 1.0}, "0" * 64)
            for i in range(start, start + n)]


def test_create_claim_finish_and_get(jobs):
    job = jobs.create_job("upload", [*new(2), NewItem("bad", error="no image")])
    state = jobs.get(job)
    assert (state.total, state.pending, state.failed) == (3, 2, 1)
    assert state.errors[0].error == "no image"
    items = jobs.claim(10)
    assert sorted(i.product_id for i in items) == ["p0", "p1"]
    assert all(i.attempts == 1 for i in items)
    assert jobs.get(job).state == "running"
    jobs.finish(items[0])
    jobs.finish(items[1], "boom")
    state = jobs.get(job)
    assert (state.state, state.succeeded, state.failed, state.pending) == ("done", 1, 2, 0)
    assert jobs.claim(10) == []
    assert jobs.get("nope") is None


def test_claim_respects_limit_and_job(jobs):
    a = jobs.create_job("upload", new(3))
    b = jobs.create_job("upload", new(2, 3))
    assert len(jobs.claim(2)) == 2
    only_b = jobs.claim(10, job_id=b)
    assert {i.job_id for i in only_b} == {b} and len(only_b) == 2
    assert [i.job_id for i in jobs.claim(10)] == [a]


def test_release_does_not_count_an_attempt(jobs):
    jobs.create_job("upload", new(1))
    item = jobs.claim(1)[0]
    jobs.release(item)  # e.g. the vector store was down
    again = jobs.claim(1)
    assert again[0].attempts == 1  # still a fresh item, batched as usual


def test_suspects_are_claimed_alone_and_fail_after_max_attempts(jobs):
    job = jobs.create_job("upload", new(3))
    batch = jobs.claim(10, owner="task-1")
    assert len(batch) == 3
    # The worker died: a redelivery of the same task puts its items back.
    assert jobs.requeue_owned("task-1", max_attempts=3) == 3
    assert len(jobs.claim(10, fresh_only=True)) == 0  # nothing fresh is left
    for _ in range(3):  # each suspect comes alone
        got = jobs.claim(10, owner="task-2")
        assert len(got) == 1 and got[0].attempts == 2
        jobs.finish(got[0]) if got[0].product_id != "p1" else None
    # p1 keeps killing its worker until it runs out of attempts.
    assert jobs.requeue_owned("task-2", max_attempts=3) == 1
    assert jobs.claim(10, owner="task-3")[0].attempts == 3
    assert jobs.requeue_owned("task-3", max_attempts=3) == 0
    state = jobs.get(job)
    assert (state.state, state.succeeded, state.failed) == ("done", 2, 1)
    assert "gave up after 3 attempts" in state.errors[0].error


class Clock:
    """The job store's time.time, moved by hand."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("catalogue.jobs.time", clock)  # the store's own `time` only
    return clock


def test_requeue_stale_only_touches_old_running_items(jobs, clock):
    jobs.create_job("upload", new(3))
    jobs.claim(1)
    clock.now += 30
    jobs.claim(1)  # claimed 30 s after the first
    assert jobs.requeue_stale(60, 3) == 0  # still fresh: their workers may be alive
    clock.now += 40  # the first claimed 70 s ago, the second 40 s ago
    assert jobs.requeue_stale(60, 3) == 1
    assert jobs.queued_count() == 2
    clock.now += 10
    assert jobs.requeue_stale(60, 3) == 0  # the second is 50 s old: left alone
    clock.now += 20
    assert jobs.requeue_stale(60, 3) == 1


def test_queued_count_by_age(jobs, clock):
    jobs.create_job("upload", new(2))
    clock.now += 100
    jobs.create_job("upload", new(1, 2))
    clock.now += 50  # two items waiting 150 s, one 50 s
    assert jobs.queued_count() == 3
    assert jobs.queued_count(older_than=3600) == 0
    assert jobs.queued_count(older_than=100) == 2
    assert jobs.queued_count(older_than=50) == 3  # exactly that long counts
    jobs.claim(2)  # the two oldest go running: no longer waiting
    assert jobs.queued_count(older_than=0) == 1


def test_withdraw_removes_an_untouched_job_only(jobs):
    untouched = jobs.create_job("upload", new(2))
    assert jobs.withdraw(untouched)
    assert jobs.get(untouched) is None and jobs.queued_count() == 0
    taken = jobs.create_job("upload", new(1))
    jobs.claim(1)
    assert not jobs.withdraw(taken)  # a worker has it: the job stands
    assert jobs.get(taken).state == "running"


def test_concurrent_claims_never_hand_out_an_item_twice(location):
    setup = JobStore(location)
    setup.create_job("upload", new(60))
    setup.close()
    got: list[str] = []
    lock = threading.Lock()

    def worker():
        store = JobStore(location)  # one connection each, as separate processes have
        while items := store.claim(4):
            with lock:
                got.extend(i.key for i in items)
            for it in items:
                store.finish(it)
        store.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 60 and len(set(got)) == 60


def test_sqlite_store_from_before_the_owner_column_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at REAL NOT NULL,
                           updated_at REAL NOT NULL);
        CREATE TABLE items (job_id TEXT NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,
            product_id TEXT, metadata TEXT, image_sha256 TEXT, state TEXT NOT NULL, error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, idx));
    """)
    db.close()
    store = JobStore(f"sqlite:///{path}")
    store.create_job("upload", new(1))
    assert store.claim(1, owner="t")[0].product_id == "p0"
    store.close()


def test_unknown_url_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unsupported location .* for the job store"):
        JobStore("mysql://x/y")
