"""A backup folder's files: their names, the manifest that lists them with their SHA-256,
and the check of every file and original against it before a restore writes anything
(catalogue.backup makes and restores backups)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from catalogue.media import media_key

FORMAT = "vitrine-backup/1"
MANIFEST, SHARD, JOBS, DECISIONS = "manifest.json", "shard.tar", "jobs.sqlite3", \
    "moderation.sqlite3"
ORIGINALS, MEDIA = "originals.txt", "media"
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup could not be made, or a folder is not one."""


class BackupCorrupt(BackupError):
    """A file of the backup is missing or differs from its checksum."""


# -- files and checksums -----------------------------------------------------------------
def copy_hashing(source: Path, target: Path) -> str:
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}


def write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    tmp.replace(path)


def read_manifest(source: Path) -> dict[str, Any]:
    path = Path(source) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} is not a Vitrine backup: it has no {MANIFEST}")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupCorrupt(f"{path} is not valid JSON ({exc}): the backup is damaged") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} has format {manifest.get('format')!r}; this Vitrine "
                          f"restores {FORMAT!r}")
    return manifest


def verify_backup(source: Path, manifest: dict[str, Any]) -> list[str]:
    """Check every file against the manifest and every original against its name; returns
    the originals' digests. BackupCorrupt names the first file that fails."""
    source = Path(source)
    for name, entry in manifest["files"].items():
        path = source / name
        if Path(name).name != name or name == MANIFEST:
            raise BackupCorrupt(f"{source / MANIFEST} names an unexpected file {name!r}")
        if not path.is_file():
            raise BackupCorrupt(f"{path} is missing from the backup")
        if sha256_of(path) != entry["sha256"]:
            raise BackupCorrupt(f"{path} does not match its SHA-256 in the manifest: the "
                                "backup is damaged or was altered")
    if ORIGINALS not in manifest["files"] or SHARD not in manifest["files"]:
        raise BackupCorrupt(f"{source / MANIFEST} lists no {SHARD} or no {ORIGINALS}")
    digests = (source / ORIGINALS).read_text().split()
    if len(digests) != manifest["counts"]["originals"]:
        raise BackupCorrupt(f"{source / ORIGINALS} lists {len(digests)} originals, the "
                            f"manifest {manifest['counts']['originals']}")
    for digest in digests:
        path = source / MEDIA / media_key(digest)
        if not path.is_file():
            raise BackupCorrupt(f"the original {path} is missing from the backup")
        if sha256_of(path) != digest:
            raise BackupCorrupt(f"the original {path} does not match its SHA-256 (its name): "
                                "the backup is damaged or was altered")
    return digests
