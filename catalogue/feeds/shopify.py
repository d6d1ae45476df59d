"""Shopify's product CSV, in the layout its admin exports and imports.

Follows "Using CSV files to import and export products" (help.shopify.com/en/manual/
products/import-export/using-csv): one row per variant, extra rows holding only an Image
Src for further photos, all the rows of a product sharing its Handle; the product's own
fields (Title, Body (HTML), Vendor, Product Category, Type, Tags, Published, Status and
the Option Names) on its first row. Column names are matched case-insensitively; the
layout with renamed columns ("URL handle", "SKU"...) that newer admins offer is not read.

How the columns become a product document:
- Handle is the id, checked against PRODUCT_ID_PATTERN; Vendor the brand; Type the
  category (else the last segment of Product Category, whose full path is kept as an
  attribute); Tags split on commas; "Google Shopping / Gender" the gender.
- Option names Color or Colour give the colour, Size the size, any other a variant
  attribute under its lower_snake_case name; the placeholder option Title / Default
  Title gives nothing.
- Photos are ordered by Image Position (unnumbered ones after, in file order); a Variant
  Image is that variant's photo, added to the product's photos if no row lists it.
- Variant Compare At Price is kept only when above the Variant Price: Shopify shows no
  sale otherwise.
- Availability: a blank Variant Inventory Tracker (in a file that has the column) means
  Shopify doesn't count stock and keeps selling: in_stock. Counted stock above 0 is
  in_stock; at 0 or below, backorder when the Inventory Policy is "continue", else
  out_of_stock. A blank quantity is in_stock: stores with several locations export none.
- A product whose Status is draft or archived, or whose Published is FALSE, is skipped
  with all its rows and no error: the storefront doesn't show it, so search shouldn't.
A row is a variant when it has an Option1 Value, a Variant SKU or a Variant Price.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalogue.feeds.common import (
    FeedRow,
    ProductGroup,
    RowError,
    cell,
    html_to_text,
    parse_amount,
    path_segments,
    snake,
    table_rows,
    words,
)
from catalogue.styles import CatalogueFormatError

Row = dict[str, str]  # lower-cased column name -> value, blank cells left out
VARIANT_MARKS = ("option1 value", "variant sku", "variant price")
GOOGLE = "google shopping / "
GOOGLE_ATTRIBUTES = ("age group", "condition", "google product category")


def _flag(row: Row, column: str, allowed: tuple[str, ...]) -> str:
    value = (row.get(column) or allowed[0]).lower()
    if value not in allowed:
        *others, last = [a for a in allowed if a]
        raise RowError(f"unknown {column.title()} {row[column]!r}: want "
                       f"{', '.join(others)} or {last}")
    return value


def _quantity(row: Row) -> int | None:
    value = cell(row.get("variant inventory qty"))
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise RowError(f"bad Variant Inventory Qty {value!r}: want a whole number") from None


class _Product:
    """One Handle's rows. Rows before the product row (the first with a Title) wait for
    it, since it names the options and says whether the product is shown at all."""

    def __init__(self, handle: str, line: int, counts_stock: bool):
        self.group = ProductGroup(handle, line)
        self.counts_stock = counts_stock  # the file has a Variant Inventory Tracker column
        self.head: Row | None = None
        self.hidden = False
        self.waiting: list[tuple[int, Row]] = []
        self.options: list[str | None] = [None, None, None]
        self.photos: list[tuple[float, int, str]] = []  # position, order, url
        self.variant_photos: list[tuple[dict[str, Any], str]] = []

    def add(self, line: int, row: Row) -> None:
        if self.head is None and words(row.get("title")):
            self.head = row
            self._product(line, row)
            waiting, self.waiting = self.waiting, []
            for n, r in [*waiting, (line, row)]:
                self._row(n, r)
        elif self.head is None:
            self.waiting.append((line, row))
        else:
            self._row(line, row)

    def _product(self, line: int, row: Row) -> None:
        group = self.group
        try:
            status = _flag(row, "status", ("", "active", "draft", "archived"))
            published = _flag(row, "published", ("", "true", "false"))
        except RowError as exc:
            group.fatal = group.fatal or str(exc)
            return
        self.hidden = status in ("draft", "archived") or published == "false"
        self.options = [words(row.get(f"option{i} name")) for i in (1, 2, 3)]
        path = row.get("product category")
        tags = [t for t in (words(t) for t in row.get("tags", "").split(",")) if t]
        attributes: dict[str, Any] = {
            "product_category": " > ".join(path_segments(path)) or None,
            **{snake(k): words(row.get(GOOGLE + k)) for k in GOOGLE_ATTRIBUTES},
        }
        if (row.get("gift card") or "").lower() == "true":
            attributes["gift_card"] = True
        group.product_line = line
        group.product = {
            "id": group.key,
            "title": words(row["title"]),
            "description": html_to_text(row.get("body (html)")),
            "brand": words(row.get("vendor")),
            "category": words(row.get("type")) or ([None, *path_segments(path)])[-1],
            "gender": words(row.get(GOOGLE + "gender")),
            "tags": list(dict.fromkeys(tags)),
            "attributes": {k: v for k, v in attributes.items() if v is not None},
        }

    def _row(self, line: int, row: Row) -> None:
        if self.hidden or self.group.fatal:
            return
        try:
            position = cell(row.get("image position"))
            if position is not None and not position.isdigit():
                raise RowError(f"bad Image Position {position!r}: want a whole number")
            variant = self._variant(row) if any(row.get(c) for c in VARIANT_MARKS) else None
        except RowError as exc:
            self.group.errors.append((line, str(exc)))
            return
        if src := cell(row.get("image src")):
            order = len(self.photos)
            self.photos.append((int(position) if position else math.inf, order, src))
        if variant is not None:
            self.group.variants.append(variant)
            if url := cell(row.get("variant image")):
                self.variant_photos.append((variant, url))

    def _variant(self, row: Row) -> dict[str, Any]:
        variant: dict[str, Any] = {"sku": cell(row.get("variant sku")), "attributes": {}}
        for i, default in zip((1, 2, 3), self.options, strict=True):
            value = words(row.get(f"option{i} value"))
            name = words(row.get(f"option{i} name")) or default or f"Option{i}"
            if not value or value == "Default Title" or name.lower() == "title":
                continue
            if name.lower() in ("color", "colour"):
                variant["colour"] = value
            elif name.lower() == "size":
                variant["size"] = value
            else:
                variant["attributes"][snake(name)] = value
        price = parse_amount(row.get("variant price"), "Variant Price")
        regular = parse_amount(row.get("variant compare at price"), "Variant Compare At Price")
        variant["price"] = price
        if regular is not None and price is not None and regular > price:
            variant["compare_at_price"] = regular
        variant["availability"] = self._availability(row)
        variant["gtin"] = cell(row.get("variant barcode"))
        variant["mpn"] = cell(row.get(GOOGLE + "mpn"))
        return variant

    def _availability(self, row: Row) -> str:
        policy = _flag(row, "variant inventory policy", ("deny", "continue"))
        quantity = _quantity(row)
        if self.counts_stock and not cell(row.get("variant inventory tracker")):
            return "in_stock"  # stock not counted: Shopify keeps selling
        if quantity is None or quantity > 0:
            return "in_stock"
        return "backorder" if policy == "continue" else "out_of_stock"

    def rows(self) -> list[FeedRow]:
        group = self.group
        if self.head is None and not group.fatal:
            return [group.fail(group.line, f"no product row for Handle {group.key!r}: none "
                                           "of its rows has a Title")]
        if self.hidden:
            return []
        for _, _, url in sorted(self.photos):
            group.image(url)
        for variant, url in self.variant_photos:
            variant["image"] = group.image(url)
        return group.rows()


def read_csv(path: Path, max_field_chars: int, name: str) -> Iterator[FeedRow]:
    rows = table_rows(path, ",", max_field_chars, name)
    _, header, _ = next(rows)
    columns = [h.strip().lower() for h in header]
    if "handle" not in columns:
        raise CatalogueFormatError(f"{name} lacks the Handle column")
    counts_stock = "variant inventory tracker" in columns
    products: dict[str, _Product] = {}
    found: list[FeedRow] = []
    for line, cells, reason in rows:
        if reason:
            found.append(FeedRow(line, None, f"line {line}: {reason}"))
            continue
        row = {c: v for c, v in zip(columns, cells, strict=True) if v.strip()}
        handle = cell(row.get("handle"))
        if handle is None:
            found.append(FeedRow(line, None, f"line {line}: no Handle"))
            continue
        if handle not in products:
            products[handle] = _Product(handle, line, counts_stock)
        products[handle].add(line, row)
    found += [row for product in products.values() for row in product.rows()]
    yield from sorted(found, key=lambda row: row.line)
