"""The moderation queue as the HTTP API serves it, and applying a manager's decision.

Flagged products stay in the vector store, hidden from shoppers
(catalogue.search.store_filter); the queue is a filtered scroll over them, and a
decision both lands in the DecisionStore (so it sticks to the image) and updates or
removes the point.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from catalogue.moderation.decisions import Decision, DecisionStore
from catalogue.schemas import ModerationStatus
from catalogue.store.base import VectorStore
from catalogue.store.filters import Filter


class ModerationItem(BaseModel):
    product_id: str
    title: str
    category: str | None
    score: float | None
    prompts: list[str] = Field(description="The category's prompts nearest the image")
    evidence: dict[str, float] = Field(default_factory=dict, description=(
        "The score's parts: the prompts' share, and the labelled examples' score"))
    image_sha256: str
    moderation_status: ModerationStatus


class ModerationQueue(BaseModel):
    items: list[ModerationItem]
    next_offset: str | None = Field(None, description="Pass as offset for the next page")


def queue_item(payload: dict[str, Any]) -> ModerationItem:
    judged = payload.get("moderation") or {}
    return ModerationItem(product_id=payload["product_id"], title=payload.get("title", ""),
                          category=judged.get("category"), score=judged.get("score"),
                          prompts=judged.get("prompts", []),
                          evidence=judged.get("evidence", {}),
                          image_sha256=payload["image_sha256"],
                          moderation_status=payload["moderation_status"])


def read_queue(store: VectorStore, category: str | None = None, limit: int = 50,
               offset: str | None = None) -> ModerationQueue:
    """Flagged products, in point-id order so pages are stable while decisions land."""
    f = Filter(match={"moderation_status": ModerationStatus.flagged.value})
    if category:
        f.match["moderation.category"] = category
    points, next_offset = store.scroll(f, limit=limit, offset=offset)
    return ModerationQueue(items=[queue_item(p.payload) for p in points],
                           next_offset=next_offset)


def decide(store: VectorStore, decisions: DecisionStore, point: Any, decision: Decision
           ) -> ModerationStatus:
    """Record a manager's decision and apply it: approve -> searchable, reject -> removed."""
    payload = point.payload
    judged = payload.get("moderation") or {}
    decisions.record(payload["image_sha256"], payload["product_id"], decision,
                     judged.get("category"), judged.get("score"))
    if decision is Decision.reject:
        store.delete([point.id])
        return ModerationStatus.rejected
    store.set_payload([point.id], {"moderation_status": ModerationStatus.approved.value,
                                   "moderation": {**judged, "decision": decision.value}})
    return ModerationStatus.approved
