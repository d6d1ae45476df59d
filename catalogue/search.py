"""Shopper search: query vectors from text and/or an image, filters, facets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalogue.products import ProductRepository, to_public, visibility_filter
from catalogue.schemas import ProductFilters, Role, SearchResult, SearchResults
from catalogue.store.base import FACET_FIELDS, Filter, VectorStore
from embedding.encoder import Encoder, combine

# Facets are counted over at most this many hits when a relevance cutoff applies.
FACET_WINDOW = 1000


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
               exclude_ids: Sequence[str] = ()) -> SearchResults:
        hits = self.store.search(vector, store_filter(filters, exclude_ids=exclude_ids),
                                 limit=limit + 1, offset=offset, score_threshold=min_score)
        more = len(hits) > limit
        return SearchResults(
            results=[SearchResult(product_id=h.payload["product_id"], score=h.score,
                                  product=to_public(h.payload))
                     for h in hits[:limit]],
            limit=limit, offset=offset, next_offset=offset + limit if more else None)

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
