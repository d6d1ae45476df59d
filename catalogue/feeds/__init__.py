"""Shop product feeds read into Vitrine's normalised product documents.

Three formats, told apart by their content (the suffix alone says little: a Merchant
Center text feed is often a .txt, a Shopify export a .csv like any other):
- "merchant-xml": an RSS 2.0 or Atom document declaring Google's g: namespace;
- "merchant-tsv": a tab-separated header naming an id column (Merchant Center);
- "shopify-csv": a comma-separated header with Handle and Title (Shopify's export).

`read_feed` yields one `FeedRow` per product (a Merchant Center item group, a Shopify
Handle), in the order of the line where each product starts, and one per refused row:
a product with some bad variants is kept without them, one with no good variant is one
error. Every message names the file as `shown` says (its name by default), never by
where it is on this server. A product document:

    {"id", "title", "description", "link", "brand", "category", "gender", "pattern",
     "currency", "tags": [str], "attributes": {str: str | float | bool | list[str]},
     "images": [{"url"}], "variants": [{"sku", "colour", "size", "price",
     "compare_at_price", "availability", "image", "gtin", "mpn", "attributes"}]}

with the keys whose value is None or empty left out, and at least one variant.
`availability` is in_stock, out_of_stock, preorder or backorder; a variant's `image` is
the index of its own photo in `images`. Text is decoded as `catalogue.styles` does
(UTF-8 with or without a byte-order mark; Windows-1252 for a line that isn't UTF-8);
XML as its declaration says. Errors of the whole file (a hostile XML, a quote left
open, a missing id column) raise CatalogueFormatError before any row is yielded.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from catalogue.feeds import merchant, shopify
from catalogue.feeds.common import FeedRow
from catalogue.styles import MAX_FIELD_CHARS, CatalogueFormatError

__all__ = ["FeedRow", "feed_format", "read_feed"]

SNIFF_BYTES = 64 * 1024
_ROOT = re.compile(r"<(?![?!])(?:[\w.-]+:)?([\w.-]+)")  # the first element's local name
READERS: dict[str, Callable[[Path, int, str], Iterator[FeedRow]]] = {
    "merchant-tsv": merchant.read_tsv,
    "merchant-xml": merchant.read_xml,
    "shopify-csv": shopify.read_csv,
}


def feed_format(path: Path) -> str | None:
    """"merchant-tsv", "merchant-xml", "shopify-csv", or None for none of them."""
    with Path(path).open("rb") as f:
        head = f.read(SNIFF_BYTES).removeprefix(codecs.BOM_UTF8)
    text = head.decode("utf-8", "replace")
    if text.lstrip().startswith("<"):
        root = _ROOT.search(text)
        known = root is not None and root[1] in ("rss", "feed") and merchant.GMC_NS in text
        return "merchant-xml" if known else None
    header = text.splitlines()[0] if text else ""
    if "\t" in header and "id" in {merchant.column_name(h) for h in header.split("\t")}:
        return "merchant-tsv"
    columns = {c.strip().lower() for c in next(csv.reader([header]), [])}
    return "shopify-csv" if {"handle", "title"} <= columns else None


def read_feed(path: Path, max_field_chars: int = MAX_FIELD_CHARS,
              shown: str | None = None) -> Iterator[FeedRow]:
    """The products of a feed and its refused rows, by line; a file that can't be read
    as a whole raises CatalogueFormatError (on the first `next`)."""
    path = Path(path)
    name = shown or path.name
    kind = feed_format(path)
    if kind is None:
        raise CatalogueFormatError(
            f"{name} is not a product feed this importer reads: a Google Merchant Center "
            "feed (tab-separated text, or RSS/Atom XML with the g: namespace) or a Shopify "
            "product CSV")
    yield from READERS[kind](path, max_field_chars, name)
