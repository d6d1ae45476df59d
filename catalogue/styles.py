"""styles.csv, the Kaggle "Fashion Product Images" layout: the one reader every part uses.

Columns: id, gender, masterCategory, subCategory, articleType, baseColour,
season, year, usage, productDisplayName, and optionally pattern, brand, price,
description, description_de and moderation (the demo catalogue's labels). Photos:
images/<id>.jpg, and other photos of a product in MORE_IMAGES (`more_photos`).
The importer, training, evaluation, moderation calibration, benchmarks and
tests all read it through `iter_styles` or `read_styles`.

Sloppy files are read as far as they can be, and what can't be is reported by line:
- encoding: UTF-8, with or without Excel's byte-order mark; a line that isn't valid
  UTF-8 is read as Windows-1252 (Excel's "CSV" on Western Windows, a superset of
  latin-1's printable characters), or as latin-1 where it holds one of the five bytes
  cp1252 leaves undefined. The choice is made line by line, so a file that mixes both
  (two exports pasted together) reads right; every byte decodes, so nothing is
  reported. UTF-16 is refused as a whole, with a hint.
- length: no field and no physical line may be longer than `max_field_chars`
  (`VITRINE_IMPORT_MAX_FIELD_CHARS`). A longer line is that line's error and the
  rest is read. Lines are read with that cap, because a file iterator would hold a
  line of any length in memory before csv sees it; csv's own field limit (global to
  the process, only ever raised here, never lowered) is raised to the same bound, so
  a quoted field running over many lines is bounded too. Such a field is the file's
  error: once a quote has run away, no reader can tell where its record ends.
csv's DictReader is not used because it hides where a record starts and skips the
blank rows a cut line leaves behind; the few lines it would save are below.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

REQUIRED = ("id", "articleType", "baseColour", "productDisplayName")
MAX_FIELD_CHARS = 128 * 1024
"""csv's own default limit; CatalogueSettings.import_max_field_chars overrides it."""
UNDECODED = re.compile("[\udc80-\udcff]")
"""What surrogateescape makes of bytes that aren't UTF-8: a line holding one isn't UTF-8."""


class CatalogueFormatError(ValueError):
    """The catalogue as a whole can't be read (as opposed to one bad row)."""


class Lines:
    """Physical lines of a text file, each at most `max_chars` long (line ends aside): the
    rest of a longer line is skipped, its number kept in `overlong`, and a blank line
    stands in for it, so line numbers stay true."""

    def __init__(self, f: IO[str], max_chars: int):
        self.f, self.cap = f, max_chars + 2  # room for a "\r\n"
        self.max_chars = max_chars
        self.number = 0
        self.overlong: list[int] = []
        self._cut_after_cr = False

    def _read(self) -> str:
        line = self.f.readline(self.cap)
        if self._cut_after_cr and line == "\n":  # the rest of a "\r\n" the cap split
            line = self.f.readline(self.cap)
        self._cut_after_cr = len(line) == self.cap and line.endswith("\r")
        return line

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        line = self._read()
        if not line:
            raise StopIteration
        self.number += 1
        ended = line.endswith(("\n", "\r"))
        if len(line.rstrip("\r\n")) <= self.max_chars and (ended or len(line) < self.cap):
            return line
        while not ended and (line := self._read()):
            ended = line.endswith(("\n", "\r"))
        self.overlong.append(self.number)
        return "\n"


def decoded(lines: Lines) -> Iterator[str]:
    for line in lines:
        if UNDECODED.search(line):
            raw = line.encode("utf-8", "surrogateescape")
            try:
                line = raw.decode("cp1252")
            except UnicodeDecodeError:
                line = raw.decode("latin-1")
        yield line


def open_text(path: Path, name: str) -> IO[str]:
    """A catalogue file as text: UTF-8 (a byte-order mark dropped) with undecodable bytes
    kept aside as surrogates for the reader to deal with, line by line."""
    raw = path.open("rb")
    if raw.read(2) in (b"\xff\xfe", b"\xfe\xff"):
        raw.close()
        raise CatalogueFormatError(f"{name} is UTF-16; save it as UTF-8 (or Windows-1252)")
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def too_long(max_chars: int) -> str:
    return f"longer than {max_chars} characters (VITRINE_IMPORT_MAX_FIELD_CHARS)"


def table_rows(path: Path, delimiter: str = ",", max_field_chars: int = MAX_FIELD_CHARS,
               name: str | None = None) -> Iterator[tuple[int, list[str], str | None]]:
    """The one delimited-text reader (styles.csv, feeds): (1, header, None) first, then
    (line, cells, None) per row, or (line, [], reason) for a row that can't be read (a line
    or field over `max_field_chars`, a csv error); blank rows are skipped; `line` is where
    the row starts. A quote left open, or a header that can't be read, is the whole file's
    CatalogueFormatError. `name` is what messages call the file (its name by default)."""
    name = name or Path(path).name
    if csv.field_size_limit() < max_field_chars:
        csv.field_size_limit(max_field_chars)
    with open_text(Path(path), name) as f:
        lines = Lines(f, max_field_chars)
        reader = csv.reader(decoded(lines), delimiter=delimiter)
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise CatalogueFormatError(f"{name}: the header can't be read: {exc}") from None
        if lines.overlong:
            raise CatalogueFormatError(f"{name}: the header is {too_long(max_field_chars)}")
        yield 1, header, None
        while True:
            start = lines.number + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if lines.number > start:  # a quoted field ran on: its end is anyone's guess
                    raise CatalogueFormatError(f"{name} line {start}: {exc}; is a quote left "
                                               "open?") from None
                yield start, [], str(exc)
                continue
            if lines.overlong:
                lines.overlong.clear()
                yield start, [], too_long(max_field_chars)
            elif not any(c.strip() for c in cells):  # a blank line, or only separators
                continue
            elif any(len(c) > max_field_chars for c in cells):  # csv's limit set higher
                yield start, [], f"a field is {too_long(max_field_chars)}"
            else:
                yield start, cells, None


def iter_styles(csv_path: Path, max_field_chars: int = MAX_FIELD_CHARS,
                name: str | None = None) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(line, row, None) for each product row, or (line, None, why) for a row that can't be
    read (more cells than the header has, a line over `max_field_chars`); `line` is where
    the row starts. `name` is what messages call the file (its name by default)."""
    name = name or Path(csv_path).name
    rows = table_rows(csv_path, ",", max_field_chars, name)
    _, header, _ = next(rows)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CatalogueFormatError(f"{name} lacks the columns {', '.join(missing)}")
    for line, cells, error in rows:
        if error:
            yield line, None, f"line {line}: {error}"
        elif len(cells) > len(header):
            yield line, None, f"line {line}: more cells than the header has"
        else:
            yield line, dict(zip(header, cells + [""] * (len(header) - len(cells)),
                                 strict=True)), None


def read_styles(csv_path: Path) -> list[dict[str, str]]:
    """Every row of a styles.csv, as strings keyed by column; a row that can't be read
    stops it (training and evaluation want the whole file or nothing)."""
    rows = []
    for _, row, error in iter_styles(csv_path):
        if row is None:
            raise CatalogueFormatError(f"{Path(csv_path).name} {error}")
        rows.append(row)
    return rows


MORE_IMAGES = "more_images"
"""Beside styles.csv and images/<id>.jpg, a folder of products' other photos, named
<id>-<k>.jpg with k from 1 (the demo catalogue writes demo.generator.MORE_PHOTOS a
product). Training draws from them (training.data.PhotoCache); the importer reads the
main photo only."""


def more_photos(folder: Path) -> dict[str, list[Path]]:
    """Each product id's other photos in a styles.csv folder, in order of k; {} without
    MORE_IMAGES. The folder is listed once (not searched per product)."""
    found: dict[str, list[tuple[int, Path]]] = {}
    directory = Path(folder) / MORE_IMAGES
    if directory.is_dir():
        for path in directory.glob("*-*.jpg"):
            product_id, _, view = path.stem.rpartition("-")
            if view.isdigit():
                found.setdefault(product_id, []).append((int(view), path))
    return {i: [path for _, path in sorted(views)] for i, views in found.items()}
