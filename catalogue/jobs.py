"""Durable job and item state for ingest, in SQLite under the data folder.

An upload becomes an item (product metadata + the digest of its stored
original) inside a job. Items move queued -> running -> done | failed; a
process that dies mid-item leaves it running, and `requeue_stale` puts it
back in the queue on the next start. Attempts are counted here, because
brokers don't count redeliveries: an item that keeps killing its worker ends
failed after `max_attempts` instead of looping.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogue.schemas import ItemError, JobPublic, JobState

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,
    product_id TEXT, metadata TEXT, image_sha256 TEXT,
    state TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS items_state ON items(state, updated_at);
"""


@dataclass
class Item:
    job_id: str
    idx: int
    product_id: str | None
    metadata: dict[str, Any] | None
    image_sha256: str | None
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


class JobStore:
    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an accepted upload survives a crash
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def _tx(self, sql: str, args: Sequence = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, args)

    def create_job(self, kind: str, items: Sequence[NewItem]) -> str:
        job_id = uuid.uuid4().hex
        now = time.time()
        rows = [(job_id, i, it.product_id, json.dumps(it.metadata) if it.metadata else None,
                 it.image_sha256, "failed" if it.error else "queued", it.error, now)
                for i, it in enumerate(items)]
        with self._lock:
            self._tx("BEGIN IMMEDIATE")
            try:
                self._tx("INSERT INTO jobs VALUES (?, ?, ?, ?)", (job_id, kind, now, now))
                self._db.executemany(
                    "INSERT INTO items (job_id, idx, product_id, metadata, image_sha256, state,"
                    " error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._tx("COMMIT")
            except BaseException:
                self._tx("ROLLBACK")
                raise
        return job_id

    def claim(self, limit: int, job_id: str | None = None) -> list[Item]:
        """Mark up to `limit` queued items running (one attempt more) and return them."""
        where = "state = 'queued'" + (" AND job_id = ?" if job_id else "")
        args: tuple = (job_id,) if job_id else ()
        with self._lock:
            self._tx("BEGIN IMMEDIATE")
            rows = self._tx(f"SELECT job_id, idx, product_id, metadata, image_sha256, attempts "
                            f"FROM items WHERE {where} ORDER BY updated_at LIMIT ?",
                            (*args, limit)).fetchall()
            now = time.time()
            self._db.executemany(
                "UPDATE items SET state = 'running', attempts = attempts + 1, updated_at = ? "
                "WHERE job_id = ? AND idx = ?", [(now, r[0], r[1]) for r in rows])
            self._tx("COMMIT")
        return [Item(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, r[4], r[5] + 1)
                for r in rows]

    def items(self, job_id: str, state: str | None = None) -> list[Item]:
        sql = ("SELECT job_id, idx, product_id, metadata, image_sha256, attempts FROM items "
               "WHERE job_id = ?" + (" AND state = ?" if state else "") + " ORDER BY idx")
        with self._lock:
            rows = self._tx(sql, (job_id, state) if state else (job_id,)).fetchall()
        return [Item(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, r[4], r[5])
                for r in rows]

    def finish(self, item: Item, error: str | None = None) -> None:
        """Record an item's outcome: done, or failed with the reason."""
        now = time.time()
        with self._lock:
            self._tx("UPDATE items SET state = ?, error = ?, updated_at = ? "
                     "WHERE job_id = ? AND idx = ?",
                     ("failed" if error else "done", error, now, item.job_id, item.idx))
            self._tx("UPDATE jobs SET updated_at = ? WHERE id = ?", (now, item.job_id))

    def release(self, item: Item) -> None:
        """Put a running item back in the queue (e.g. the store was unreachable)."""
        with self._lock:
            self._tx("UPDATE items SET state = 'queued', updated_at = ? "
                     "WHERE job_id = ? AND idx = ? AND state = 'running'",
                     (time.time(), item.job_id, item.idx))

    def requeue_stale(self, older_than: float, max_attempts: int) -> int:
        """Items left running by a dead process: back to the queue, or failed when out of tries."""
        cutoff = time.time() - older_than
        with self._lock:
            self._tx("BEGIN IMMEDIATE")
            self._tx("UPDATE items SET state = 'failed', error = ? WHERE state = 'running' "
                     "AND updated_at <= ? AND attempts >= ?",
                     (f"gave up after {max_attempts} attempts: the worker died while "
                      "processing this upload each time", cutoff, max_attempts))
            n = self._tx("UPDATE items SET state = 'queued' WHERE state = 'running' "
                         "AND updated_at <= ?", (cutoff,)).rowcount
            self._tx("COMMIT")
        return n

    def pending_count(self) -> int:
        with self._lock:
            return self._tx("SELECT count(*) FROM items WHERE state IN ('queued', 'running')"
                            ).fetchone()[0]

    def get(self, job_id: str) -> JobPublic | None:
        with self._lock:
            job = self._tx("SELECT id, kind, created_at, updated_at FROM jobs WHERE id = ?",
                           (job_id,)).fetchone()
            if job is None:
                return None
            counts = dict(self._tx("SELECT state, count(*) FROM items WHERE job_id = ? "
                                   "GROUP BY state", (job_id,)).fetchall())
            errors = self._tx("SELECT idx, product_id, error FROM items WHERE job_id = ? AND "
                              "state = 'failed' ORDER BY idx LIMIT 1000", (job_id,)).fetchall()
        total = sum(counts.values())
        done, failed = counts.get("done", 0), counts.get("failed", 0)
        pending = total - done - failed
        if pending:
            state = JobState.running if counts.get("running") or done or failed else JobState.queued
        else:
            state = JobState.failed if total and failed == total else JobState.done
        return JobPublic(id=job[0], kind=job[1], state=state, total=total, succeeded=done,
                         failed=failed, pending=pending, created_at=job[2], updated_at=job[3],
                         errors=[ItemError(index=i, product_id=p, error=e) for i, p, e in errors])

    def close(self) -> None:
        self._db.close()
