"""Backup and restore of the local profile's data folder, consistent while it serves.

A backup is a folder: `manifest.json` (when, the live model version, counts, and the
SHA-256 and size of every other file but the originals); `shard.tar`, the live version's
shard as a snapshot archive the engine restores (catalogue.store.edge_snapshot);
`jobs.sqlite3`, jobs and items and the model versions registry (its live version only,
the one whose vectors the backup holds); `moderation.sqlite3`, managers' decisions; the
data folder's moderation policy files, if any; `originals.txt`, the SHA-256 of every
original; `media/ab/cd/<sha256>`, the originals, each named by its own checksum.

Why a running server writes it. `vitrine serve` holds the data folder (catalogue.datalock).
Its SQLite files and its originals could be read from beside it, but the embedded shard
can be opened by one process only, and copying its files from another process while they
are written gives segments and a write-ahead log from different moments. So the process
that holds the folder makes the backup: `POST /v1/admin/backup` (which `vitrine backup`
calls when it finds the folder locked) writes into VITRINE_BACKUP_DIR, under a name,
never a path a request chose; a stopped server's folder is backed up by `vitrine backup`
itself, under the lock.

Why it is consistent while uploads are ingested, without stopping them. An upload's
original is stored before its item is recorded (queued); the product is upserted before
its item is marked done; originals are never deleted. The backup copies, in this order:

1. the job database, by SQLite's online backup API (one committed state): every item
   done in the copy had its product upserted before this moment;
2. the shard, the store's writes held for the copy (searches go on): it holds the
   product of every item done in the copy, and perhaps products of items still queued or
   running there, which the restored server runs again (its runner queues running items
   again at start, and an upsert of the same upload changes nothing);
3. the originals, listed after both, so every original a product or an item names is in.

Moderation decisions are copied with the jobs. The route holds writes as edits do, so a
reindex cannot switch the live version halfway through.

A restore goes into an empty data folder only, checks every checksum before it writes,
and refuses a backup of another model than VITRINE_MODEL unless told to reindex after.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from catalogue.backup_files import (
    DECISIONS,
    FORMAT,
    JOBS,
    MANIFEST,
    MEDIA,
    ORIGINALS,
    SHARD,
    BackupCorrupt,
    BackupError,
    copy_hashing,
    file_entry,
    read_manifest,
    verify_backup,
    write_json,
)
from catalogue.datalock import LOCK_NAME, DataFolderInUse, DataLock
from catalogue.media import media_key
from catalogue.moderation import POLICY_FILENAME, decisions_path, examples_path
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from catalogue.store.edge import EdgeStore
from catalogue.versions import ModelVersion, Versions

log = logging.getLogger(__name__)

class RestoreRefused(BackupError):
    """The restore would overwrite data, or serve two models' vectors."""


class BackupModelMismatch(RestoreRefused):
    """The backup's live model is not VITRINE_MODEL."""


class BackupSummary(BaseModel):
    """What a backup holds, from its manifest."""

    path: str
    created_at: str
    version: str
    model: str
    dim: int
    products: int
    jobs: int
    items: dict[str, int]
    originals: int
    bytes: int
    seconds: float
    writes_paused_seconds: float

    @classmethod
    def of(cls, path: Path, manifest: dict[str, Any]) -> BackupSummary:
        model, counts = manifest["model"], manifest["counts"]
        return cls(path=str(path), created_at=manifest["created_at"], version=model["version"],
                   model=model["model"], dim=model["dim"], products=counts["products"],
                   jobs=counts["jobs"], items=counts["items"], originals=counts["originals"],
                   bytes=manifest["bytes"], seconds=manifest["seconds"],
                   writes_paused_seconds=manifest["writes_paused_seconds"])


def local_only(settings: CatalogueSettings) -> None:
    if settings.store != "edge" or settings.jobs_url or settings.media_url:
        raise BackupError("backup and restore here cover the local profile (embedded store, "
                          "SQLite jobs, media folder); a cluster is backed up with "
                          "deploy/backup.sh (README, Cluster profile)")


# -- backup ------------------------------------------------------------------------------
def create_backup(settings: CatalogueSettings, store: VectorStore, target: Path) -> BackupSummary:
    """Back up the data folder `settings` name, whose live store is `store` (open in this
    process, which holds the folder), into the new folder `target`."""
    local_only(settings)
    if not isinstance(store, EdgeStore):
        raise BackupError("only the embedded store is backed up here")
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists: a backup goes into a new folder")
    partial = target.with_name(f".{target.name}.partial")  # never mistaken for a backup
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.monotonic()
    try:
        manifest = _write_backup(settings, store, partial)
        manifest["seconds"] = round(time.monotonic() - started, 3)
        write_json(partial / MANIFEST, manifest)
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("backup of %d products written to %s", manifest["counts"]["products"], target)
    return BackupSummary.of(target, manifest)


def _write_backup(settings: CatalogueSettings, store: EdgeStore, out: Path) -> dict[str, Any]:
    # 1. The databases, before the shard (see the module's docstring).
    _copy_sqlite(settings.jobs_db, out / JOBS)
    decisions = decisions_path(settings.data_dir)
    if decisions.exists():
        _copy_sqlite(decisions, out / DECISIONS)
    live, left_out = _keep_live_version(out / JOBS)
    if store.folder.resolve() != shard_folder(settings, live).resolve():
        raise BackupError(f"the open store ({store.folder}) is not the live version's "
                          f"({live.id}); try again")
    # 2. The shard.
    paused = time.monotonic()
    shard_manifest, products = store.snapshot(out / SHARD)
    paused = time.monotonic() - paused
    # 3. The originals, listed after both.
    originals = _copy_originals(settings.media_dir, out / MEDIA)
    (out / ORIGINALS).write_text("".join(f"{d}\n" for d in originals))
    for path in _policy_files(settings.data_dir):
        shutil.copyfile(path, out / path.name)
    counts = _counts(out, products, len(originals))
    missing = _unstored_originals(out / JOBS, set(originals))
    if missing:
        log.warning("%d originals named by uploads are not in %s (e.g. %s)", len(missing),
                    settings.media_dir, missing[0])
    files = {p.name: file_entry(p) for p in sorted(out.iterdir()) if p.is_file()}
    return {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {"version": live.id, "model": live.model, "dim": live.dim,
                  "preprocess": live.preprocess, "location": live.location},
        "versions_left_out": left_out,
        "counts": counts | {"originals_missing": len(missing)},
        "shard": {"manifest": shard_manifest, "photos": store.photos},
        "files": files,
        "bytes": sum(f["bytes"] for f in files.values())
        + sum((out / MEDIA / media_key(d)).stat().st_size for d in originals),
        "writes_paused_seconds": round(paused, 3),
    }


def backup_name() -> str:
    """A new backup's default folder name: the time, e.g. vitrine-20261205-134501."""
    return dt.datetime.now(dt.UTC).strftime("vitrine-%Y%m%d-%H%M%S")


def shard_folder(settings: CatalogueSettings, version: ModelVersion) -> Path:
    """Where a version's embedded shard lives (as vitrine.wiring.open_store opens it)."""
    return settings.shard_dir / (version.location or version.id)


def _copy_sqlite(source: Path, target: Path) -> None:
    """One committed state of a live SQLite database, as a file of its own (no WAL)."""
    if not source.exists():
        raise BackupError(f"no database at {source}: nothing has been served from "
                          f"{source.parent} yet")
    with closing(sqlite3.connect(source, timeout=30)) as src, \
            closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def _keep_live_version(jobs: Path) -> tuple[ModelVersion, list[str]]:
    """The copy's registry reduced to the live version, whose vectors the backup holds."""
    versions = Versions(jobs)
    try:
        live = versions.live()
        if live is None:
            raise BackupError("the model versions registry has no live version: nothing "
                              "has been served from this data folder yet")
        left_out = [v.id for v in versions.list() if v.id != live.id]
        for version_id in left_out:
            versions.remove(version_id)
    finally:
        versions.close()
    with closing(sqlite3.connect(jobs)) as db:  # the registry opened it in WAL mode
        db.execute("PRAGMA journal_mode=DELETE")
    return live, left_out


def _copy_originals(root: Path, out: Path) -> list[str]:
    digests = []
    for path in sorted(root.glob("??/??/*")):
        try:
            key = media_key(path.name)  # skips an upload being written (.upload-...)
        except ValueError:
            continue
        target = out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy_hashing(path, target) != path.name:
            raise BackupError(f"the original {path} does not match its checksum: the data "
                              "folder's copy is damaged")
        digests.append(path.name)
    return digests


def _policy_files(data_dir: Path) -> list[Path]:
    policy = data_dir / POLICY_FILENAME
    return [p for p in (policy, examples_path(policy)) if p.is_file()]


def _counts(out: Path, products: int, originals: int) -> dict[str, Any]:
    with closing(sqlite3.connect(out / JOBS)) as db:
        jobs = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
        items = dict(db.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall())
        versions = db.execute("SELECT count(*) FROM model_versions").fetchone()[0]
    decisions = 0
    if (out / DECISIONS).exists():
        with closing(sqlite3.connect(out / DECISIONS)) as db:
            decisions = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
    return {"products": products, "jobs": jobs, "items": items, "originals": originals,
            "model_versions": versions, "moderation_decisions": decisions}


def _unstored_originals(jobs: Path, stored: set[str]) -> list[str]:
    with closing(sqlite3.connect(jobs)) as db:
        named = [r[0] for r in db.execute("SELECT DISTINCT image_sha256 FROM items "
                                          "WHERE image_sha256 IS NOT NULL")]
    return sorted(d for d in named if d not in stored)


# -- restore -----------------------------------------------------------------------------
def check_target(settings: CatalogueSettings) -> None:
    """Refuse a data folder that holds anything: a restore never merges or overwrites."""
    local_only(settings)
    folder = settings.data_dir
    held = sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME) \
        if folder.is_dir() else []
    if held or (folder.exists() and not folder.is_dir()):
        raise RestoreRefused(f"{folder} is not empty ({', '.join(held[:5]) or 'a file'}): a "
                             "backup is restored only into an empty data folder; set "
                             "VITRINE_DATA_DIR to a new one")


def check_model(manifest: dict[str, Any], configured: ModelVersion) -> None:
    live = manifest["model"]
    if configured.id != live["version"]:
        raise BackupModelMismatch(
            f"the backup's vectors are from model {live['model']} ({live['version']}); "
            f"VITRINE_MODEL is {configured.model} ({configured.id}). Serving the restored "
            f"catalogue with it would mix two models' vectors: restore with "
            f"VITRINE_MODEL={live['model']}, or restore anyway and re-encode it with "
            f"`vitrine reindex --model {configured.model}` (`vitrine restore --reindex` "
            "does both)")


def restore_backup(source: Path, settings: CatalogueSettings, configured: ModelVersion,
                   allow_model_mismatch: bool = False) -> BackupSummary:
    """Restore the backup at `source` into the empty data folder `settings` name, for the
    `configured` model (refused for another unless `allow_model_mismatch`). Every checksum
    is checked before anything is written; a failure leaves the folder empty again."""
    source = Path(source)
    manifest = read_manifest(source)
    check_target(settings)
    if not allow_model_mismatch:
        check_model(manifest, configured)
    digests = verify_backup(source, manifest)
    try:
        lock = DataLock.acquire(settings.data_dir)
    except DataFolderInUse as exc:
        raise RestoreRefused(f"{exc}: stop it first") from None
    try:
        check_target(settings)  # nothing arrived before the lock was taken
    except RestoreRefused:
        lock.release()
        raise
    try:
        _write_restore(source, manifest, digests, settings)
    except BaseException:
        lock.release()
        for entry in settings.data_dir.iterdir():  # it was empty: leave it so
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        raise
    lock.release()
    return BackupSummary.of(source, manifest)


def _write_restore(source: Path, manifest: dict[str, Any], digests: list[str],
                   settings: CatalogueSettings) -> None:
    model = manifest["model"]
    version = ModelVersion(model["version"], model["model"], model["dim"], model["preprocess"],
                           location=model["location"])
    shard_manifest, products = EdgeStore.restore(source / SHARD, shard_folder(settings, version),
                                                 manifest["shard"].get("photos"))
    if products != manifest["counts"]["products"] or \
            shard_manifest != manifest["shard"]["manifest"]:
        raise BackupCorrupt(f"the engine restored {source / SHARD} as {products} products "
                            f"in segments other than those backed up "
                            f"({manifest['counts']['products']} products)")
    shutil.copyfile(source / JOBS, settings.jobs_db)
    if DECISIONS in manifest["files"]:
        shutil.copyfile(source / DECISIONS, decisions_path(settings.data_dir))
    policy = settings.data_dir / POLICY_FILENAME
    for name in (policy.name, examples_path(policy).name):
        if name in manifest["files"]:
            shutil.copyfile(source / name, settings.data_dir / name)
    for digest in digests:
        target = settings.media_dir / media_key(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / MEDIA / media_key(digest), target)
