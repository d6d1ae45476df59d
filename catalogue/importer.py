"""Catalogue import from real formats, and uploaded archives staged safely.

Two formats are read:
- the Kaggle "Fashion Product Images" layout: a folder with `styles.csv`
  (id, gender, masterCategory, subCategory, articleType, baseColour, season,
  year, usage, productDisplayName, and optionally pattern, brand, price,
  description, description_de) and `images/<id>.jpg`;
- JSON Lines: one product per line with Vitrine's own fields, an `image` path
  relative to the file and/or photos by URL (`"images": [{"url": ...}]`);
- product feeds (catalogue.feeds): Google Merchant Center (TSV or XML) and
  Shopify's product CSV, whose photos are URLs the ingest workers fetch.

Rows with problems are reported by line number and the rest are imported. A row's id
is checked (`PRODUCT_ID_PATTERN`) before its image is looked for, so an id such as
`../../x` is that line's error and no file outside the catalogue is ever opened
(nor is whether one exists given away). Sloppy text is tolerated as
`catalogue.styles` describes: a styles.csv in UTF-8 (with or without a byte-order
mark) or, line by line where a line isn't UTF-8, Windows-1252/latin-1, with nothing
reported since every byte decodes; lines and fields up to
`VITRINE_IMPORT_MAX_FIELD_CHARS`, a longer one being that line's error. JSON Lines
must be UTF-8 (the JSON standard says so): a line that isn't, that is longer than
the same bound, or that doesn't parse (nesting too deep included) is that line's
error.

An uploaded archive (`import_archive`) is unpacked by `catalogue.archive` into
`<data_dir>/staging/<uuid>` (not /tmp: the data folder's disk is the one whose free
space is checked and budgeted), removed afterwards in every case. Every message names
paths as the archive has them, never where it was staged.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from tqdm import tqdm

from catalogue.archive import ArchiveLimits, stage_upload
from catalogue.feeds import feed_format, read_feed
from catalogue.ingest import Accepted, Ingest, Upload
from catalogue.jsonsafe import JsonInputError, parse_json
from catalogue.products import ProductRepository
from catalogue.schemas import SHOWN_ID_CHARS, id_problem
from catalogue.styles import (
    MAX_FIELD_CHARS,
    UNDECODED,
    CatalogueFormatError,
    Lines,
    iter_styles,
    open_text,
)


@dataclass
class Row:
    line: int
    metadata: dict[str, Any] | None
    image: Path | None
    error: str | None = None
    image_name: str = ""  # as the catalogue names it, for messages


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _join(shown: str, rel: str) -> str:
    return f"{shown.rstrip('/')}/{rel}" if shown else rel


def _parent(shown: str) -> str:
    parent = str(PurePosixPath(shown).parent)
    return "" if parent == "." else parent


def bad_id(line: int, value: Any) -> str | None:
    """Why `value` can't be a product id, as that line's error; None if it can."""
    problem = id_problem(value)
    return f"line {line}: {problem}" if problem else None


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


def _id_only(value: Any) -> dict[str, Any] | None:
    """What a row with a bad id keeps of its metadata: the id, if it is short enough to show."""
    return {"id": value} if isinstance(value, str) and len(value) <= SHOWN_ID_CHARS else None


def read_kaggle(folder: Path, max_field_chars: int = MAX_FIELD_CHARS,
                shown: str | None = None) -> Iterator[Row]:
    shown = str(folder) if shown is None else shown
    csv_path, name = folder / "styles.csv", _join(shown, "styles.csv")
    # A first pass over the text alone: an error of the whole file (a runaway quote) found
    # halfway would leave the originals of the rows before it stored for no job.
    for _ in iter_styles(csv_path, max_field_chars, name):
        pass
    for line, r, error in iter_styles(csv_path, max_field_chars, name):
        if r is None:
            yield Row(line, None, None, error)
            continue
        metadata = kaggle_metadata(r)
        if problem := bad_id(line, metadata["id"]):  # before any path is made of it
            yield Row(line, _id_only(metadata["id"]), None, problem)
            continue
        name = f"images/{metadata['id']}.jpg"
        yield Row(line, metadata, folder / name, image_name=_join(shown, name))


def _jsonl_row(path: Path, line: int, text: str, shown: str) -> Row:
    try:  # the line's length is bounded already (Lines); UTF-8 takes at most 4 bytes a char
        metadata = parse_json(text, max_bytes=4 * len(text) + 1)
    except JsonInputError as exc:
        return Row(line, None, None, f"line {line}: {exc}")
    except ValueError:  # an integer past Python's digit limit
        return Row(line, None, None, f"line {line}: not valid JSON (a number too long)")
    if not isinstance(metadata, dict):
        return Row(line, None, None, f"line {line}: expected a JSON object")
    if problem := bad_id(line, metadata.get("id")):
        return Row(line, _id_only(metadata.get("id")), None, problem)
    image = metadata.pop("image", None)
    if image is None and metadata.get("images"):
        return Row(line, metadata, None)  # photos by URL only
    if not isinstance(image, str) or not image:
        return Row(line, metadata, None, f"line {line}: no image path")
    if "://" in image:
        return Row(line, metadata, None, f"line {line}: image must be a local path, "
                                         f"not a URL ({image[:200]}): give URLs as "
                                         '"images": [{"url": ...}]')
    resolved = (path.parent / image).resolve()
    if not resolved.is_relative_to(path.parent.resolve()):
        return Row(line, metadata, None, f"line {line}: image path leaves the "
                                         f"catalogue folder ({image[:200]})")
    return Row(line, metadata, resolved, image_name=_join(shown, image))


def read_jsonl(path: Path, max_line_chars: int = MAX_FIELD_CHARS,
               shown: str | None = None) -> Iterator[Row]:
    """Rows of a .jsonl file; `shown` is what messages call the folder it is in."""
    shown = _parent(str(path)) if shown is None else shown
    with open_text(path, _join(shown, path.name)) as f:
        lines = Lines(f, max_line_chars)
        for text in lines:
            line = lines.number
            if lines.overlong:
                lines.overlong.clear()
                yield Row(line, None, None, f"line {line}: longer than {max_line_chars} "
                                            "characters (VITRINE_IMPORT_MAX_FIELD_CHARS)")
            elif UNDECODED.search(text):
                yield Row(line, None, None, f"line {line}: not UTF-8 (JSON Lines are UTF-8)")
            elif text.strip():
                yield _jsonl_row(path, line, text, shown)


def read_catalogue(path: Path, max_field_chars: int = MAX_FIELD_CHARS,
                   shown: str | None = None) -> Iterator[Row]:
    """Rows of a Kaggle-style folder (or its styles.csv) or a .jsonl file; `shown` is what
    messages call `path` (as given, by default)."""
    path = Path(path)
    shown = str(path) if shown is None else shown
    if path.is_dir() and (path / "styles.csv").exists():
        return read_kaggle(path, max_field_chars, shown)
    if path.name == "styles.csv":
        return read_kaggle(path.parent, max_field_chars, _parent(shown))
    if path.suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path, max_field_chars, _parent(shown))
    if path.is_file() and feed_format(path):
        return _feed_rows(path, max_field_chars, shown)
    if path.is_dir():
        found = sorted(path.glob("*.jsonl"))
        if len(found) == 1:
            return read_jsonl(found[0], max_field_chars, shown)
        feeds = [f for f in sorted(path.iterdir()) if f.is_file() and feed_format(f)]
        if len(feeds) == 1:
            return _feed_rows(feeds[0], max_field_chars, _join(shown, feeds[0].name))
    raise CatalogueFormatError(f"{shown or 'the archive'} is neither a folder with styles.csv, "
                               "a .jsonl file nor a product feed (Google Merchant Center TSV "
                               "or XML, Shopify product CSV)")


def _feed_rows(path: Path, max_field_chars: int, shown: str) -> Iterator[Row]:
    for row in read_feed(path, max_field_chars, shown or path.name):
        yield Row(row.line, row.metadata, None, row.error)


def _read_image(path: Path, max_bytes: int | None) -> bytes:
    with path.open("rb") as f:  # never more than the cap, whatever the file's size
        return f.read() if max_bytes is None else f.read(max_bytes + 1)


def uploads_of(rows: Iterator[Row], progress: bool = False,
               max_image_bytes: int | None = None) -> Iterator[Upload]:
    """Each row as an upload, its image read only when it is its turn (and no further than
    one byte over `max_image_bytes`, which decoding then refuses); a row that can't be read
    becomes an upload already known bad, with the reason."""
    for row in tqdm(rows, desc="reading catalogue", unit="product", disable=not progress):
        where = f"line {row.line}"
        if row.error:
            yield Upload(row.metadata, error=row.error)
            continue
        if row.image is None:  # photos by URL, in the metadata (feeds)
            yield Upload(row.metadata, where=where)
            continue
        try:
            data = _read_image(row.image, max_image_bytes)
        except OSError as exc:
            yield Upload(row.metadata, where=where,
                         error=f"image unreadable: {exc.strerror or 'error'} ({row.image_name})")
            continue
        yield Upload(row.metadata, [data], where=where)


def import_catalogue(ingest: Ingest, path: Path, progress: bool = False,
                     shown: str | None = None, prune: bool = False) -> Accepted:
    """Record an import job for the catalogue at `path` (`shown`: what messages call it).
    Products already indexed are updated where they changed (photos re-fetched and
    re-encoded only where they did); with `prune`, products the catalogue no longer lists
    are removed (a row with an error still counts as listed), counted in the job."""
    settings = ingest.settings
    listed: set[str] = set()

    def noting(rows: Iterator[Row]) -> Iterator[Row]:
        for row in rows:
            if isinstance(row.metadata, dict) and isinstance(row.metadata.get("id"), str):
                listed.add(row.metadata["id"])
            yield row

    rows = noting(read_catalogue(path, settings.import_max_field_chars, shown))
    accepted = ingest.accept(uploads_of(rows, progress, settings.max_image_bytes),
                             kind="import")
    if accepted.accepted + accepted.rejected == 0:
        ingest.jobs.withdraw(accepted.job_id)
        name = str(path) if shown is None else shown
        raise CatalogueFormatError(f"{name or 'the archive'} holds no products")
    if prune:
        removed = ProductRepository(ingest.store, ingest.keywords).prune(listed)
        ingest.jobs.add_removed(accepted.job_id, removed)
    return accepted


def import_archive(ingest: Ingest, archive: IO[bytes], prune: bool = False) -> Accepted:
    """Stage an uploaded zip under the data folder, record its import job, and remove the
    staging folder whatever happens (the originals are in the media store by then)."""
    settings = ingest.settings
    staging = settings.data_dir / "staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        folder, shown = stage_upload(archive, staging, ArchiveLimits.of(settings))
        return import_catalogue(ingest, folder, shown=shown, prune=prune)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


