"""Shoppers' routes: search by text, image or both; facets.

Plain `def` routes: encoding a query and decoding a photo run in Starlette's
thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field

from api.auth import SHOPPER
from api.deps import SearchDep, SettingsDep, SuggesterDep
from api.errors import responses
from api.metrics import timing_search
from api.ratelimit import SEARCH_LIMIT
from api.search_body import OPENAPI, SearchBody, filter_params
from catalogue.attributes import Attribute, CatalogueSchema
from catalogue.cursor import check_cursor
from catalogue.images import decode_with, model_input_size
from catalogue.schemas import ProductFilters, SearchResults
from catalogue.store.filters import Filter

router = APIRouter(prefix="/v1", tags=["search"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
MinScore = Annotated[float | None, Query(ge=-1, le=1, description="Relevance cutoff (cosine)")]
CURSOR_HELP = ("next_cursor of the previous page, instead of offset: continues after its "
               "last result even when products were added or removed above it")
Cursor = Annotated[str | None, Query(description=CURSOR_HELP), AfterValidator(check_cursor)]


SORT_HELP = ("relevance (needs a query), newest, or <attribute>_asc / _desc for a sortable "
             "attribute (price_asc, price_desc by default; GET /v1/schema lists them); with a "
             "query, only its relevant results (above min_score, or the 1000 best) are sorted")
Sort = Annotated[str, Query(max_length=80, description=SORT_HELP)]
# Query parameters that are not filters.
NOT_FILTERS = ("q", "limit", "offset", "min_score", "cursor", "sort", "predicted", "mode",
               "keyword_weight", "diversity", "explain")


async def query_filters(request: Request, search: SearchDep) -> Filter:
    """The catalogue schema's filters from the query string (InvalidFilter, a 422, for a
    parameter that is none of them); async, as it only parses (api.deps.part)."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return search.schema.filter(params, reserved=NOT_FILTERS)


FiltersDep = Annotated[Filter, Depends(query_filters)]
Documented = Annotated[ProductFilters, Query()]  # for the OpenAPI page; FiltersDep reads them


def as_json(page: str) -> Response:
    """A page's JSON (`Search.search_json`: made in the route's worker thread, or as the
    page cache keeps it). Returned as a model, FastAPI would validate it again in a second
    trip to the thread pool and serialise it; the routes still declare
    `response_model=SearchResults` for the OpenAPI page."""
    return Response(page, media_type="application/json")


def one_way_to_page(offset: int, cursor: str | None) -> None:
    """A page starts at an offset or after a cursor; both at once is ambiguous."""
    if cursor is not None and offset:
        raise HTTPException(422, "give offset or cursor, not both: a cursor page says its "
                                 "own offset")


class Facets(BaseModel):
    facets: dict[str, dict[str, int]]
    total: int


Mode = Annotated[Literal["hybrid", "semantic", "keyword"] | None, Query(description=(
    "hybrid (default): photo vectors and keywords fused; semantic: vectors only; keyword"))]
KeywordWeight = Annotated[float | None, Query(ge=0, le=1, description=(
    "The keyword side's weight in hybrid mode (reciprocal rank fusion)"))]
Diversity = Annotated[float, Query(ge=0, le=1, description=(
    "Maximal marginal relevance: 0 relevance only, towards 1 fewer near-duplicates; "
    "pages by offset"))]
Explain = Annotated[bool, Query(description="Say per result what matched")]


@router.get("/search", response_model=SearchResults, dependencies=[SHOPPER, SEARCH_LIMIT],
            responses=responses(401, 422, 429, 503))
def search_products(search: SearchDep, filters: FiltersDep, documented: Documented,
                    q: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
                    limit: Limit = 20, offset: Offset = 0, min_score: MinScore = None,
                    cursor: Cursor = None, sort: Sort = "relevance", mode: Mode = None,
                    keyword_weight: KeywordWeight = None, diversity: Diversity = 0,
                    explain: Explain = False):
    """Search by text (words and meaning), with filters, by relevance or in a sort order
    (browse without q). A query naming a SKU, GTIN, MPN or product id finds it first."""
    one_way_to_page(offset, cursor)
    with timing_search() as timer:
        with timer.encoding():
            ask = search.ask(q, mode=mode, keyword_weight=keyword_weight,
                             diversity=diversity) if q else None
        page = search.search_json(ask, filters, limit, offset, min_score, cursor=cursor,
                                  sort=sort, explained=explain)
    return as_json(page)


@router.post("/search", response_model=SearchResults, dependencies=[SHOPPER, SEARCH_LIMIT],
             responses=responses(400, 401, 404, 413, 415, 422, 429, 503),
             openapi_extra=OPENAPI)
def search_products_multimodal(search: SearchDep, settings: SettingsDep,
                               query_filters: FiltersDep, body: SearchBody):
    """Search by text, a photo or a product's photos, or a weighted mix: a multipart form
    (a browser's, with the photo as a file) or JSON (the photo as base64), the same
    fields either way. Filters in the body or the query string."""
    request, photo = body
    check_cursor(request.cursor)
    one_way_to_page(request.offset, request.cursor)
    picture = None
    if photo is not None:
        picture = decode_with(settings, photo, model_input_size(search.encoder.preprocess))
    if not request.q and picture is None and not request.product_id:
        raise HTTPException(422, "give a query text (q), an image, or a product_id")
    filters = query_filters.both(search.schema.filter(filter_params(request.filters)))
    with timing_search() as timer:
        with timer.encoding():
            ask = search.ask(request.q, picture, request.product_id, request.alpha,
                             request.negative, request.negative_weight, request.mode,
                             request.keyword_weight, request.diversity)
        page = search.search_json(ask, filters, request.limit, request.offset,
                                  request.min_score, cursor=request.cursor, sort=request.sort,
                                  explained=request.explain)
    return as_json(page)


@router.get("/facets", response_model=Facets, dependencies=[SHOPPER, SEARCH_LIMIT],
            responses=responses(401, 422, 429, 503))
def read_facets(search: SearchDep, filters: FiltersDep, documented: Documented,
                q: Annotated[str | None, Query(max_length=500)] = None,
                min_score: MinScore = None, mode: Mode = None):
    """Products per value of each facetable attribute under the filters (and cutoff)."""
    ask = search.ask(q, mode=mode) if q and min_score is not None else None
    facets, total = search.facets(filters, ask, min_score)
    return Facets(facets=facets, total=total)


class SchemaPublic(BaseModel):
    attributes: list[Attribute]
    sort: list[str]


@router.get("/schema", response_model=SchemaPublic, dependencies=[SHOPPER],
            responses=responses(401, 503))
def read_schema(search: SearchDep):
    """The shop's attributes: which filter, facet and sort, and the sort orders."""
    schema: CatalogueSchema = search.schema
    return SchemaPublic(attributes=schema.attributes, sort=schema.sort_orders)


class SuggestionPublic(BaseModel):
    text: str
    kind: Literal["brand", "category", "title"]
    count: int = Field(description="Products that have it")


class Suggestions(BaseModel):
    suggestions: list[SuggestionPublic]


@router.get("/suggest", response_model=Suggestions, dependencies=[SHOPPER, SEARCH_LIMIT],
            responses=responses(401, 422, 429, 503))
def suggest_completions(suggester: SuggesterDep,
                        q: Annotated[str, Query(min_length=1, max_length=100)],
                        limit: Annotated[int, Query(ge=1, le=20)] = 8):
    """Typeahead: brands, categories and titles completing what was typed so far (the
    last word as a prefix), tolerant of one typo in words of five letters or more."""
    return Suggestions(suggestions=[SuggestionPublic(text=s.text, kind=s.kind, count=s.count)
                                    for s in suggester.suggest(q, limit)])
