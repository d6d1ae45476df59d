"""Content-addressed storage of uploaded originals: the role, and a folder that fills it.

An original is written durably before its upload is acknowledged, under the
SHA-256 of its bytes: re-uploading the same file stores nothing new, and any
worker that can read the store can process any upload. Two stores fill the
role: `FolderMediaStore` (a local folder or shared volume) and
`catalogue.media_s3.S3MediaStore` (a bucket); `vitrine.wiring` picks one.

Beside the originals, under `derived/`, a store keeps copies made from them (a photo at
one width: `catalogue.derivatives`), by the source's digest and a name. They are a
cache: backups leave them out, and any of them can be made again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


class MediaStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store `data` durably; returns its SHA-256 (hex)."""

    def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`; KeyError if none, ValueError if not a digest."""

    def exists(self, digest: str) -> bool: ...

    def put_derived(self, digest: str, name: str, data: bytes) -> None:
        """Store a copy made from `digest` under `name`, whole or not at all: two writers of
        the same copy leave one of theirs."""

    def get_derived(self, digest: str, name: str) -> bytes:
        """A copy made from `digest`; KeyError if none was stored."""


DERIVED = "derived"


def derived_key(digest: str, name: str) -> str:
    """Where a copy made from `digest` lives below the store's root."""
    if not name or not name.isascii() or not name.isalnum():
        raise ValueError(f"not a name for a derived copy: {name!r}")
    return f"{DERIVED}/{media_key(digest)}.{name}"


def media_key(digest: str) -> str:
    """Where an original lives below the store's root: fanned out by its first bytes."""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a SHA-256 digest: {digest!r}")
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


class FolderMediaStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / media_key(digest)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            write_whole(target, data)
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no original stored under {digest}") from None

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put_derived(self, digest: str, name: str, data: bytes) -> None:
        write_whole(self.root / derived_key(digest, name), data)

    def get_derived(self, digest: str, name: str) -> bytes:
        try:
            return (self.root / derived_key(digest, name)).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no {name} copy stored for {digest}") from None


def write_whole(target: Path, data: bytes) -> None:
    """Write to a temporary name beside `target`, then rename: a reader sees the old file,
    or none, or the new one whole; of two writers the last rename wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
