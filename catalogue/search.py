"""Shopper search: query vectors from text and/or an image, filters, facets.

Results page by offset or by cursor, both in the store's one order (score desc,
point id asc; catalogue.store.base). A cursor is the last hit of a page (score,
point id, and its position as a hint), as base64url JSON: opaque to clients, and
checked field by field when it comes back, so a mangled one is a 422 naming what is
wrong rather than a 500. The next page is the hits strictly after it, so products
added or removed above it since do not repeat or skip any.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalogue.attributes import DEFAULT_SCHEMA, VARIANTS, CatalogueSchema, InvalidFilter
from catalogue.foreground import Foreground
from catalogue.products import ProductRepository, to_public, visibility_filter
from catalogue.schemas import Role, SearchResult, SearchResults
from catalogue.store.base import (
    POINT_ID_PATTERN,
    After,
    Filter,
    Hit,
    VectorStore,
)
from embedding.encoder import Encoder, combine

# Facets are counted over at most this many hits when a relevance cutoff applies.
FACET_WINDOW = 1000
# A query sorted by price (or newest...) orders at most this many of its most relevant hits.
SORT_WINDOW = 1000
CURSOR_MAX_LENGTH = 200
MAX_POSITION = 10_000_000


class InvalidCursor(ValueError):
    """A cursor that is not one this service made; the message says what is wrong."""


def encode_cursor(hit: Hit) -> str:
    """The cursor that continues after `hit`: its score, point id and position."""
    raw = json.dumps({"s": hit.score, "id": hit.id, "p": hit.position or 0},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(token: str) -> After:
    """The hit a cursor continues after; InvalidCursor naming the problem otherwise."""
    if not token or len(token) > CURSOR_MAX_LENGTH:
        raise InvalidCursor(f"cursor must be 1 to {CURSOR_MAX_LENGTH} characters: pass "
                            "next_cursor of the previous page as it came")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor("cursor is not one this service made (not base64url JSON): "
                            "pass next_cursor of the previous page as it came") from None
    if not isinstance(data, dict) or set(data) != {"s", "id", "p"}:
        raise InvalidCursor("cursor is not one this service made (it needs a score, a "
                            "point id and a position)")
    score, id, position = data["s"], data["id"], data["p"]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidCursor("cursor's score is not a finite number")
    if not isinstance(id, str) or not re.fullmatch(POINT_ID_PATTERN, id):
        raise InvalidCursor("cursor's point id is not a point id")
    if isinstance(position, bool) or not isinstance(position, int) or not (
            0 <= position <= MAX_POSITION):
        raise InvalidCursor(f"cursor's position is not a whole number from 0 to {MAX_POSITION}")
    return After(float(score), id, position)


def check_cursor(token: str | None) -> str | None:
    """`token` if it decodes (for a request parameter's validation), InvalidCursor if not."""
    if token is not None:
        decode_cursor(token)
    return token


def store_filter(filters: Filter | None, role: Role = Role.shopper,
                 exclude_ids: Sequence[str] = ()) -> Filter:
    """The shop's filters (CatalogueSchema.filter), narrowed to what `role` may see."""
    f = visibility_filter(role)
    if filters is not None:
        f.match |= filters.match
        f.any |= filters.any
        f.range |= filters.range
        f.nested |= filters.nested
    f.exclude_ids = list(exclude_ids)
    return f


def show(hit: Hit, rows: np.ndarray | None, vector: np.ndarray | None,
         filters: Filter | None) -> SearchResult:
    """A hit as a result, with the photo to show and the variant: among the variants the
    filters keep, the one whose photo matched best (a "red dress" shows the red one, at
    its price). Photos no variant claims (other views of the product) may show too."""
    payload = hit.payload
    variants = payload.get(VARIANTS) or []
    wanted = filters.nested.get(VARIANTS) if filters else None
    kept = [i for i, v in enumerate(variants) if wanted is None or wanted.matches(v)]
    n = len(rows) if rows is not None else max(1, len(payload.get("images") or []))
    scores = (rows @ np.asarray(vector, np.float32) if rows is not None and vector is not None
              else np.zeros(n))

    def photo(i: int) -> int:
        return min(variants[i].get("image") or 0, n - 1)

    claimed = {photo(i) for i in range(len(variants))}
    allowed = {photo(i) for i in kept} | (set(range(n)) - claimed)
    image = max(sorted(allowed) or range(n), key=lambda j: scores[j])
    on_photo = [i for i in kept if photo(i) == image]
    variant = on_photo[0] if on_photo else max(kept, key=lambda i: scores[photo(i)], default=None)
    product = to_public(payload)
    return SearchResult(product_id=payload["product_id"], score=hit.score, product=product,
                        image=image, variant=None if variant is None
                        else product.variants[variant])


class Search:
    def __init__(self, encoder: Encoder, store: VectorStore, products: ProductRepository,
                 schema: CatalogueSchema = DEFAULT_SCHEMA, foreground: Foreground | None = None):
        """`foreground`: told while a query is encoded and searched, so background ingest
        in this process waits (catalogue.foreground)."""
        self.encoder, self.store, self.products, self.schema = encoder, store, products, schema
        self.foreground = foreground or Foreground()

    def query_vector(self, text: str | None = None, image: Image.Image | None = None,
                     product_id: str | None = None, alpha: float = 0.5,
                     negative: str | None = None, negative_weight: float = 0.5) -> np.ndarray:
        """Text, an uploaded image or a stored product's photos, mixed by alpha."""
        with self.foreground.serving():
            return self._query_vector(text, image, product_id, alpha, negative,
                                      negative_weight)

    def _query_vector(self, text: str | None, image: Image.Image | None,
                      product_id: str | None, alpha: float, negative: str | None,
                      negative_weight: float) -> np.ndarray:
        text_vec = self.encoder.encode_texts([text])[0] if text else None
        if image is not None:
            image_vec = self.encoder.encode_images([image])[0]
        elif product_id:
            image_vec = self.products.vector(product_id, Role.shopper)
        else:
            image_vec = None
        negative_vec = self.encoder.encode_texts([negative])[0] if negative else None
        return combine(text_vec, image_vec, alpha, negative_vec, negative_weight)

    def search(self, vector: np.ndarray | None, filters: Filter | None = None, limit: int = 20,
               offset: int = 0, min_score: float | None = None,
               exclude_ids: Sequence[str] = (), cursor: str | None = None,
               sort: str = "relevance") -> SearchResults:
        """A page from `offset`, or after `cursor` (a next_cursor; InvalidCursor if it is
        not one), by relevance to `vector` or in a sort order of the schema's. Either way
        the page says its offset and both ways to the next one."""
        with self.foreground.serving():
            return self._search(vector, filters, limit, offset, min_score, exclude_ids,
                                cursor, sort)

    def _search(self, vector: np.ndarray | None, filters: Filter | None, limit: int,
                offset: int, min_score: float | None, exclude_ids: Sequence[str],
                cursor: str | None, sort: str) -> SearchResults:
        after = decode_cursor(cursor) if cursor is not None else None
        f = store_filter(filters, exclude_ids=exclude_ids)
        order = self.schema.sort_key(sort)
        if order is None:
            if vector is None:
                raise InvalidFilter("relevance needs a query: give q, an image or a product, "
                                    "or another sort order")
            hits = self.store.search(vector, f, limit=limit + 1, offset=offset,
                                     score_threshold=min_score, after=after)
        elif vector is None:
            hits = self.store.order(order[0], order[1], f, limit + 1, offset, after)
        else:
            hits = self.sorted_by_value(vector, f, order, limit + 1, offset, min_score, after)
        page = hits[:limit]
        if after is not None:  # where the page starts in today's order
            offset = (page[0].position or 0) if page else after.position + 1
        more = len(hits) > limit
        rows = {p.id: p.vector for p in self.store.retrieve([h.id for h in page],
                                                            with_vectors=True)}
        return SearchResults(
            results=[show(h, rows.get(h.id), vector, filters) for h in page],
            limit=limit, offset=offset, next_offset=offset + limit if more else None,
            next_cursor=encode_cursor(page[-1]) if more else None)

    def sorted_by_value(self, vector: np.ndarray, f: Filter, order: tuple[str, bool],
                        limit: int, offset: int, min_score: float | None,
                        after: After | None) -> list[Hit]:
        """The relevant hits (above `min_score`, at most SORT_WINDOW of them) in a value
        order, equal values by point id; each hit's score becomes its value, so a cursor
        continues in this order."""
        path, descending = order
        sign = -1.0 if descending else 1.0
        relevant = self.store.search(vector, f, limit=SORT_WINDOW, score_threshold=min_score)
        keyed = []
        for h in relevant:
            value = value_at(h.payload, path)
            if value is not None:
                keyed.append(Hit(h.id, value, h.payload))
        keyed.sort(key=lambda h: (sign * h.score, h.id))
        start = offset
        if after is not None:
            start = next((i for i, h in enumerate(keyed)
                          if (sign * h.score, h.id) > (sign * after.score, after.id)),
                         len(keyed))
        page = keyed[start:start + limit]
        for i, hit in enumerate(page):
            hit.position = start + i
        return page

    def facets(self, filters: Filter | None = None, vector: np.ndarray | None = None,
               min_score: float | None = None) -> tuple[dict[str, dict[str, int]], int]:
        """Products per value of each facetable attribute, and the total, under the filters;
        with a relevance cutoff, among the hits above it."""
        with self.foreground.serving():
            return self._facets(filters, vector, min_score)

    def _facets(self, filters: Filter | None, vector: np.ndarray | None,
                min_score: float | None) -> tuple[dict[str, dict[str, int]], int]:
        f = store_filter(filters)
        attributes = self.schema.facetable
        if vector is None or min_score is None:
            return ({a.name: self.store.facet(a.path, f) for a in attributes},
                    self.store.count(f))
        hits = self.store.search(vector, f, limit=FACET_WINDOW, score_threshold=min_score)
        counts: dict[str, dict[str, int]] = {a.name: {} for a in attributes}
        for h in hits:
            for a in attributes:
                for value in self.schema.values(h.payload, a):
                    counts[a.name][value] = counts[a.name].get(value, 0) + 1
        return ({k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in counts.items()},
                len(hits))


def value_at(payload: dict, path: str) -> float | None:
    """A product's number at a payload path (sorting), None where it has none."""
    value: object = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
