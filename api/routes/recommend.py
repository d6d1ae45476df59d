"""Recommendations: products like the ones a shopper liked, unlike the ones they didn't."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import SHOPPER
from api.deps import SearchDep
from api.errors import responses
from api.ratelimit import SEARCH_LIMIT
from api.routes.search import FiltersDep, one_way_to_page
from api.search_body import FilterValue, filter_params
from catalogue.cursor import check_cursor
from catalogue.schemas import SearchResults
from catalogue.store.base import point_id

router = APIRouter(prefix="/v1", tags=["search"])


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"positive": ["10576", "10612"], "negative": ["10044"],
                      "filters": {"availability": ["in_stock"]}}]})

    positive: list[str] = Field(min_length=1, max_length=20, description="Liked product ids")
    negative: list[str] = Field(default_factory=list, max_length=20,
                                description="Disliked product ids")
    filters: dict[str, FilterValue] = Field(default_factory=dict, max_length=100)
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)
    cursor: str | None = Field(None, max_length=200)
    min_score: float | None = Field(None, ge=-1, le=1)


@router.post("/recommend", response_model=SearchResults,
             dependencies=[SHOPPER, SEARCH_LIMIT],
             responses=responses(400, 401, 404, 413, 422, 429, 503))
def recommend_products(request: RecommendRequest, search: SearchDep, query_filters: FiltersDep):
    """Products like the liked ones (by their photos) and unlike the disliked, with filters
    and paging as search; the examples themselves left out. "More like this" is its
    one-product case."""
    check_cursor(request.cursor)
    one_way_to_page(request.offset, request.cursor)
    filters = query_filters.both(search.schema.filter(filter_params(request.filters)))
    ask = search.like(request.positive, request.negative)
    return search.search(ask, filters, request.limit, request.offset, request.min_score,
                         exclude_ids=[point_id(i) for i in request.positive + request.negative],
                         cursor=request.cursor)
