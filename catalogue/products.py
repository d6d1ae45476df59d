"""The product repository: the one place that decides who sees a product and how a stored
point becomes a product.

Every route that shows, changes or searches near a product goes through here,
so the visibility rule ("shoppers never see flagged or rejected products; to
them those are unknown") and the payload -> `ProductPublic` mapping are written
once. A point whose payload has no moderation status counts as hidden, the same
as the store filter that search uses (`visibility_filter`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from catalogue.attributes import DEFAULT_SCHEMA
from catalogue.keywords import Keywords
from catalogue.schemas import RANK, SHOPPER_VISIBLE, ProductPublic, Role
from catalogue.store.base import StoredPoint, VectorStore, point_id
from catalogue.store.filters import Filter


class UnknownProduct(LookupError):
    """No such product, or one hidden from whoever asks: the same answer (404) for both."""

    def __init__(self, product_id: str):
        super().__init__(f"unknown product {product_id!r}")
        self.product_id = product_id


class ProductsPage(BaseModel):
    data: list[ProductPublic]
    next_offset: str | None = Field(None, description="Pass as offset for the next page")


def visible_to(payload: dict[str, Any], role: Role) -> bool:
    """May `role` see the product with this payload?"""
    return RANK[role] >= RANK[Role.manager] or payload.get("moderation_status") in SHOPPER_VISIBLE


def visibility_filter(role: Role) -> Filter:
    """`visible_to` as a store filter, for searches and counts."""
    f = Filter()
    if RANK[role] < RANK[Role.manager]:
        f.any["moderation_status"] = list(SHOPPER_VISIBLE)
    return f


# A variant without its own colour or price has the product's: kept filled in, so filters
# on variants need no fallback, with the names of the fields it took (`inherited`), so a
# change of the product's colour or price reaches them.
INHERITED = ("colour", "price")


def normalise(payload: dict[str, Any]) -> dict[str, Any]:
    """Derive what a stored product keeps besides its fields, in place: its variants (the
    product itself when it has none) with inherited fields filled in, its lowest price
    (`min_price`, what sorting by price uses) and its main photo's digests."""
    variants = []
    for given in payload.get("variants") or [{}]:
        own = {k: v for k, v in given.items()
               if v is not None and k != "inherited" and k not in given.get("inherited", ())}
        taken = [k for k in INHERITED if k not in own and payload.get(k) is not None]
        variants.append({**own, **{k: payload[k] for k in taken}, "inherited": taken})
        variants[-1].setdefault("availability", "in_stock")
    payload["variants"] = variants
    prices = [v["price"] for v in variants if v.get("price") is not None]
    payload["min_price"] = min(prices) if prices else None
    if payload.get("images"):
        payload["image_sha256"] = payload["images"][0]["sha256"]
        payload["display_sha256"] = payload["images"][0].get("display_sha256")
    return payload


def to_public(payload: dict[str, Any]) -> ProductPublic:
    """A stored payload as the API shows it (the product id is kept as `product_id`)."""
    variants = [{k: v for k, v in variant.items() if k != "inherited"}
                for variant in payload.get("variants") or []]
    return ProductPublic.model_validate({**payload, "id": payload["product_id"],
                                         "variants": variants})


def centroid(rows: np.ndarray) -> np.ndarray:
    """One unit vector for all of a product's photos (more like this, "this product, but")."""
    rows = np.asarray(rows, np.float32).reshape(-1, rows.shape[-1])
    if len(rows) == 1:
        return rows[0]
    mean = rows.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def pages(store: VectorStore, filter: Filter | None = None,
          size: int = 1000) -> Iterator[list[StoredPoint]]:
    """Every point of `store` (that `filter` keeps), a page at a time, in id order."""
    cursor = None
    while True:
        points, cursor = store.scroll(filter, limit=size, offset=cursor)
        yield points
        if cursor is None:
            return


class ProductRepository:
    def __init__(self, store: VectorStore, keywords: Keywords | None = None):
        """`keywords`: how a product's words are kept for keyword search (the default
        schema's, in English, unless given)."""
        self.store = store
        self.keywords = keywords or Keywords(DEFAULT_SCHEMA)

    def point(self, product_id: str, role: Role = Role.manager,
              with_vector: bool = False) -> StoredPoint:
        """The stored point of a product `role` may see; UnknownProduct otherwise."""
        found = self.store.retrieve([point_id(product_id)], with_vectors=with_vector)
        if not found or not visible_to(found[0].payload, role):
            raise UnknownProduct(product_id)
        return found[0]

    def get(self, product_id: str, role: Role = Role.manager) -> ProductPublic:
        return to_public(self.point(product_id, role).payload)

    def vector(self, product_id: str, role: Role = Role.shopper) -> np.ndarray:
        """One query vector from all the photos of a product `role` may see (more like this,
        search by product)."""
        rows = self.point(product_id, role, with_vector=True).vector
        if rows is None:
            raise UnknownProduct(product_id)
        return centroid(rows)

    def update(self, product_id: str, changes: dict[str, Any]) -> ProductPublic:
        """Merge a manager's changes, without re-encoding; a field set by a manager is no
        longer a prediction."""
        payload = self.point(product_id).payload
        predicted = {k: v for k, v in (payload.get("predicted") or {}).items()
                     if k not in changes}
        merged = normalise({**payload, **changes})
        derived = {k: merged[k] for k in ("variants", "min_price")}
        self.store.set_payload([point_id(product_id)], {**changes, **derived,
                                                        "predicted": predicted,
                                                        "updated_at": time.time()})
        self.store.set_texts({point_id(product_id): self.keywords.document(merged)})
        return self.get(product_id)

    def rewrite_keywords(self) -> int:
        """Write every product's keyword vector afresh from its stored fields (the word
        rules or the language changed); how many products."""
        done = 0
        for points in pages(self.store):
            self.store.set_texts({p.id: self.keywords.document(p.payload) for p in points})
            done += len(points)
        return done

    def delete(self, product_id: str) -> None:
        self.point(product_id)
        self.store.delete([point_id(product_id)])

    def prune(self, keep: set[str]) -> int:
        """Remove every product whose id is not in `keep` (a feed's sync); how many went."""
        gone = [p.id for points in pages(self.store) for p in points
                if p.payload.get("product_id") not in keep]
        for start in range(0, len(gone), 1000):
            self.store.delete(gone[start:start + 1000])
        return len(gone)

    def list(self, limit: int = 50, offset: str | None = None, predicted: bool = False,
             max_scan: int = 5000) -> ProductsPage:
        """Products in point-id order, all of them (flagged ones too: this is the managers'
        listing) or only those with predicted fields. The store cannot filter on "has a
        prediction", so at most `max_scan` points are read per page: a short page with a
        next_offset means go on."""
        found: list[ProductPublic] = []
        cursor, scanned = offset, 0
        while scanned < max_scan:
            batch = min(256, max_scan - scanned) if predicted else limit + 1
            points, after = self.store.scroll(None, limit=batch, offset=cursor)
            scanned += len(points)
            for p in points:
                if predicted and not p.payload.get("predicted"):
                    continue
                if len(found) == limit:  # one more than a page: the next page starts here
                    return ProductsPage(data=found, next_offset=p.id)
                found.append(to_public(p.payload))
            if after is None:
                return ProductsPage(data=found, next_offset=None)
            cursor = after
        return ProductsPage(data=found, next_offset=cursor)
