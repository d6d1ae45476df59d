"""Model versions: which model's vectors the catalogue holds, and which set is live.

Vectors from two models are not comparable, so each model version (the model, a
fingerprint of its files or its hub revision, its vector size and preprocessing) gets
a store of its own: a shard folder `<data>/qdrant/<version>/` in the embedded store, a
collection `<collection>-<version>` on a Qdrant server. One version is live: search,
facets and ingest use only it. Starting with another model refuses (`ModelMismatch`,
naming `vitrine reindex`) rather than mixing vectors; `vitrine reindex --model M`
re-encodes the catalogue into M's version from the stored originals and makes it
live once it is complete and checked (catalogue.reindex); `vitrine models` lists the
versions, `use` makes another one live again (a rollback), `remove` deletes one.

The registry lives beside the jobs: SQLite under the data folder, PostgreSQL in a
cluster, so every replica and worker sees the same live version. Replicas starting
together write the same rows, so each write is one upsert (INSERT ... ON CONFLICT), never
a read or a delete before an insert that another replica's insert could race.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogue.db import open_database
from embedding.encoder import Encoder

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, dim INTEGER NOT NULL, preprocess TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, evaluation TEXT,
    location TEXT
);
CREATE TABLE IF NOT EXISTS model_version_products (
    id TEXT PRIMARY KEY, products INTEGER NOT NULL, counted_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS model_version_keywords (
    id TEXT PRIMARY KEY, scheme TEXT NOT NULL
);
"""
STATES = ("building", "ready", "live")  # ready: complete, not live (an older one, say)
FINGERPRINTED = ("config.json", "open_clip_config.json", "preprocessor_config.json",
                 "tokenizer.json", "vocab.json")
SAMPLE = 1 << 20  # bytes hashed from each end of a weights file


class ModelMismatch(RuntimeError):
    """The configured model is not the live version's: serving it would mix vectors."""

    def __init__(self, live: ModelVersion, configured: ModelVersion):
        super().__init__(mismatch_message(live, configured))
        self.live, self.configured = live, configured


@dataclass
class ModelVersion:
    id: str
    model: str
    dim: int
    preprocess: str
    created_at: float = field(default_factory=time.time)
    state: str = "building"
    evaluation: dict[str, Any] | None = None
    location: str | None = None
    """Where its vectors are when not where its id says (a store from before versions)."""
    products: int | None = None
    """Products it held when last counted (a reindex counts both versions as it switches)."""

    @classmethod
    def of(cls, encoder: Encoder) -> ModelVersion:
        """The version of a loaded model: `<name>-<fingerprint>`."""
        preprocess = repr(encoder.preprocess)
        digest = hashlib.sha256(f"{encoder.dim}|{preprocess}|".encode())
        digest.update(fingerprint(encoder).encode())
        name = re.sub(r"[^a-z0-9]+", "-", Path(encoder.model_id.rstrip("/")).name.lower())
        return cls(f"{name.strip('-')[:40] or 'model'}-{digest.hexdigest()[:10]}",
                   encoder.model_id, encoder.dim, preprocess)


def fingerprint(encoder: Encoder) -> str:
    """What tells this model's weights from another's: for a local folder, its config and
    tokenizer files and its weights' sizes and ends; for a hub model, its revision."""
    folder = Path(encoder.model_id)
    if not folder.is_dir():
        return str(getattr(encoder.config, "_commit_hash", None) or encoder.model_id)
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name in FINGERPRINTED:
            digest.update(path.name.encode() + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin", ".pt", ".pth"):
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(SAMPLE)
                f.seek(max(0, size - SAMPLE))
                tail = f.read(SAMPLE)
            digest.update(f"{path.name}:{size}".encode() + head + tail)
    return digest.hexdigest()


class Versions:
    def __init__(self, location: str | Path):
        """`location`: the job store's (a SQLite file, or postgresql://...)."""
        self._db = open_database(location, SCHEMA, "model versions")

    def add(self, version: ModelVersion) -> ModelVersion:
        """Record a version (building), or return the one already recorded with its id."""
        with self._db.transaction() as db:
            db.execute("INSERT INTO model_versions (id, model, dim, preprocess, created_at, "
                       "state, evaluation, location) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (id) DO NOTHING",
                       (version.id, version.model, version.dim, version.preprocess,
                        version.created_at, version.state,
                        json.dumps(version.evaluation) if version.evaluation else None,
                        version.location))
        found = self.get(version.id)
        assert found is not None
        return found

    def list(self) -> list[ModelVersion]:
        with self._db.transaction() as db:
            rows = db.execute("SELECT v.id, model, dim, preprocess, created_at, state, "
                              "evaluation, location, c.products FROM model_versions v "
                              "LEFT JOIN model_version_products c ON c.id = v.id "
                              "ORDER BY created_at").fetchall()
        return [ModelVersion(r[0], r[1], r[2], r[3], r[4], r[5],
                             json.loads(r[6]) if r[6] else None, r[7], r[8]) for r in rows]

    def get(self, version_id: str) -> ModelVersion | None:
        return next((v for v in self.list() if v.id == version_id), None)

    def live(self) -> ModelVersion | None:
        return next((v for v in self.list() if v.state == "live"), None)

    def set_state(self, version_id: str, state: str) -> None:
        assert state in STATES
        with self._db.transaction() as db:
            db.execute("UPDATE model_versions SET state = ? WHERE id = ?", (state, version_id))

    def make_live(self, version_id: str) -> None:
        """The one switch: the live version becomes ready, this one live, in one transaction."""
        with self._db.transaction() as db:
            db.execute("UPDATE model_versions SET state = 'ready' WHERE state = 'live'")
            db.execute("UPDATE model_versions SET state = 'live' WHERE id = ?", (version_id,))

    def set_evaluation(self, version_id: str, evaluation: dict[str, Any]) -> None:
        with self._db.transaction() as db:
            db.execute("UPDATE model_versions SET evaluation = ? WHERE id = ?",
                       (json.dumps(evaluation), version_id))

    def set_products(self, version_id: str, products: int) -> None:
        with self._db.transaction() as db:
            db.execute("INSERT INTO model_version_products (id, products, counted_at) "
                       "VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                       "products = excluded.products, counted_at = excluded.counted_at",
                       (version_id, products, time.time()))

    def keyword_scheme(self, version_id: str) -> str | None:
        """The word rules its keyword vectors were written with (`Keywords.scheme`); None
        for a store from before schemes were recorded."""
        with self._db.transaction() as db:
            row = db.execute("SELECT scheme FROM model_version_keywords WHERE id = ?",
                             (version_id,)).fetchone()
        return row[0] if row else None

    def set_keyword_scheme(self, version_id: str, scheme: str) -> None:
        with self._db.transaction() as db:
            db.execute("INSERT INTO model_version_keywords (id, scheme) VALUES (?, ?) "
                       "ON CONFLICT (id) DO UPDATE SET scheme = excluded.scheme",
                       (version_id, scheme))

    def remove(self, version_id: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM model_version_keywords WHERE id = ?", (version_id,))
            db.execute("DELETE FROM model_version_products WHERE id = ?", (version_id,))
            db.execute("DELETE FROM model_versions WHERE id = ?", (version_id,))

    def close(self) -> None:
        self._db.close()


def choose_live(versions: Versions, configured: ModelVersion,
                legacy: ModelVersion | None = None) -> ModelVersion:
    """The live version, which must be the configured model's (ModelMismatch otherwise).
    With none yet, a store from before versions (`legacy`) becomes the live one, or else
    the configured model's new, empty one."""
    live = versions.live()
    if live is None:
        live = legacy or configured
        live.state = "live"
        versions.add(live)
        versions.make_live(live.id)
    if live.id != configured.id:
        raise ModelMismatch(live, configured)
    return live


def mismatch_message(live: ModelVersion, configured: ModelVersion) -> str:
    return (f"the catalogue's live vectors are from model {live.model} ({live.id}); "
            f"VITRINE_MODEL is {configured.model} ({configured.id}). Serving it would mix "
            f"two models' vectors: run `vitrine reindex --model {configured.model}` to "
            f"re-encode the catalogue with it, or set VITRINE_MODEL={live.model}")
