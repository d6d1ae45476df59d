"""`vitrine backup` and `vitrine restore`: the local profile's data folder (catalogue.backup).

`vitrine backup` makes the backup itself when the data folder is free (holding its lock
meanwhile), and otherwise asks the process holding it, a running `vitrine serve`, to make
it (`POST /v1/admin/backup`): only that process can copy its shard consistently. That
process writes into its VITRINE_BACKUP_DIR, so the path given must lie there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from catalogue.backup import (
    BackupError,
    BackupSummary,
    backup_name,
    check_target,
    create_backup,
    local_only,
    read_manifest,
    restore_backup,
)
from catalogue.datalock import DataFolderInUse, DataLock
from catalogue.settings import CatalogueSettings


class ClientSettings(BaseSettings):
    """What `vitrine backup` needs to ask a running server for a backup."""

    model_config = SettingsConfigDict(env_prefix="VITRINE_CLIENT_", extra="ignore")

    api_key: str | None = None
    """A manager's API key, sent to a running `vitrine serve` (when it has VITRINE_API_KEYS)."""


def fail(message: str) -> int:
    print(f"vitrine: {message}", file=sys.stderr)
    return 2


def describe(summary: BackupSummary) -> str:
    items = ", ".join(f"{n} {state}" for state, n in sorted(summary.items.items())) or "none"
    return (f"{summary.path}: {summary.products} products of model {summary.model} "
            f"({summary.version}, {summary.dim}-d), {summary.jobs} jobs (items: {items}), "
            f"{summary.originals} originals, {summary.bytes / 1e6:.1f} MB; made in "
            f"{summary.seconds:.1f} s, writes paused {summary.writes_paused_seconds:.2f} s")


def cmd_backup(args) -> int:
    settings = CatalogueSettings()
    try:
        local_only(settings)
    except BackupError as exc:
        return fail(str(exc))
    target = Path(args.path) if args.path else settings.backups_dir / backup_name()
    if not settings.jobs_db.exists():
        return fail(f"nothing to back up: {settings.data_dir} holds no catalogue "
                    "(VITRINE_DATA_DIR names the data folder)")
    try:
        lock = DataLock.acquire(settings.data_dir)
    except DataFolderInUse as exc:
        return backup_through_server(settings, target, exc, args.url)
    try:
        summary = backup_here(settings, target)
    except (BackupError, FileExistsError) as exc:
        return fail(str(exc))
    finally:
        lock.release()
    print(f"backup written to {describe(summary)}")
    return 0


def backup_here(settings: CatalogueSettings, target: Path) -> BackupSummary:
    """The folder is free and locked by this process: open its live store and back it up."""
    from catalogue.versions import Versions
    from vitrine.wiring import open_store

    versions = Versions(settings.jobs_db)
    try:
        live = versions.live()
    finally:
        versions.close()
    if live is None:
        raise BackupError(f"nothing to back up: {settings.data_dir} has no live model version")
    store = open_store(settings, live.dim, version=live)
    try:
        return create_backup(settings, store, target)
    finally:
        store.close()


def backup_through_server(settings: CatalogueSettings, target: Path, held: DataFolderInUse,
                          url: str | None) -> int:
    import httpx

    from api.auth import API_KEY_HEADER
    from api.settings import ApiSettings

    folder = settings.backups_dir.resolve()
    if target.resolve().parent != folder:
        return fail(f"{held}, and that process writes the backup itself, into "
                    f"VITRINE_BACKUP_DIR ({folder}): give a path there, e.g. `vitrine backup "
                    f"{folder / backup_name()}`, or stop it first")
    if not url:
        api = ApiSettings()
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
        url = f"http://{host}:{api.port}"
    key = ClientSettings().api_key
    print(f"{settings.data_dir} is served by process {held.pid}: asking it at {url} to write "
          "the backup", flush=True)
    try:
        response = httpx.post(f"{url.rstrip('/')}/v1/admin/backup", json={"name": target.name},
                              headers={API_KEY_HEADER: key} if key else None,
                              timeout=httpx.Timeout(10, read=None))
    except httpx.HTTPError as exc:
        return fail(f"{held}, and it did not answer at {url} ({exc}); pass --url where it "
                    "listens")
    if response.status_code != 201:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        hint = " (set VITRINE_CLIENT_API_KEY to a manager's key)" \
            if response.status_code in (401, 403) else ""
        return fail(f"the server refused the backup ({response.status_code}): {message}{hint}")
    print(f"backup written to {describe(BackupSummary.model_validate(response.json()))}")
    return 0


def cmd_restore(args) -> int:
    from catalogue.versions import ModelVersion
    from embedding.encoder import Encoder, ModelLoadError

    settings = CatalogueSettings()
    source = Path(args.path)
    try:  # the cheap refusals first, before a model loads
        read_manifest(source)
        check_target(settings)
    except BackupError as exc:
        return fail(str(exc))
    try:
        configured = ModelVersion.of(Encoder().load())
    except ModelLoadError as exc:
        return fail(str(exc))
    print(f"checking and restoring {source} into {settings.data_dir}", flush=True)
    try:
        summary = restore_backup(source, settings, configured, allow_model_mismatch=args.reindex)
    except BackupError as exc:
        return fail(str(exc))
    print(f"restored {describe(summary)}")
    if summary.version != configured.id:
        from vitrine import models

        print(f"re-encoding it with VITRINE_MODEL: vitrine reindex --model {configured.model}",
              flush=True)
        return models.reindex(configured.model)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("backup", help="back up the data folder (the live shard, jobs, "
                       "moderation, model versions, originals) with a checksummed manifest; "
                       "consistent while `vitrine serve` runs and ingests")
    s.add_argument("path", nargs="?", help="a new folder (default: VITRINE_BACKUP_DIR/"
                   "vitrine-<time>); while `vitrine serve` runs, one in VITRINE_BACKUP_DIR")
    s.add_argument("--url", help="where the running server listens (default: "
                   "http://VITRINE_HOST:VITRINE_PORT)")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="restore a backup into an empty data folder "
                       "(VITRINE_DATA_DIR), checking every checksum first")
    s.add_argument("path", help="the backup's folder")
    s.add_argument("--reindex", action="store_true", help="restore a backup of another model "
                   "than VITRINE_MODEL anyway, then reindex it with VITRINE_MODEL")
    s.set_defaults(func=cmd_restore)
