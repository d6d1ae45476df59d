"""Shoppers' routes: search by text, image or both; facets.

Plain `def` routes: encoding a query and decoding a photo run in Starlette's
thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from pydantic import AfterValidator, BaseModel

from api.auth import SHOPPER
from api.deps import SearchDep, SettingsDep
from api.errors import responses
from catalogue.images import decode_with, model_input_size
from catalogue.schemas import ProductFilters, SearchResults
from catalogue.search import check_cursor

router = APIRouter(prefix="/v1", tags=["search"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
MinScore = Annotated[float | None, Query(ge=-1, le=1, description="Relevance cutoff (cosine)")]
CURSOR_HELP = ("next_cursor of the previous page, instead of offset: continues after its "
               "last result even when products were added or removed above it")
Cursor = Annotated[str | None, Query(description=CURSOR_HELP), AfterValidator(check_cursor)]
FormCursor = Annotated[str | None, Form(description=CURSOR_HELP), AfterValidator(check_cursor)]


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
def search_products(search: SearchDep, filters: Annotated[ProductFilters, Query()],
                    q: Annotated[str, Query(min_length=1, max_length=500)],
                    limit: Limit = 20, offset: Offset = 0, min_score: MinScore = None,
                    cursor: Cursor = None):
    """Search by text, with filters."""
    one_way_to_page(offset, cursor)
    vector = search.query_vector(text=q)
    return search.search(vector, filters, limit, offset, min_score, cursor=cursor)


@router.post("/search", response_model=SearchResults, dependencies=[SHOPPER],
             responses=responses(400, 401, 404, 413, 422, 503))
def search_products_multimodal(
        search: SearchDep, settings: SettingsDep,
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
        cursor: FormCursor = None):
    """Search by text, an uploaded image or a product's image, or a weighted mix."""
    one_way_to_page(offset, cursor)
    picture = None
    if image is not None and image.filename:
        picture = decode_with(settings, image.file.read(),
                              model_input_size(search.encoder.preprocess))
    if not q and picture is None and not product_id:
        raise HTTPException(422, "give a query text (q), an image, or a product_id")
    filters = ProductFilters(category=category, colour=colour, gender=gender, brand=brand,
                             price_min=price_min, price_max=price_max)
    vector = search.query_vector(q, picture, product_id, alpha, negative, negative_weight)
    return search.search(vector, filters, limit, offset, min_score, cursor=cursor)


@router.get("/facets", response_model=Facets, dependencies=[SHOPPER],
            responses=responses(401, 422, 503))
def read_facets(search: SearchDep, filters: Annotated[ProductFilters, Query()],
                q: Annotated[str | None, Query(max_length=500)] = None,
                min_score: MinScore = None):
    """Counts per category, colour, gender and brand under the filters (and cutoff)."""
    vector = search.query_vector(text=q) if q and min_score is not None else None
    facets, total = search.facets(filters, vector, min_score)
    return Facets(facets=facets, total=total)
