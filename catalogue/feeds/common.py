"""What the feed readers share: the row type, text and price parsing, and product groups.

Hand-written where the standard library has no such thing:
- `html_to_text`: Shopify's Body (HTML) and many Merchant Center descriptions hold HTML;
  `html.parser` tokenises it (entities unescaped) and block tags become spaces, so
  "<p>Silk</p><p>Midi</p>" reads "Silk Midi", not "SilkMidi". Script and style bodies
  are dropped.
- `table_rows`: `catalogue.styles.iter_styles` generalised to any delimiter and header,
  with the same bounds (no physical line or field over `max_field_chars`, a quote left
  open is the file's error) and one change: a row with fewer cells than the header is an
  error too, since both feed formats write every column on every row.
- `ProductGroup`: the rows of one product (an item_group_id, a Handle) gathered until
  the file ends, because neither format promises that a group's rows are adjacent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from catalogue import styles
from catalogue.schemas import SHOWN_ID_CHARS, id_problem

MAX_DESCRIPTION_CHARS = 5000
"""Google Merchant Center's own limit on a description."""
MAX_REASONS = 5  # a failed product's error lists this many of its rows' reasons
AVAILABILITY = {"in_stock": "in_stock", "instock": "in_stock",
                "out_of_stock": "out_of_stock", "outofstock": "out_of_stock",
                "preorder": "preorder", "pre_order": "preorder",
                "backorder": "backorder", "back_order": "backorder"}
"""Merchant Center's four values, also as the spec's older spellings ("in stock", "out of
stock", "pre-order") and schema.org's (InStock, PreOrder...), once lower-cased and with
spaces and hyphens read as underscores."""


@dataclass
class FeedRow:
    line: int  # 1-based line where the product (its first row or item) starts
    metadata: dict[str, Any] | None  # the normalised product document; None: nothing usable
    error: str | None = None  # "line N: <reason>"; the rest of the file is still read


class RowError(ValueError):
    """One row or item breaks the format; the message is the reason, without its line."""


def cell(value: str | None) -> str | None:
    """A value as given (ids, URLs, codes): outer whitespace dropped, None when blank."""
    value = (value or "").strip()
    return value or None


def words(value: str | None) -> str | None:
    """A text value (a title, a brand): runs of whitespace made one space, None when blank."""
    return " ".join((value or "").split()) or None


def snake(name: str) -> str:
    """An attribute name as a lower_snake_case key: "Heel Height" -> "heel_height"."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def path_segments(value: str | None) -> list[str]:
    """A taxonomy path's segments: "Apparel > Dresses" -> ["Apparel", "Dresses"]."""
    return [s for s in (words(part) for part in (value or "").split(">")) if s]


class _Text(HTMLParser):
    BLOCKS = {"address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
              "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p",
              "pre", "section", "table", "td", "th", "tr", "ul"}
    SKIPPED = {"script", "style", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(value: str | None, limit: int = MAX_DESCRIPTION_CHARS) -> str | None:
    """HTML (or plain text) as plain text: tags dropped, entities unescaped, whitespace
    collapsed, cut to `limit` characters."""
    if not value or not value.strip():
        return None
    parser = _Text()
    parser.feed(value)
    parser.close()
    return " ".join("".join(parser.parts).split())[:limit].rstrip() or None


_AMOUNT = re.compile(r"\d+(?:\.\d+)?")
_PRICE = re.compile(r"(\d+(?:\.\d+)?) +([A-Za-z]{3})")


def parse_amount(value: str | None, column: str) -> float | None:
    """A plain amount ("49.90"); None when blank."""
    value = cell(value)
    if value is None:
        return None
    if not _AMOUNT.fullmatch(value):
        raise RowError(f"bad {column} {value!r}: want a number such as 49.90")
    return float(value)


def parse_price(value: str | None, column: str) -> tuple[float, str]:
    """A Merchant Center price, "<number> <ISO 4217 currency>" ("49.90 EUR")."""
    value = cell(value)
    if value is None:
        raise RowError(f"no {column}")
    match = _PRICE.fullmatch(value)
    if not match:
        raise RowError(f"bad {column} {value!r}: want '<number> <currency>', e.g. '49.90 EUR'")
    return float(match[1]), match[2].upper()


def parse_availability(value: str | None) -> str:
    value = cell(value)
    if value is None:
        raise RowError("no availability")
    found = AVAILABILITY.get(re.sub(r"[\s-]+", "_", value.lower()))
    if found is None:
        raise RowError(f"unknown availability {value!r}: want in_stock, out_of_stock, "
                       "preorder or backorder")
    return found


def bad_id(value: str) -> str | None:
    """Why `value` can't be a product id; None if it can."""
    return id_problem(value)


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` without the keys whose value is None or empty."""
    return {k: v for k, v in fields.items() if v is not None and v not in ("", [], {})}


class ProductGroup:
    """One product's rows, gathered: its fields (from its first good row), photos,
    variants and the reasons its bad rows were refused."""

    def __init__(self, key: str, line: int):
        self.key, self.line = key, line
        self.fatal = bad_id(key)  # the whole product's error
        self.product: dict[str, Any] | None = None
        self.product_line = line
        self.currency: str | None = None
        self.images: list[str] = []
        self._image_at: dict[str, int] = {}
        self.variants: list[dict[str, Any]] = []
        self.errors: list[tuple[int, str]] = []

    def image(self, url: str) -> int:
        """The index of `url` in the product's photos, added at the end if new."""
        if url not in self._image_at:
            self._image_at[url] = len(self.images)
            self.images.append(url)
        return self._image_at[url]

    def fail(self, line: int, reason: str) -> FeedRow:
        shown = {"id": self.key} if not bad_id(self.key) or len(self.key) <= SHOWN_ID_CHARS \
            else None
        return FeedRow(line, shown, f"line {line}: {reason}")

    def rows(self) -> list[FeedRow]:
        """The product document and one error per refused variant; or, when no variant is
        good, one error for the product naming its rows' reasons."""
        if self.fatal:
            return [self.fail(self.line, self.fatal)]
        if self.product is None or not self.variants:
            if not self.errors:
                return [self.fail(self.line, "no variant: no row gives a price or an option")]
            (line, first), rest = self.errors[0], self.errors[1:]
            shown = "".join(f"; line {n}: {why}" for n, why in rest[:MAX_REASONS - 1])
            more = len(rest) - (MAX_REASONS - 1)
            return [self.fail(line, first + shown + (f"; {more} more" if more > 0 else ""))]
        document = compact({**self.product, "currency": self.currency,
                            "images": [{"url": url} for url in self.images],
                            "variants": [compact(v) for v in self.variants]})
        return [FeedRow(self.product_line, document),
                *(FeedRow(n, None, f"line {n}: {why}") for n, why in self.errors)]


def table_rows(path: Path, delimiter: str, max_field_chars: int, name: str
               ) -> Iterator[tuple[int, list[str], str | None]]:
    """`catalogue.styles.table_rows`, with a row whose cells don't match the header's count
    (fewer too) that row's error, as the feed specifications have it."""
    rows = styles.table_rows(path, delimiter, max_field_chars, name)
    _, header, _ = next(rows)
    yield 1, header, None
    for line, cells, error in rows:
        if not error and len(cells) != len(header):
            error, cells = f"{len(cells)} cells where the header has {len(header)}", []
        yield line, cells, error
