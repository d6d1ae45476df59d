"""Products, queries and jobs as the API and the pipeline exchange them."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
SHOWN_ID_CHARS = 80  # a bad id is quoted in its message up to this length


def id_problem(value: Any) -> str | None:
    """Why `value` can't be a product id (for a catalogue line's message); None if it can."""
    if isinstance(value, str) and re.fullmatch(PRODUCT_ID_PATTERN, value):
        return None
    shown = repr(value)
    shown = shown if len(shown) <= SHOWN_ID_CHARS else shown[:SHOWN_ID_CHARS] + "…"
    return (f"bad id {shown}: an id is 1 to 128 letters, digits and . _ : -, "
            "starting with a letter or digit")


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
Code = Annotated[str, Field(min_length=1, max_length=128)]
Url = Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$")]
AttributeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AttributeValue = (Annotated[str, Field(max_length=500)] | float | bool
                  | Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)])
Attributes = Annotated[dict[AttributeName, AttributeValue], Field(max_length=100, description=(
    "The shop's own attributes (GET /v1/schema says which are filterable); undeclared ones "
    "are kept and returned"))]
# NaN and Infinity are no prices (and no JSON reply could carry them back).
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class Availability(StrEnum):
    """Google Merchant Center's values."""

    in_stock = "in_stock"
    out_of_stock = "out_of_stock"
    preorder = "preorder"
    backorder = "backorder"


class Variant(BaseModel):
    """One buyable version of a product: a colour, a size, its own price and stock.

    A field a variant leaves out is the product's own (colour, price), so a product
    without variants is one variant of itself."""

    model_config = STRICT

    sku: Code | None = None
    colour: Name | None = None
    size: Name | None = None
    price: Price | None = Field(None, description="What the shopper pays now")
    compare_at_price: Price | None = Field(None, description="The regular price, when on sale")
    availability: Availability = Availability.in_stock
    image: int | None = Field(None, ge=0, le=99, description=(
        "Index into the product's images of this variant's photo; none: the main photo"))
    gtin: Code | None = None
    mpn: Code | None = None
    attributes: Attributes = Field(default_factory=dict)


class ImageUrl(BaseModel):
    """A photo the ingest workers fetch (feeds give photos as URLs)."""

    model_config = STRICT

    url: Url


class ProductFields(BaseModel):
    """The fields a catalogue manager sets; all optional, since metadata is patchy."""

    model_config = STRICT

    title: Title = ""
    description: Description = ""
    category: Name | None = None
    colour: Name | None = None
    gender: Name | None = None
    brand: Name | None = None
    pattern: Name | None = None
    price: Price | None = None
    tags: Tags = Field(default_factory=list)
    link: Url | None = None
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    attributes: Attributes = Field(default_factory=dict)
    variants: list[Variant] = Field(default_factory=list, max_length=100, description=(
        "Colours, sizes, prices and stock; none: the product is its only variant"))


class ProductCreate(ProductFields):
    id: str = Field(pattern=PRODUCT_ID_PATTERN, description="The shop's own product id")
    images: list[ImageUrl] = Field(default_factory=list, max_length=20, description=(
        "Photos by URL, after any uploaded with the product; the first photo is the main one"))


class ProductUpdate(BaseModel):
    """A partial update: only the fields given change."""

    model_config = STRICT

    title: Title | None = None
    description: Description | None = None
    category: Name | None = None
    colour: Name | None = None
    gender: Name | None = None
    brand: Name | None = None
    pattern: Name | None = None
    price: Price | None = None
    tags: Tags | None = None
    link: Url | None = None
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    attributes: Attributes | None = None
    variants: list[Variant] | None = Field(None, max_length=100)


class ImagePublic(BaseModel):
    sha256: str = Field(description="The original's SHA-256")
    display_sha256: str | None = Field(None, description="The served copy's SHA-256")
    url: str | None = Field(None, description="Where it was fetched from")


class ProductPublic(ProductFields):
    model_config = ConfigDict(extra="ignore")

    id: str
    images: list[ImagePublic] = Field(default_factory=list,
                                      description="Photos, the main one first")
    image_sha256: str
    display_sha256: str | None = Field(None, description=(
        "The served copy's SHA-256 (a JPEG Vitrine re-encoded); none for older products"))
    model: str
    moderation_status: ModerationStatus = ModerationStatus.visible
    predicted: dict[str, Any] = Field(default_factory=dict,
                                      description="Attributes predicted zero-shot, with confidence")
    created_at: float | None = None
    updated_at: float


class ProductFilters(BaseModel):
    """The default catalogue schema's filters, as documented query parameters. A shop's own
    attributes filter the same way (`name=value`, `name_min`/`name_max` for numbers and
    dates): GET /v1/schema lists them."""

    # Shares the query string with q, limit and friends, so other keys are allowed.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    category: list[str] | None = None
    colour: list[str] | None = Field(None, description="A variant of one of these colours")
    size: list[str] | None = Field(None, description="A variant in one of these sizes")
    availability: list[Availability] | None = Field(None, description=(
        "A variant that is in_stock, say: with size and colour, the same variant"))
    gender: list[str] | None = None
    brand: list[str] | None = None
    pattern: list[str] | None = None
    tags: list[str] | None = None
    price_min: float | None = Field(None, ge=0, description="A variant priced at least this")
    price_max: float | None = Field(None, ge=0)


class Explanation(BaseModel):
    """Why a result matched (explain=true)."""

    dense: float | None = Field(None, description="Cosine of the query and the shown photo")
    keyword: float | None = Field(None, description="BM25 score of the product's words")
    terms: list[str] = Field(default_factory=list, description="Query words it has")
    image: int = Field(description="The photo that matched best")
    exact: bool = Field(False, description="Pinned first: the query names its SKU, GTIN, "
                                           "MPN or id")


class SearchResult(BaseModel):
    product_id: str
    score: float = Field(description=(
        "By relevance: the similarity (cosine; fused rank score in hybrid mode; 1000 and "
        "down for a product the query names exactly). In another sort order: the value "
        "sorted by (price, or newest's time)"))
    product: ProductPublic
    image: int = Field(0, description="Index of the photo that matched best (the one to show)")
    variant: Variant | None = Field(None, description=(
        "The variant to show: the one whose photo matched best among those the filters keep"))
    explain: Explanation | None = Field(None, description="With explain=true")


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
    added: int = Field(0, description="Products new to the catalogue")
    updated: int = Field(0, description="Products that existed and changed")
    unchanged: int = Field(0, description="Products that existed as they were (nothing encoded)")
    removed: int = Field(0, description="Products pruned because the feed no longer had them")
    errors: list[ItemError]
    warnings: list[ItemError] = Field(default_factory=list, description=(
        "Items that indexed, with something to say (a photo that could not be fetched)"))
    created_at: float
    updated_at: float
