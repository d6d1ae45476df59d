"""Products, queries and jobs as the API and the pipeline exchange them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class ModerationStatus(StrEnum):
    visible = "visible"  # passed moderation on ingest
    flagged = "flagged"  # hidden from shoppers until a manager decides
    approved = "approved"  # flagged, then approved by a manager
    rejected = "rejected"  # removed; the decision is kept for re-uploads


SHOPPER_VISIBLE = (ModerationStatus.visible.value, ModerationStatus.approved.value)
"""Statuses a shopper may see; the rule that uses them lives in catalogue.products."""


class Role(StrEnum):
    """Who is asking. A catalogue manager may do everything a shopper may."""

    public = "public"  # health checks, docs and the web pages' static files
    shopper = "shopper"  # search, facets, similar, classify
    manager = "manager"  # uploads, updates, deletes, moderation, imports


RANK = {Role.public: 0, Role.shopper: 1, Role.manager: 2}


# Field types shared by creation and update, so their limits can't drift apart.
Title = Annotated[str, Field(max_length=500)]
Description = Annotated[str, Field(max_length=5000)]
Name = Annotated[str, Field(max_length=100)]
Price = Annotated[float, Field(ge=0, le=10_000_000)]
Tags = Annotated[list[str], Field(max_length=50)]


class ProductFields(BaseModel):
    """The fields a catalogue manager sets; all optional, since metadata is patchy."""

    # NaN and Infinity are no prices (and no JSON reply could carry them back).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    title: Title = ""
    description: Description = ""
    category: Name | None = None
    colour: Name | None = None
    gender: Name | None = None
    brand: Name | None = None
    pattern: Name | None = None
    price: Price | None = None
    tags: Tags = Field(default_factory=list)


class ProductCreate(ProductFields):
    id: str = Field(pattern=PRODUCT_ID_PATTERN, description="The shop's own product id")


class ProductUpdate(BaseModel):
    """A partial update: only the fields given change."""

    # NaN and Infinity are no prices (and no JSON reply could carry them back).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    title: Title | None = None
    description: Description | None = None
    category: Name | None = None
    colour: Name | None = None
    gender: Name | None = None
    brand: Name | None = None
    pattern: Name | None = None
    price: Price | None = None
    tags: Tags | None = None


class ProductPublic(ProductCreate):
    model_config = ConfigDict(extra="ignore")

    image_sha256: str
    display_sha256: str | None = Field(None, description=(
        "The served copy's SHA-256 (a JPEG Vitrine re-encoded); none for older products"))
    model: str
    moderation_status: ModerationStatus = ModerationStatus.visible
    predicted: dict[str, Any] = Field(default_factory=dict,
                                      description="Attributes predicted zero-shot, with confidence")
    updated_at: float


class ProductFilters(BaseModel):
    # Shares the query string with q, limit and friends, so other keys are allowed.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    category: list[str] | None = None
    colour: list[str] | None = None
    gender: list[str] | None = None
    brand: list[str] | None = None
    price_min: float | None = Field(None, ge=0)
    price_max: float | None = Field(None, ge=0)


class SearchResult(BaseModel):
    product_id: str
    score: float
    product: ProductPublic


class SearchResults(BaseModel):
    results: list[SearchResult]
    limit: int
    offset: int = Field(description="Position of the first result, cursor pages included")
    next_offset: int | None = Field(description="Pass as offset for the next page")
    next_cursor: str | None = Field(None, description=(
        "Pass as cursor for the next page: continues after this page's last result even "
        "when products were added or removed above it"))


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class ItemError(BaseModel):
    index: int
    product_id: str | None
    error: str


class JobPublic(BaseModel):
    id: str
    kind: str
    state: JobState
    total: int
    succeeded: int
    failed: int
    pending: int
    errors: list[ItemError]
    created_at: float
    updated_at: float
