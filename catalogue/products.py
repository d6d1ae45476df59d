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
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from catalogue.schemas import RANK, SHOPPER_VISIBLE, ProductPublic, Role
from catalogue.store.base import Filter, StoredPoint, VectorStore, point_id


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


def to_public(payload: dict[str, Any]) -> ProductPublic:
    """A stored payload as the API shows it (the product id is kept as `product_id`)."""
    return ProductPublic.model_validate({**payload, "id": payload["product_id"]})


class ProductRepository:
    def __init__(self, store: VectorStore):
        self.store = store

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
        """The image vector of a product `role` may see (more like this, search by product)."""
        vector = self.point(product_id, role, with_vector=True).vector
        if vector is None:
            raise UnknownProduct(product_id)
        return vector

    def update(self, product_id: str, changes: dict[str, Any]) -> ProductPublic:
        """Merge a manager's changes, without re-encoding; a field set by a manager is no
        longer a prediction."""
        current = self.get(product_id)
        predicted = {k: v for k, v in current.predicted.items() if k not in changes}
        self.store.set_payload([point_id(product_id)],
                               {**changes, "predicted": predicted, "updated_at": time.time()})
        return self.get(product_id)

    def delete(self, product_id: str) -> None:
        self.point(product_id)
        self.store.delete([point_id(product_id)])

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
