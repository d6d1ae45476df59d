"""Shoppers' routes: search by text, image or both; facets.

Plain `def` routes: encoding a query and decoding a photo run in Starlette's
thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from pydantic import BaseModel

from api.auth import SHOPPER
from api.deps import SearchDep, SettingsDep
from catalogue.images import decode_image
from catalogue.schemas import ProductFilters, SearchResults

router = APIRouter(prefix="/v1", tags=["search"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
MinScore = Annotated[float | None, Query(ge=-1, le=1, description="Relevance cutoff (cosine)")]


class Facets(BaseModel):
    facets: dict[str, dict[str, int]]
    total: int


@router.get("/search", response_model=SearchResults, dependencies=[SHOPPER])
def search_products(search: SearchDep, filters: Annotated[ProductFilters, Query()],
                    q: Annotated[str, Query(min_length=1, max_length=500)],
                    limit: Limit = 20, offset: Offset = 0, min_score: MinScore = None):
    """Search by text, with filters."""
    vector = search.query_vector(text=q)
    return search.search(vector, filters, limit, offset, min_score)


@router.post("/search", response_model=SearchResults, dependencies=[SHOPPER])
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
        min_score: Annotated[float | None, Form(ge=-1, le=1)] = None):
    """Search by text, an uploaded image or a product's image, or a weighted mix."""
    picture = None
    if image is not None and image.filename:
        picture = decode_image(image.file.read(), settings.max_image_bytes,
                               settings.max_image_pixels)
    if not q and picture is None and not product_id:
        raise HTTPException(422, "give a query text (q), an image, or a product_id")
    filters = ProductFilters(category=category, colour=colour, gender=gender, brand=brand,
                             price_min=price_min, price_max=price_max)
    vector = search.query_vector(q, picture, product_id, alpha, negative, negative_weight)
    return search.search(vector, filters, limit, offset, min_score)


@router.get("/facets", response_model=Facets, dependencies=[SHOPPER])
def read_facets(search: SearchDep, filters: Annotated[ProductFilters, Query()],
                q: Annotated[str | None, Query(max_length=500)] = None,
                min_score: MinScore = None):
    """Counts per category, colour, gender and brand under the filters (and cutoff)."""
    vector = search.query_vector(text=q) if q and min_score is not None else None
    facets, total = search.facets(filters, vector, min_score)
    return Facets(facets=facets, total=total)
