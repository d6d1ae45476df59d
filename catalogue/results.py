"""Hits as shoppers see them: the photo to show, the variant to show, and (on request)
why each matched.

A product matched by its best photo; among the variants the filters keep, the one
whose photo matched best is shown (a "red dress" shows the red one, at its price).
Photos no variant claims (other views of the product) may show too. `explain` adds
the photo side's score, the keyword side's (as the engine scores it) and the query
words the product has.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from catalogue.attributes import VARIANTS
from catalogue.products import to_public
from catalogue.schemas import Explanation, SearchResult
from catalogue.store.base import Hit, Sparse
from catalogue.store.filters import Filter


def pick(payload: dict[str, Any], rows: np.ndarray | None, vector: np.ndarray | None,
         filters: Filter | None, cheapest: bool = False) -> tuple[int, int | None]:
    """(photo to show, variant to show). `cheapest`: in a price order, the kept variant
    with the lowest price (the one the order placed the product by) and its photo."""
    variants = payload.get(VARIANTS) or []
    wanted = filters.nested.get(VARIANTS) if filters else None
    kept = [i for i, v in enumerate(variants) if wanted is None or wanted.matches(v)]
    priced = [i for i in kept if variants[i].get("price") is not None]
    if cheapest and priced:
        kept = [min(priced, key=lambda i: variants[i]["price"])]
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
    if cheapest and variant is not None and variants[variant].get("image") is not None:
        image = photo(variant)
    return image, variant


def show(hit: Hit, rows: np.ndarray | None, vector: np.ndarray | None,
         filters: Filter | None, cheapest: bool = False) -> SearchResult:
    image, variant = pick(hit.payload, rows, vector, filters, cheapest)
    product = to_public(hit.payload)
    return SearchResult(product_id=product.id, score=hit.score, product=product,
                           image=image,
                           variant=None if variant is None else product.variants[variant])


def explain(result: SearchResult, rows: np.ndarray | None, vector: np.ndarray | None,
            words: Sparse | None, keyword: float | None, query_terms: dict[str, list[int]],
            exact: bool) -> SearchResult:
    """`result` with why it matched: `query_terms` maps each query word to its tokens (a
    word matched when the product has all of them)."""
    dense = (float(rows[result.image] @ np.asarray(vector, np.float32))
             if rows is not None and vector is not None else None)
    present = set(words.indices) if words else set()
    terms = [word for word, tokens in query_terms.items()
             if tokens and all(t in present for t in tokens)]
    result.explain = Explanation(dense=dense, keyword=keyword, terms=terms,
                                 image=result.image, exact=exact)
    return result


def words_of(text: str) -> list[str]:
    """A query's words as a shopper typed them (for naming the matched ones)."""
    return [w for w in re.split(r"[^\w'-]+", text) if w]
