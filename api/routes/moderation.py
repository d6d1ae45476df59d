"""Catalogue managers' moderation: the queue of flagged products and decisions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from api.auth import MANAGER
from api.deps import ServicesDep
from catalogue.moderation import Decision, ModerationQueue, decide, read_queue
from catalogue.schemas import ModerationStatus
from catalogue.store.base import point_id

router = APIRouter(prefix="/v1/moderation", tags=["moderation"])

POINT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class DecisionIn(BaseModel):
    decision: Decision


class DecisionOut(BaseModel):
    product_id: str
    decision: Decision
    moderation_status: ModerationStatus


@router.get("/queue", response_model=ModerationQueue, dependencies=[MANAGER])
def read_moderation_queue(
        services: ServicesDep,
        category: Annotated[str | None, Query(max_length=100,
                                              description="Only this policy category")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[str | None, Query(pattern=POINT_ID,
                                            description="next_offset of the previous page")
                          ] = None):
    """Products flagged by moderation, hidden from shoppers until a manager decides."""
    return read_queue(services.store, category, limit, offset)


@router.post("/{product_id}", response_model=DecisionOut, dependencies=[MANAGER])
def decide_product(product_id: str, body: DecisionIn, services: ServicesDep):
    """Approve (searchable again) or reject (removed; the image stays refused) a product."""
    point = services.store.get(point_id(product_id))
    if point is None:
        raise HTTPException(404, f"unknown product {product_id!r}")
    status = decide(services.store, services.moderation.decisions, point, body.decision)
    return DecisionOut(product_id=product_id, decision=body.decision, moderation_status=status)
