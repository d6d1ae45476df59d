"""Durable job and item state for ingest: SQLite for the local profile, PostgreSQL for a cluster.

An upload becomes an item (product metadata + the digest of its stored
original) inside a job. Items move queued -> running -> done | failed; a
process that dies mid-item leaves it running, and `requeue_stale` (or, for a
Celery task redelivered after its worker died, `requeue_owned`) puts it back in
the queue. Attempts are counted here, because brokers don't count
redeliveries: an item that keeps killing its worker ends failed after
`max_attempts` instead of looping. An item that was tried and did not finish is
a suspect: `claim` hands it out alone, so a poison upload cannot take the
uploads batched with it down with it.

`JobStore(location)` picks the database from the location: a file path or
`sqlite:///path` for SQLite (one host), `postgresql://...` for PostgreSQL
(shared by API replicas and workers; `claim` uses `FOR UPDATE SKIP LOCKED`).
Both run the same SQL below, so both pass the same tests.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogue import metrics
from catalogue.db import open_database
from catalogue.schemas import ItemError, JobPublic, JobState

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL, removed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,
    product_id TEXT, metadata TEXT, image_sha256 TEXT,
    state TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL, owner TEXT, outcome TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS items_state ON items(state, updated_at);
CREATE INDEX IF NOT EXISTS items_owner ON items(owner);
"""

ITEM_COLUMNS = "job_id, idx, product_id, metadata, image_sha256, attempts"


@dataclass
class Item:
    """An item as claimed for processing (failed-on-arrival items never are, so these
    fields are always set here; the empty values only stand in for listing such rows)."""

    job_id: str
    idx: int
    product_id: str
    metadata: dict[str, Any]
    image_sha256: str
    attempts: int = 0

    @property
    def key(self) -> str:
        return f"{self.job_id}:{self.idx}"


@dataclass
class NewItem:
    """An item as accepted: either ready to process, or already failed with a reason."""

    product_id: str | None
    metadata: dict[str, Any] | None = None
    image_sha256: str | None = None
    error: str | None = None


def _item(row: Sequence[Any], attempts_delta: int = 0) -> Item:
    return Item(row[0], row[1], row[2] or "", json.loads(row[3]) if row[3] else {},
                row[4] or "", row[5] + attempts_delta)


def gave_up(max_attempts: int) -> str:
    return (f"gave up after {max_attempts} attempts: the worker died while processing "
            "this upload each time")


# Columns added since the first release: (table, column, declaration).
ADDED_COLUMNS = (("items", "owner", "TEXT"), ("items", "outcome", "TEXT"),
                 ("jobs", "removed", "INTEGER NOT NULL DEFAULT 0"))


def _add_columns(db: sqlite3.Connection) -> None:
    """A data folder from an older version lacks the columns added since."""
    for table, column, declaration in ADDED_COLUMNS:
        columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if columns and column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


@dataclass
class Outcome:
    """How an item ended: failed with `error`, or done with a `change` (added, updated,
    unchanged) and perhaps a `warning` (a photo of several that could not be fetched)."""

    item: Item
    error: str | None = None
    change: str | None = None
    warning: str | None = None


@dataclass
class QueueStats:
    queued: int
    running: int
    oldest_queued_at: float | None  # a time.time(); None when nothing is queued


class JobStore:
    def __init__(self, location: str | Path):
        """`location`: a SQLite file path, `sqlite:///path` or `postgresql://...`."""
        self._db = open_database(location, SCHEMA, "job store", upgrade=_add_columns)

    def create_job(self, kind: str, items: Sequence[NewItem]) -> str:
        job_id = uuid.uuid4().hex
        now = time.time()
        rows = [(job_id, i, it.product_id, json.dumps(it.metadata) if it.metadata else None,
                 it.image_sha256, "failed" if it.error else "queued", it.error, now)
                for i, it in enumerate(items)]
        with self._db.transaction() as db:
            db.execute("INSERT INTO jobs (id, kind, created_at, updated_at) VALUES (?, ?, ?, ?)",
                       (job_id, kind, now, now))
            if rows:
                db.executemany(
                    "INSERT INTO items (job_id, idx, product_id, metadata, image_sha256, state,"
                    " error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        failed = [it.error for it in items if it.error]
        metrics.count_outcomes([None] * len(failed), failed)
        return job_id

    def claim(self, limit: int, job_id: str | None = None, owner: str | None = None,
              fresh_only: bool = False) -> list[Item]:
        """Mark up to `limit` queued items running (one attempt more) and return them.

        An item already tried (a suspect: its worker died, or it timed out) comes
        alone, so whatever killed that worker takes only itself down next time.
        `owner` (a Celery task id) lets a redelivery of that task find its items;
        `fresh_only` takes no suspect (for topping up a batch).
        """
        where = "state = 'queued'" + (" AND job_id = ?" if job_id else "")
        args: tuple = (job_id,) if job_id else ()
        select = (f"SELECT {ITEM_COLUMNS} FROM items WHERE {where} AND attempts {{}} "
                  f"ORDER BY updated_at LIMIT ?{self._db.lock_rows}")
        with self._db.transaction() as db:
            rows = [] if fresh_only else db.execute(select.format("> 0"),
                                                    (*args, 1)).fetchall()
            if not rows:
                rows = db.execute(select.format("= 0"), (*args, limit)).fetchall()
            now = time.time()
            if rows:
                db.executemany(
                    "UPDATE items SET state = 'running', attempts = attempts + 1, owner = ?, "
                    "updated_at = ? WHERE job_id = ? AND idx = ?",
                    [(owner, now, r[0], r[1]) for r in rows])
        return [_item(r, attempts_delta=1) for r in rows]

    def items(self, job_id: str, state: str | None = None) -> list[Item]:
        sql = (f"SELECT {ITEM_COLUMNS} FROM items WHERE job_id = ?"
               + (" AND state = ?" if state else "") + " ORDER BY idx")
        with self._db.transaction() as db:
            rows = db.execute(sql, (job_id, state) if state else (job_id,)).fetchall()
        return [_item(r) for r in rows]

    def finish(self, item: Item, error: str | None = None) -> None:
        """Record an item's outcome: done, or failed with the reason."""
        self.finish_many([Outcome(item, error)])

    def finish_many(self, outcomes: Sequence[Outcome]) -> None:
        """Record a batch's outcomes in one transaction (one fsync, not one per item). A
        done item's warning is kept in its error column."""
        now = time.time()
        with self._db.transaction() as db:
            for o in outcomes:
                db.execute("UPDATE items SET state = ?, error = ?, outcome = ?, updated_at = ? "
                           "WHERE job_id = ? AND idx = ?",
                           ("failed" if o.error else "done", o.error or o.warning,
                            None if o.error else o.change, now, o.item.job_id, o.item.idx))
            for job_id in {o.item.job_id for o in outcomes}:
                db.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (now, job_id))
        metrics.count_outcomes([o.change for o in outcomes], [o.error for o in outcomes])

    def add_removed(self, job_id: str, count: int) -> None:
        """Count products an import pruned (absent from its feed) in its job."""
        with self._db.transaction() as db:
            db.execute("UPDATE jobs SET removed = removed + ?, updated_at = ? WHERE id = ?",
                       (count, time.time(), job_id))

    def release(self, item: Item) -> None:
        """Put a running item back in the queue, untried (e.g. the store was unreachable):
        an outage is not the item's fault, so the attempt does not count."""
        with self._db.transaction() as db:
            db.execute("UPDATE items SET state = 'queued', updated_at = ?, owner = NULL, "
                       "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                       "WHERE job_id = ? AND idx = ? AND state = 'running'",
                       (time.time(), item.job_id, item.idx))

    def _requeue(self, where: str, args: Sequence, max_attempts: int) -> int:
        with self._db.transaction() as db:
            failed = db.execute(f"UPDATE items SET state = 'failed', error = ?, updated_at = ? "
                                f"WHERE state = 'running' AND {where} AND attempts >= ?",
                                (gave_up(max_attempts), time.time(), *args, max_attempts)
                                ).rowcount
            queued = db.execute(f"UPDATE items SET state = 'queued', owner = NULL "
                                f"WHERE state = 'running' AND {where}", tuple(args)).rowcount
        metrics.count_gave_up(failed)
        return queued

    def requeue_stale(self, older_than: float, max_attempts: int) -> int:
        """Items left running by a dead process: back to the queue, or failed when out of tries."""
        return self._requeue("updated_at <= ?", (time.time() - older_than,), max_attempts)

    def requeue_owned(self, owner: str, max_attempts: int) -> int:
        """Items a previous delivery of task `owner` left running (its worker died): back to
        the queue, or failed when out of tries. Returns how many were queued again."""
        return self._requeue("owner = ?", (owner,), max_attempts)

    def queued_count(self, older_than: float | None = None) -> int:
        """Queued items; with `older_than`, only those waiting that many seconds or more."""
        sql = "SELECT count(*) FROM items WHERE state = 'queued'"
        args: tuple = ()
        if older_than is not None:
            sql, args = sql + " AND updated_at <= ?", (time.time() - older_than,)
        with self._db.transaction() as db:
            return db.execute(sql, args).fetchone()[0]

    def withdraw(self, job_id: str) -> bool:
        """Delete a job no worker has touched (its dispatch failed); False if one has, in
        which case the job stands and will finish."""
        with self._db.transaction() as db:
            rows = db.execute(f"SELECT state, attempts FROM items WHERE job_id = ?"
                              f"{self._db.lock_rows.replace(' SKIP LOCKED', '')}",
                              (job_id,)).fetchall()
            if any(attempts > 0 or state in ("running", "done") for state, attempts in rows):
                return False
            db.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return True

    def queue_stats(self) -> QueueStats:
        """Items queued and running, and since when the longest-waiting queued one waits
        (for monitoring: read at each scrape, from the state index)."""
        with self._db.transaction() as db:
            rows = db.execute("SELECT state, count(*), min(updated_at) FROM items "
                              "WHERE state IN ('queued', 'running') GROUP BY state").fetchall()
        found = {state: (count, oldest) for state, count, oldest in rows}
        queued, oldest = found.get("queued", (0, None))
        return QueueStats(queued, found.get("running", (0, None))[0], oldest)

    def pending_count(self) -> int:
        with self._db.transaction() as db:
            return db.execute("SELECT count(*) FROM items WHERE state IN ('queued', 'running')"
                              ).fetchone()[0]

    def get(self, job_id: str) -> JobPublic | None:
        with self._db.transaction() as db:
            job = db.execute("SELECT id, kind, created_at, updated_at, removed FROM jobs "
                             "WHERE id = ?", (job_id,)).fetchone()
            if job is None:
                return None
            counts = dict(db.execute("SELECT state, count(*) FROM items WHERE job_id = ? "
                                     "GROUP BY state", (job_id,)).fetchall())
            changes = dict(db.execute("SELECT outcome, count(*) FROM items WHERE job_id = ? "
                                      "AND state = 'done' GROUP BY outcome", (job_id,)).fetchall())
            noted = db.execute("SELECT idx, product_id, error, state FROM items WHERE job_id = ? "
                               "AND error IS NOT NULL ORDER BY idx LIMIT 2000",
                               (job_id,)).fetchall()
        total = sum(counts.values())
        done, failed = counts.get("done", 0), counts.get("failed", 0)
        pending = total - done - failed
        if pending:
            state = JobState.running if counts.get("running") or done or failed else JobState.queued
        else:
            state = JobState.failed if total and failed == total else JobState.done
        return JobPublic(id=job[0], kind=job[1], state=state, total=total, succeeded=done,
                         failed=failed, pending=pending, created_at=job[2], updated_at=job[3],
                         added=changes.get("added", 0), updated=changes.get("updated", 0),
                         unchanged=changes.get("unchanged", 0), removed=job[4],
                         errors=[ItemError(index=i, product_id=p, error=e)
                                 for i, p, e, st in noted if st == "failed"][:1000],
                         warnings=[ItemError(index=i, product_id=p, error=e)
                                   for i, p, e, st in noted if st == "done"][:1000])

    def close(self) -> None:
        self._db.close()
