"""Catalogue managers' moderation: the queue of flagged products and decisions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from api.auth import MANAGER
from api.deps import WRITES, ModerationDep, ProductsDep, StoreDep
from api.errors import responses
from catalogue.moderation import Decision, ModerationQueue, decide, read_queue
from catalogue.schemas import ModerationStatus
from catalogue.store.base import POINT_ID_PATTERN

router = APIRouter(prefix="/v1/moderation", tags=["moderation"])

class DecisionIn(BaseModel):
    decision: Decision


class DecisionOut(BaseModel):
    product_id: str
    decision: Decision
    moderation_status: ModerationStatus


@router.get("/queue", response_model=ModerationQueue, dependencies=[MANAGER],
            responses=responses(401, 403, 422, 503))
def read_moderation_queue(
        store: StoreDep,
        category: Annotated[str | None, Query(max_length=100,
                                              description="Only this policy category")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[str | None, Query(pattern=POINT_ID_PATTERN,
                                            description="next_offset of the previous page")
                          ] = None):
    """Products flagged by moderation, hidden from shoppers until a manager decides."""
    return read_queue(store, category, limit, offset)


@router.post("/{product_id}", response_model=DecisionOut, dependencies=[MANAGER, WRITES],
             responses=responses(400, 401, 403, 404, 413, 422, 503))
def decide_product(product_id: str, body: DecisionIn, products: ProductsDep, store: StoreDep,
                   moderation: ModerationDep):
    """Approve (searchable again) or reject (removed; the image stays refused) a product."""
    # A built service always keeps decisions (Moderator.build); without a store a decision
    # could not follow the image, so none is taken.
    if moderation.decisions is None:
        raise HTTPException(503, "this service keeps no moderation decisions")
    point = products.point(product_id)
    status = decide(store, moderation.decisions, point, body.decision)
    return DecisionOut(product_id=product_id, decision=body.decision, moderation_status=status)
