"""Content-addressed storage of uploaded originals.

An original is written (and fsynced) before its upload is acknowledged, under
the SHA-256 of its bytes: re-uploading the same file stores nothing new, and
any worker that can read the folder can process any upload.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class MediaStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

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


def open_media(settings) -> MediaStore:
    """The originals store the settings name: a folder (shared volume) or s3://bucket/prefix."""
    if settings.media_url.startswith("s3://"):
        from catalogue.media_s3 import S3MediaStore

        return S3MediaStore.from_url(settings.media_url, settings.s3_endpoint_url)
    return MediaStore(settings.media_dir)
