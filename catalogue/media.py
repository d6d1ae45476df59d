"""Content-addressed storage of uploaded originals: the role, and a folder that fills it.

An original is written durably before its upload is acknowledged, under the
SHA-256 of its bytes: re-uploading the same file stores nothing new, and any
worker that can read the store can process any upload. Two stores fill the
role: `FolderMediaStore` (a local folder or shared volume) and
`catalogue.media_s3.S3MediaStore` (a bucket); `vitrine.wiring` picks one.
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
        if target.exists():
            return digest
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
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no original stored under {digest}") from None

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()
