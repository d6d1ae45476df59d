"""Google Merchant Center product feeds: tab-separated text, and RSS 2.0 or Atom XML.

Follows Google's "Product data specification" (support.google.com/merchants/answer/7052112):
attribute names in English, lower_snake_case ("image link" and "g:image_link" headers read
as image_link); price and sale_price as "<number> <ISO 4217 code>" ("49.90 EUR");
availability in_stock, out_of_stock, preorder or backorder; additional_image_link a
comma-separated list in text feeds and a repeated element in XML; items sharing an
item_group_id are the variants of one product. id, title, price and availability are
required, as the spec requires them.

Choices the spec leaves open:
- A group's product fields (title, description, brand, product_type...) come from its
  first good item; material or pattern that differ on a later item are kept on its variant.
- sale_price replaces price only when it is lower (the spec's own rule for a sale); it is
  applied whatever sale_price_effective_date says: re-import the feed when a sale ends.
- product_type "Apparel > Women > Dresses": category "Dresses", tags ["Apparel", "Women"]
  (as styles.csv's masterCategory and subCategory become tags); with no product_type, a
  textual google_product_category gives the category. Both full paths are kept as
  attributes.
- An id used by two items is the second item's error.

The XML is parsed by defusedxml's expat parser, which refuses entity declarations and
external references (billion laughs, XXE): such a feed, or one that is not well formed,
is the whole file's CatalogueFormatError. It is fed in chunks to a target that keeps one
item at a time, so no tree of the whole feed is ever built; items are still held, as
normalised products, until the end, since a group's items need not be adjacent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from catalogue.feeds.common import (
    FeedRow,
    ProductGroup,
    RowError,
    cell,
    html_to_text,
    parse_availability,
    parse_price,
    path_segments,
    table_rows,
    words,
)
from catalogue.styles import CatalogueFormatError, too_long

GMC_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
ATTRIBUTES = ("age_group", "condition", "material", "google_product_category", "product_type",
              "size_type", "size_system")
"""Product-level fields kept as attributes, beyond those the document names."""
VARIANT_EXTRAS = ("material", "pattern")
"""Fields the spec lets variants of one group differ in, besides colour and size."""
CHUNK = 64 * 1024

Fields = dict[str, list[str]]


def column_name(header: str) -> str:
    """A text feed's column as the attribute it names: "g:Image Link" -> "image_link"."""
    return "_".join(header.strip().lower().removeprefix("g:").split())


def _first(fields: Fields, name: str) -> str | None:
    return next((v for v in (cell(x) for x in fields.get(name, [])) if v), None)


def _item(fields: Fields) -> tuple[dict[str, Any], dict[str, Any], str]:
    """One item as (product fields, variant, currency); RowError when it breaks the spec."""
    title = words(_first(fields, "title"))
    if not title:
        raise RowError("no title")
    price, currency = parse_price(_first(fields, "price"), "price")
    regular = None
    if _first(fields, "sale_price"):
        sale, sale_currency = parse_price(_first(fields, "sale_price"), "sale_price")
        if sale_currency != currency:
            raise RowError(f"sale_price is in {sale_currency} but price in {currency}")
        if sale < price:
            price, regular = sale, price
    availability = parse_availability(_first(fields, "availability"))
    product_type = path_segments(_first(fields, "product_type"))
    google_category = _first(fields, "google_product_category")
    by_google = [] if (google_category or "").isdigit() else path_segments(google_category)
    path = product_type or by_google
    product = {
        "title": title,
        "description": html_to_text(_first(fields, "description")),
        "link": _first(fields, "link"),
        "brand": words(_first(fields, "brand")),
        "category": path[-1] if path else None,
        "gender": words(_first(fields, "gender")),
        "pattern": words(_first(fields, "pattern")),
        "tags": product_type[:-1],
        "attributes": {k: v for k in ATTRIBUTES if (v := words(_first(fields, k)))},
    }
    variant: dict[str, Any] = {
        "sku": _first(fields, "id"),
        "colour": words(_first(fields, "color")),
        "size": words(_first(fields, "size")),
        "price": price,
        "compare_at_price": regular,
        "availability": availability,
        "gtin": _first(fields, "gtin"),
        "mpn": _first(fields, "mpn"),
        "attributes": {},
    }
    return product, variant, currency


class _Feed:
    """A feed's products, gathered item by item, in the order their first item came."""

    def __init__(self, split_images: bool):
        self.split_images = split_images  # text feeds list additional images in one cell
        self.groups: dict[str, ProductGroup] = {}
        self.loose: list[FeedRow] = []  # errors that belong to no product
        self.seen: dict[str, int] = {}  # item id -> its line

    def error(self, line: int, reason: str) -> None:
        self.loose.append(FeedRow(line, None, f"line {line}: {reason}"))

    def add(self, line: int, fields: Fields) -> None:
        item_id = _first(fields, "id")
        if item_id is None:
            return self.error(line, "no id")
        key = _first(fields, "item_group_id") or item_id
        group = self.groups.setdefault(key, ProductGroup(key, line))
        if group.fatal:
            return None
        if item_id in self.seen:
            group.errors.append((line, f"duplicate id {item_id!r} (first on line "
                                       f"{self.seen[item_id]})"))
            return None
        self.seen[item_id] = line
        try:
            product, variant, currency = _item(fields)
            if group.currency not in (None, currency):
                raise RowError(f"price in {currency} where the product's is in {group.currency}")
        except RowError as exc:
            group.errors.append((line, str(exc)))
            return None
        if group.product is None:
            group.product, group.product_line, group.currency = ({"id": key, **product},
                                                                 line, currency)
        else:
            shared = {"pattern": group.product["pattern"],
                      "material": group.product["attributes"].get("material")}
            variant["attributes"] = {k: v for k in VARIANT_EXTRAS
                                     if (v := words(_first(fields, k))) and v != shared[k]}
        if main := _first(fields, "image_link"):
            variant["image"] = group.image(main)
        for value in fields.get("additional_image_link", []):
            for url in value.split(",") if self.split_images else [value]:
                if url := url.strip():
                    group.image(url)
        group.variants.append(variant)
        return None

    def rows(self) -> list[FeedRow]:
        found = self.loose + [row for g in self.groups.values() for row in g.rows()]
        return sorted(found, key=lambda row: row.line)


def read_tsv(path: Path, max_field_chars: int, name: str) -> Iterator[FeedRow]:
    """A tab-separated feed with a header row of attribute names."""
    feed = _Feed(split_images=True)
    rows = table_rows(path, "\t", max_field_chars, name)
    _, header, _ = next(rows)
    columns = [column_name(h) for h in header]
    if "id" not in columns:
        raise CatalogueFormatError(f"{name} lacks the id column")
    for line, cells, reason in rows:
        if reason:
            feed.error(line, reason)
            continue
        fields: Fields = {}
        for column, value in zip(columns, cells, strict=True):
            fields.setdefault(column, []).append(value)
        feed.add(line, fields)
    yield from feed.rows()


class _Items:
    """An expat target that keeps the direct children of one <item>/<entry> at a time:
    g: elements by their name, and RSS's or Atom's own title, link and description."""

    PLAIN = {"title": "title", "link": "link", "description": "description",
             "summary": "description", "content": "description"}

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self.line_now = lambda: 0
        self.done: list[tuple[int, Fields, Fields, bool]] = []  # line, g:, plain, overlong
        self.depth = 0  # 0 outside an item, 1 in it, 2 in one of its fields
        self.line, self.overlong = 0, False
        self.g: Fields = {}
        self.plain: Fields = {}
        self.field: tuple[Fields, str] | None = None
        self.text: list[str] = []
        self.size = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        ns, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
        if self.depth == 0:
            if local in ("item", "entry") and ns in ("", ATOM_NS):
                self.depth, self.line, self.overlong = 1, self.line_now(), False
                self.g, self.plain = {}, {}
            return
        self.depth += 1
        if self.depth != 2:
            return
        self.field = None
        self.text, self.size = [], 0
        if ns == GMC_NS:
            self.field = (self.g, local)
        elif ns in ("", ATOM_NS) and local in self.PLAIN:
            self.field = (self.plain, self.PLAIN[local])
            if local == "link" and attrs.get("href"):  # Atom: <link href="..."/>
                self.text, self.size = [attrs["href"]], len(attrs["href"])

    def data(self, text: str) -> None:
        if self.depth == 2 and self.field and not self.overlong:
            self.size += len(text)
            self.overlong = self.size > self.max_chars
            self.text.append(text)

    def end(self, tag: str) -> None:
        if self.depth == 2 and self.field and not self.overlong:
            fields, name = self.field
            fields.setdefault(name, []).append("".join(self.text))
        elif self.depth == 1:
            self.done.append((self.line, self.g, self.plain, self.overlong))
        self.depth = max(0, self.depth - 1)

    def close(self) -> None:
        return None


def read_xml(path: Path, max_field_chars: int, name: str) -> Iterator[FeedRow]:
    """An RSS 2.0 or Atom feed with the g: namespace."""
    feed = _Feed(split_images=False)
    items = _Items(max_field_chars)
    parser = DefusedXMLParser(target=items)
    items.line_now = lambda: parser.parser.CurrentLineNumber

    def take_items() -> None:
        for line, g, plain, overlong in items.done:
            if overlong:
                feed.error(line, f"a field is {too_long(max_field_chars)}")
            else:
                feed.add(line, {**plain, **g})
        items.done.clear()

    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                parser.feed(chunk)
                take_items()
            parser.close()
            take_items()
    except DefusedXmlException as exc:
        raise CatalogueFormatError(f"{name}: refused: the XML declares entities or refers to "
                                   f"external ones ({type(exc).__name__})") from None
    except ParseError as exc:
        raise CatalogueFormatError(f"{name}: not well-formed XML: {exc}") from None
    yield from feed.rows()
