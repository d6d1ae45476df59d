"""One small SQL layer for the stores that keep state in a database: SQLite on one host,
PostgreSQL shared by API replicas and workers. Stores write their SQL once, with `?`
placeholders, and run it on either (`open_database` picks by the location)."""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class Sqlite:
    """One connection, one writer at a time (BEGIN IMMEDIATE), WAL for concurrent readers."""

    lock_rows = ""  # SQLite locks the whole database for a write transaction

    def __init__(self, path: Path, schema: str,
                 upgrade: Callable[[sqlite3.Connection], None] | None = None):
        """`upgrade` brings a database from an older version up to `schema`; it runs first."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # what was answered survives a crash
        if upgrade:
            upgrade(self._db)
        self._db.executescript(schema)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class _PgConnection:
    """Adapts psycopg to the sqlite3 calls the stores make (`?` placeholders)."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql: str, args: Sequence = ()):
        return self._conn.execute(sql.replace("?", "%s"), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence]):
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


class Postgres:
    """One connection per store object, reopened when broken (e.g. a database restart)."""

    lock_rows = " FOR UPDATE SKIP LOCKED"  # concurrent claimers take different rows

    def __init__(self, url: str, schema: str, name: str, connect_timeout: float = 10):
        import psycopg

        self._psycopg = psycopg
        self._url, self._timeout = url, connect_timeout
        self._conn = None
        self._lock = threading.Lock()
        with self.transaction() as db:
            # Replicas starting together would race on CREATE TABLE IF NOT EXISTS.
            db.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(name.encode()),))
            for statement in filter(str.strip, schema.split(";")):
                db.execute(statement)

    def _connection(self):
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._psycopg.connect(self._url, autocommit=True,
                                               connect_timeout=int(self._timeout))
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[_PgConnection]:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                yield _PgConnection(conn)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def open_database(location: str | Path, schema: str, name: str,
                  upgrade: Callable[[sqlite3.Connection], None] | None = None
                  ) -> Sqlite | Postgres:
    """`location`: a file path or `sqlite:///path` (SQLite), or `postgresql://...`.
    `name` says what the database holds, in errors, and keys the lock that serialises
    schema creation on PostgreSQL."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return Postgres(text, schema, name)
    if text.startswith("sqlite:///"):
        return Sqlite(Path(text.removeprefix("sqlite:///")), schema, upgrade)
    if "://" in text:
        raise ValueError(f"unsupported location {text!r} for the {name}: use a path, "
                         "sqlite:///path or postgresql://...")
    return Sqlite(Path(text), schema, upgrade)
