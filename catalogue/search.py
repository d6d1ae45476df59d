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

from catalogue.products import ProductRepository, to_public, visibility_filter
from catalogue.schemas import ProductFilters, Role, SearchResult, SearchResults
from catalogue.store.base import (
    FACET_FIELDS,
    POINT_ID_PATTERN,
    After,
    Filter,
    Hit,
    VectorStore,
)
from embedding.encoder import Encoder, combine

# Facets are counted over at most this many hits when a relevance cutoff applies.
FACET_WINDOW = 1000
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


def store_filter(filters: ProductFilters | None, role: Role = Role.shopper,
                 exclude_ids: Sequence[str] = ()) -> Filter:
    """Product filters -> store filter, narrowed to what `role` may see."""
    f = visibility_filter(role)
    f.exclude_ids = list(exclude_ids)
    if filters:
        for key in ("category", "colour", "gender", "brand"):
            values = getattr(filters, key)
            if values:
                f.any[key] = values
        if filters.price_min is not None or filters.price_max is not None:
            f.range["price"] = (filters.price_min, filters.price_max)
    return f


class Search:
    def __init__(self, encoder: Encoder, store: VectorStore, products: ProductRepository):
        self.encoder, self.store, self.products = encoder, store, products

    def query_vector(self, text: str | None = None, image: Image.Image | None = None,
                     product_id: str | None = None, alpha: float = 0.5,
                     negative: str | None = None, negative_weight: float = 0.5) -> np.ndarray:
        """Text, an uploaded image or a stored product's image, mixed by alpha."""
        text_vec = self.encoder.encode_texts([text])[0] if text else None
        if image is not None:
            image_vec = self.encoder.encode_images([image])[0]
        elif product_id:
            image_vec = self.products.vector(product_id, Role.shopper)
        else:
            image_vec = None
        negative_vec = self.encoder.encode_texts([negative])[0] if negative else None
        return combine(text_vec, image_vec, alpha, negative_vec, negative_weight)

    def search(self, vector: np.ndarray, filters: ProductFilters | None = None, limit: int = 20,
               offset: int = 0, min_score: float | None = None,
               exclude_ids: Sequence[str] = (), cursor: str | None = None) -> SearchResults:
        """A page from `offset`, or after `cursor` (a next_cursor; InvalidCursor if it is
        not one). Either way the page says its offset and both ways to the next one."""
        after = decode_cursor(cursor) if cursor is not None else None
        hits = self.store.search(vector, store_filter(filters, exclude_ids=exclude_ids),
                                 limit=limit + 1, offset=offset, score_threshold=min_score,
                                 after=after)
        page = hits[:limit]
        if after is not None:  # where the page starts in today's order
            offset = (page[0].position or 0) if page else after.position + 1
        more = len(hits) > limit
        return SearchResults(
            results=[SearchResult(product_id=h.payload["product_id"], score=h.score,
                                  product=to_public(h.payload))
                     for h in page],
            limit=limit, offset=offset, next_offset=offset + limit if more else None,
            next_cursor=encode_cursor(page[-1]) if more else None)

    def facets(self, filters: ProductFilters | None = None, vector: np.ndarray | None = None,
               min_score: float | None = None, fields: Sequence[str] = FACET_FIELDS
               ) -> tuple[dict[str, dict[str, int]], int]:
        """Counts per value, and the total, under the filters; with a relevance cutoff,
        among the hits above it."""
        f = store_filter(filters)
        if vector is None or min_score is None:
            return {key: self.store.facet(key, f) for key in fields}, self.store.count(f)
        hits = self.store.search(vector, f, limit=FACET_WINDOW, score_threshold=min_score)
        counts: dict[str, dict[str, int]] = {key: {} for key in fields}
        for h in hits:
            for key in fields:
                value = h.payload.get(key)
                if value is not None:
                    counts[key][str(value)] = counts[key].get(str(value), 0) + 1
        return ({k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in counts.items()},
                len(hits))
