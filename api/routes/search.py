"""Shoppers' routes: search by text, image or both; facets.

Plain `def` routes: encoding a query and decoding a photo run in Starlette's
thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from pydantic import AfterValidator, BaseModel

from api.auth import SHOPPER
from api.deps import SearchDep, SettingsDep
from api.errors import responses
from catalogue.attributes import Attribute, CatalogueSchema
from catalogue.images import decode_with, model_input_size
from catalogue.schemas import ProductFilters, SearchResults
from catalogue.search import check_cursor
from catalogue.store.base import Filter

router = APIRouter(prefix="/v1", tags=["search"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
MinScore = Annotated[float | None, Query(ge=-1, le=1, description="Relevance cutoff (cosine)")]
CURSOR_HELP = ("next_cursor of the previous page, instead of offset: continues after its "
               "last result even when products were added or removed above it")
Cursor = Annotated[str | None, Query(description=CURSOR_HELP), AfterValidator(check_cursor)]
FormCursor = Annotated[str | None, Form(description=CURSOR_HELP), AfterValidator(check_cursor)]


SORT_HELP = ("relevance (needs a query), newest, or <attribute>_asc / _desc for a sortable "
             "attribute (price_asc, price_desc by default; GET /v1/schema lists them); with a "
             "query, only its relevant results (above min_score, or the 1000 best) are sorted")
Sort = Annotated[str, Query(max_length=80, description=SORT_HELP)]
# Query parameters that are not filters.
NOT_FILTERS = ("q", "limit", "offset", "min_score", "cursor", "sort", "predicted")


def query_filters(request: Request, search: SearchDep) -> Filter:
    """The catalogue schema's filters from the query string (InvalidFilter, a 422, for a
    parameter that is none of them)."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return search.schema.filter(params, reserved=NOT_FILTERS)


FiltersDep = Annotated[Filter, Depends(query_filters)]
Documented = Annotated[ProductFilters, Query()]  # for the OpenAPI page; FiltersDep reads them


def one_way_to_page(offset: int, cursor: str | None) -> None:
    """A page starts at an offset or after a cursor; both at once is ambiguous."""
    if cursor is not None and offset:
        raise HTTPException(422, "give offset or cursor, not both: a cursor page says its "
                                 "own offset")


class Facets(BaseModel):
    facets: dict[str, dict[str, int]]
    total: int


@router.get("/search", response_model=SearchResults, dependencies=[SHOPPER],
            responses=responses(401, 422, 503))
def search_products(search: SearchDep, filters: FiltersDep, documented: Documented,
                    q: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
                    limit: Limit = 20, offset: Offset = 0, min_score: MinScore = None,
                    cursor: Cursor = None, sort: Sort = "relevance"):
    """Search by text, with filters, by relevance or in a sort order (browse without q)."""
    one_way_to_page(offset, cursor)
    vector = search.query_vector(text=q) if q else None
    return search.search(vector, filters, limit, offset, min_score, cursor=cursor, sort=sort)


@router.post("/search", response_model=SearchResults, dependencies=[SHOPPER],
             responses=responses(400, 401, 404, 413, 422, 503))
def search_products_multimodal(
        search: SearchDep, settings: SettingsDep, query_filters: FiltersDep,
        q: Annotated[str | None, Form(max_length=500)] = None,
        image: Annotated[UploadFile | None, File(description="A photo to search by")] = None,
        product_id: Annotated[str | None,
                              Form(description="Search by this product's image")] = None,
        alpha: Annotated[float, Form(ge=0, le=1, description="Image weight; 0 = text only")] = 0.5,
        negative: Annotated[str | None, Form(max_length=500, description="Less of this")] = None,
        negative_weight: Annotated[float, Form(ge=0, le=1)] = 0.5,
        category: Annotated[list[str] | None, Form()] = None,
        colour: Annotated[list[str] | None, Form()] = None,
        gender: Annotated[list[str] | None, Form()] = None,
        brand: Annotated[list[str] | None, Form()] = None,
        price_min: Annotated[float | None, Form(ge=0)] = None,
        price_max: Annotated[float | None, Form(ge=0)] = None,
        limit: Annotated[int, Form(ge=1, le=100)] = 20,
        offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
        min_score: Annotated[float | None, Form(ge=-1, le=1)] = None,
        cursor: FormCursor = None,
        sort: Annotated[str, Form(max_length=80, description=SORT_HELP)] = "relevance"):
    """Search by text, an uploaded image or a product's photos, or a weighted mix. Filters
    as fields of the form (the default ones) or in the query string (any)."""
    one_way_to_page(offset, cursor)
    picture = None
    if image is not None and image.filename:
        picture = decode_with(settings, image.file.read(),
                              model_input_size(search.encoder.preprocess))
    if not q and picture is None and not product_id:
        raise HTTPException(422, "give a query text (q), an image, or a product_id")
    fields = {"category": category, "colour": colour, "gender": gender, "brand": brand,
              "price_min": None if price_min is None else [str(price_min)],
              "price_max": None if price_max is None else [str(price_max)]}
    in_form = search.schema.filter({k: v for k, v in fields.items() if v})
    filters = merge(query_filters, in_form)
    vector = search.query_vector(q, picture, product_id, alpha, negative, negative_weight)
    return search.search(vector, filters, limit, offset, min_score, cursor=cursor, sort=sort)


def merge(a: Filter, b: Filter) -> Filter:
    """Both filters' conditions (b's win where both name a field)."""
    nested = {k: merge(a.nested.get(k, Filter()), b.nested.get(k, Filter()))
              for k in a.nested.keys() | b.nested.keys()}
    return Filter(match=a.match | b.match, any=a.any | b.any, range=a.range | b.range,
                  nested=nested)


@router.get("/facets", response_model=Facets, dependencies=[SHOPPER],
            responses=responses(401, 422, 503))
def read_facets(search: SearchDep, filters: FiltersDep, documented: Documented,
                q: Annotated[str | None, Query(max_length=500)] = None,
                min_score: MinScore = None):
    """Products per value of each facetable attribute under the filters (and cutoff)."""
    vector = search.query_vector(text=q) if q and min_score is not None else None
    facets, total = search.facets(filters, vector, min_score)
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
