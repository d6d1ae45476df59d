"""Managers' decisions on flagged images, kept by image SHA-256.

Decisions live in a store of their own, not in the product's payload, so they
outlive the product: an approved image is not flagged again and a rejected one is
not indexed again, under any product id.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

from catalogue.db import open_database


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


DECISIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    image_sha256 TEXT NOT NULL, product_id TEXT NOT NULL, decision TEXT NOT NULL,
    category TEXT, score DOUBLE PRECISION, decided_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (image_sha256, product_id)
);
CREATE INDEX IF NOT EXISTS decisions_image ON decisions(image_sha256, decided_at);
"""


class DecisionStore:
    """Managers' decisions by image SHA-256 and product id: in a SQLite file of their own
    (local profile), or in the cluster's PostgreSQL, shared by every replica and worker."""

    def __init__(self, location: str | Path):
        """`location`: a SQLite file path, `sqlite:///path` or `postgresql://...`."""
        self._db = open_database(location, DECISIONS_SCHEMA, "moderation decisions store")

    def record(self, image_sha256: str, product_id: str, decision: Decision,
               category: str | None = None, score: float | None = None) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (image_sha256, product_id) DO UPDATE SET "
                "decision = excluded.decision, category = excluded.category, "
                "score = excluded.score, decided_at = excluded.decided_at",
                (image_sha256, product_id, Decision(decision).value, category, score,
                 time.time()))

    def lookup(self, digests: Sequence[str]) -> dict[str, Decision]:
        """The latest decision on each image that has one, whichever product it came with."""
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        with self._db.transaction() as db:
            rows = db.execute(
                f"SELECT image_sha256, decision FROM decisions WHERE image_sha256 IN ({marks}) "
                "ORDER BY decided_at", list(digests)).fetchall()
        return {digest: Decision(decision) for digest, decision in rows}  # latest wins

    def close(self) -> None:
        self._db.close()


def decisions_path(data_dir: Path) -> Path:
    return Path(data_dir) / "moderation.sqlite3"
