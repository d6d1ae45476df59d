"""styles.csv, the Kaggle "Fashion Product Images" layout: the one reader every part uses.

Columns: id, gender, masterCategory, subCategory, articleType, baseColour,
season, year, usage, productDisplayName, and optionally pattern, brand, price,
description, description_de and moderation (the demo catalogue's labels).
The importer, training, evaluation, moderation calibration, benchmarks and
tests all read it through `iter_styles` or `read_styles`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

REQUIRED = ("id", "articleType", "baseColour", "productDisplayName")


class CatalogueFormatError(ValueError):
    """The catalogue as a whole can't be read (as opposed to one bad row)."""


def iter_styles(csv_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each product row; a row with more cells than the header
    has a None key (the caller reports it). Excel's byte-order mark is tolerated."""
    csv_path = Path(csv_path)
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueFormatError(f"{csv_path.name} lacks the columns {', '.join(missing)}")
        for row in reader:
            yield reader.line_num, row


def read_styles(csv_path: Path) -> list[dict[str, str]]:
    """Every row of a styles.csv, as strings keyed by column."""
    return [row for _, row in iter_styles(csv_path)]
