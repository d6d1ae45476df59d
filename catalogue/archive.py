"""Uploaded catalogue archives, unpacked under budgets checked while they unpack, and a
bound on imports at once.

A zip is unpacked member by member into a staging folder: its entries are counted
(`VITRINE_IMPORT_MAX_FILES`), the bytes actually written are counted, never the sizes
the zip declares (`VITRINE_IMPORT_MAX_BYTES`), and the free space on the disk is checked
before and during (`VITRINE_IMPORT_MIN_FREE_BYTES`). zipfile's own `extractall` checks
none of these, so the loop is ours. Every message names paths as the archive has them,
never where it was staged. One thing is left to zipfile: it reads the whole central
directory into memory on opening, which only the request body cap
(`VITRINE_MAX_BODY_BYTES`) bounds.
"""

from __future__ import annotations

import lzma
import shutil
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from catalogue.feeds import feed_format
from catalogue.settings import CatalogueSettings
from catalogue.styles import CatalogueFormatError

CHUNK_BYTES = 1024 * 1024  # unpacked per read; the budgets and the disk are checked per chunk


class ArchiveTooLarge(CatalogueFormatError):
    """An archive over the byte or entry budget (413)."""


class StagingFull(RuntimeError):
    """The data folder's disk is short of the space an import may use (507)."""


class ImportBusy(RuntimeError):
    """More imports at once for one key than allowed (429)."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int = CatalogueSettings.model_fields["import_max_bytes"].default
    max_files: int = CatalogueSettings.model_fields["import_max_files"].default
    min_free_bytes: int = CatalogueSettings.model_fields["import_min_free_bytes"].default

    @classmethod
    def of(cls, settings: CatalogueSettings) -> ArchiveLimits:
        return cls(settings.import_max_bytes, settings.import_max_files,
                   settings.import_min_free_bytes)


# What a damaged or unusual member raises while it is read (zipfile lets these through).
READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
               RuntimeError, zlib.error, lzma.LZMAError)


def _reason(exc: BaseException) -> str:
    """An exception as a message, without the file name an OSError may carry (ours)."""
    if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _too_large(limits: ArchiveLimits) -> str:
    return (f"the archive unpacks to more than {limits.max_bytes} bytes "
            "(VITRINE_IMPORT_MAX_BYTES)")


def _check_free(target: Path, limits: ArchiveLimits) -> None:
    if shutil.disk_usage(target).free < limits.min_free_bytes:
        raise StagingFull("the server's disk is short of space for an import; try again later")


def _skipped(name: str) -> bool:
    """macOS's resource forks: never a catalogue, often a second bogus .jsonl."""
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("._"))


def _unpack(z: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int,
            target: Path, limits: ArchiveLimits) -> int:
    """Write one member, counting the bytes as they come; returns how many."""
    with z.open(info) as src:
        return _copy(src, info.filename, dest, budget, target, limits)


def _copy(src: IO[bytes], name: str, dest: Path, budget: int, target: Path,
          limits: ArchiveLimits) -> int:
    written = 0
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = dest.open("wb")
    except OSError as exc:
        raise CatalogueFormatError(f"the archive's {name} can't be unpacked: "
                                   f"{_reason(exc)}") from None
    with out:
        while True:
            try:
                chunk = src.read(CHUNK_BYTES)
            except READ_ERRORS as exc:
                raise CatalogueFormatError(f"the archive's {name} can't be read: "
                                           f"{_reason(exc)}") from None
            if not chunk:
                return written
            written += len(chunk)
            if written > budget:
                raise ArchiveTooLarge(_too_large(limits))
            _check_free(target, limits)
            try:
                out.write(chunk)
            except OSError as exc:  # the disk filled between the check and the write
                raise StagingFull("the server's disk is short of space for an import; try "
                                  f"again later ({_reason(exc)})") from None


def stage_upload(upload: IO[bytes], target: Path, limits: ArchiveLimits | None = None
                 ) -> tuple[Path, str]:
    """A zip is unpacked (`extract_archive`); any other file, a product feed as a shop
    system exports it, is copied as it is, under the same budgets."""
    limits = limits or ArchiveLimits()
    zipped = upload.read(4).startswith(b"PK")
    upload.seek(0)
    if zipped:
        return extract_archive(upload, target, limits)
    _check_free(target, limits)
    dest = target / "feed"
    _copy(upload, "feed", dest, limits.max_bytes, target, limits)
    if feed_format(dest) is None:
        raise CatalogueFormatError("the upload is neither a zip nor a product feed (Google "
                                   "Merchant Center TSV or XML, Shopify product CSV)")
    return dest, "the feed"


def extract_archive(archive: Path | IO[bytes], target: Path,
                    limits: ArchiveLimits | None = None) -> tuple[Path, str]:
    """Unpack an uploaded zip into `target` (an empty folder) under `limits`; returns the
    catalogue in it (a folder with styles.csv, or a .jsonl) and its path in the archive."""
    limits = limits or ArchiveLimits()
    _check_free(target, limits)
    root = target.resolve()
    written: list[str] = []
    total = 0
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            if len(infos) > limits.max_files:
                raise ArchiveTooLarge(f"the archive holds {len(infos)} entries, over the limit "
                                      f"of {limits.max_files} (VITRINE_IMPORT_MAX_FILES)")
            # Refusing on the declared sizes needs no trust in them; accepting does, so the
            # bytes written are counted below as well.
            if sum(i.file_size for i in infos) > limits.max_bytes:
                raise ArchiveTooLarge(_too_large(limits))
            for info in infos:
                dest = (target / info.filename).resolve()
                if not dest.is_relative_to(root):
                    raise CatalogueFormatError(f"the archive holds a path outside its folder: "
                                               f"{info.filename}")
                if dest == root or _skipped(info.filename):
                    continue
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                total += _unpack(z, info, dest, limits.max_bytes - total, target, limits)
                written.append(PurePosixPath(dest.relative_to(root)).as_posix())
    except zipfile.BadZipFile as exc:
        raise CatalogueFormatError(f"the archive is not a valid zip file: {exc}") from None
    except (OSError, EOFError, ValueError) as exc:  # a central directory zipfile can't follow
        if isinstance(exc, CatalogueFormatError):
            raise
        raise CatalogueFormatError(f"the archive is not a valid zip file: {_reason(exc)}"
                                   ) from None
    candidates = sorted({str(PurePosixPath(n).parent) for n in written
                         if PurePosixPath(n).name == "styles.csv"}
                        | {n for n in written if n.endswith((".jsonl", ".ndjson"))})
    if not candidates:  # a product feed (its photos are URLs, so it is alone in the zip)
        candidates = [n for n in written if "/" not in n and feed_format(target / n)]
    if len(candidates) != 1:
        found = f": {', '.join(candidates[:5])}" if candidates else ""
        raise CatalogueFormatError("the archive must hold exactly one styles.csv, .jsonl or "
                                   f"product feed catalogue, found {len(candidates)}{found}")
    shown = "" if candidates[0] == "." else candidates[0]
    return target / candidates[0], shown



class ImportSlots:
    """Imports running at once, per key (an API key's digest, or a client), in this
    process. A count per key under one lock, rather than a semaphore per key, so that a
    key's entry goes when its last import ends instead of being kept forever."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str, limit: int) -> Iterator[None]:
        with self._lock:
            running = self._running.get(key, 0)
            if running >= limit:
                raise ImportBusy(f"{running} import(s) of this key are running, the most at "
                                 f"once (VITRINE_IMPORT_MAX_CONCURRENT); retry when done")
            self._running[key] = running + 1
        try:
            yield
        finally:
            with self._lock:
                if (left := self._running[key] - 1) > 0:
                    self._running[key] = left
                else:
                    del self._running[key]
