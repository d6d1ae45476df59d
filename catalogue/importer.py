"""Catalogue import from real formats.

Two formats are read:
- the Kaggle "Fashion Product Images" layout: a folder with `styles.csv`
  (id, gender, masterCategory, subCategory, articleType, baseColour, season,
  year, usage, productDisplayName, and optionally pattern, brand, price,
  description, description_de) and `images/<id>.jpg`;
- JSON Lines: one product per line with Vitrine's own fields and an `image`
  path relative to the file (local paths only, no URLs).

Rows with problems are reported by line number and the rest are imported.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from catalogue.ingest import Accepted, Ingest, Upload
from catalogue.styles import CatalogueFormatError, iter_styles

MAX_ARCHIVE_BYTES = 4 * 1024**3


@dataclass
class Row:
    line: int
    metadata: dict[str, Any] | None
    image: Path | None
    error: str | None = None


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def kaggle_metadata(r: dict[str, str]) -> dict[str, Any]:
    """A styles.csv row -> Vitrine product fields (articleType is the category)."""
    price = _blank_to_none(r.get("price"))
    tags = [t for t in (_blank_to_none(r.get(k)) for k in
                        ("masterCategory", "subCategory", "season", "usage", "year")) if t]
    metadata = {
        "id": (r.get("id") or "").strip(),
        "title": _blank_to_none(r.get("productDisplayName")) or "",
        "description": _blank_to_none(r.get("description")) or "",
        "category": _blank_to_none(r.get("articleType")),
        "colour": _blank_to_none(r.get("baseColour")),
        "gender": _blank_to_none(r.get("gender")),
        "brand": _blank_to_none(r.get("brand")),
        "pattern": _blank_to_none(r.get("pattern")),
        "price": price,
        "tags": tags,
    }
    return {k: v for k, v in metadata.items() if v is not None}


def read_kaggle(folder: Path) -> Iterator[Row]:
    for line, r in iter_styles(folder / "styles.csv"):
        if None in r:  # more cells than columns: the row is misaligned
            yield Row(line, None, None, f"line {line}: more cells than the header has")
            continue
        metadata = kaggle_metadata(r)
        image = folder / "images" / f"{metadata.get('id', '')}.jpg"
        yield Row(line, metadata, image)


def read_jsonl(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                metadata = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(line, None, None, f"line {line}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(metadata, dict):
                yield Row(line, None, None, f"line {line}: expected a JSON object")
                continue
            image = metadata.pop("image", None)
            if not isinstance(image, str) or not image:
                yield Row(line, metadata, None, f"line {line}: no image path")
                continue
            if "://" in image:
                yield Row(line, metadata, None, f"line {line}: image must be a local path, "
                                                f"not a URL ({image})")
                continue
            resolved = (path.parent / image).resolve()
            if not resolved.is_relative_to(path.parent.resolve()):
                yield Row(line, metadata, None, f"line {line}: image path leaves the "
                                                f"catalogue folder ({image})")
                continue
            yield Row(line, metadata, resolved)


def read_catalogue(path: Path) -> Iterator[Row]:
    """Rows of a Kaggle-style folder (or its styles.csv) or a .jsonl file."""
    path = Path(path)
    if path.is_dir() and (path / "styles.csv").exists():
        return read_kaggle(path)
    if path.name == "styles.csv":
        return read_kaggle(path.parent)
    if path.suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    if path.is_dir():
        found = sorted(path.glob("*.jsonl"))
        if len(found) == 1:
            return read_jsonl(found[0])
    raise CatalogueFormatError(f"{path} is neither a folder with styles.csv nor a .jsonl file")


def uploads_of(rows: Iterator[Row], progress: bool = False) -> Iterator[Upload]:
    """Each row as an upload, its image read only when it is its turn; a row that can't be
    read becomes an upload already known bad, with the reason."""
    for row in tqdm(rows, desc="reading catalogue", unit="product", disable=not progress):
        where = f"line {row.line}"
        if row.error or row.image is None:
            yield Upload(row.metadata, None, error=row.error or "no image")
            continue
        try:
            data = row.image.read_bytes()
        except OSError as exc:
            yield Upload(row.metadata, None, where=where,
                         error=f"image unreadable: {exc.strerror or exc} ({row.image.name})")
            continue
        yield Upload(row.metadata, data, where=where)


def import_catalogue(ingest: Ingest, path: Path, progress: bool = False) -> Accepted:
    """Record an import job for the catalogue at `path`."""
    accepted = ingest.accept(uploads_of(read_catalogue(path), progress), kind="import")
    if accepted.accepted + accepted.rejected == 0:
        ingest.jobs.withdraw(accepted.job_id)
        raise CatalogueFormatError(f"{path} holds no products")
    return accepted


def extract_archive(archive: Path, target: Path, max_bytes: int = MAX_ARCHIVE_BYTES) -> Path:
    """Unpack an uploaded zip safely (no paths outside target, bounded size); returns the
    folder that holds the catalogue."""
    try:
        with zipfile.ZipFile(archive) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > max_bytes:
                raise CatalogueFormatError(f"the archive unpacks to {total} bytes, over the "
                                           f"limit of {max_bytes}")
            root = target.resolve()
            for info in z.infolist():
                dest = (target / info.filename).resolve()
                if not dest.is_relative_to(root):
                    raise CatalogueFormatError(f"the archive holds a path outside its folder: "
                                               f"{info.filename}")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        raise CatalogueFormatError(f"the archive is not a valid zip file: {exc}") from exc
    candidates = [p.parent for p in target.rglob("styles.csv")] + list(target.rglob("*.jsonl"))
    if len(candidates) != 1:
        raise CatalogueFormatError("the archive must hold exactly one styles.csv or .jsonl "
                                   f"catalogue, found {len(candidates)}")
    return candidates[0]
