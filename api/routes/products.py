"""Catalogue managers' routes: upload, read, update, delete products; follow jobs.

Plain `def` routes: Starlette runs them in its thread pool, so decoding, hashing
and the durable write of an upload never hold up the event loop (health checks
and searches answer while a slow upload is stored).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from pydantic import BaseModel

from api.auth import MANAGER, SHOPPER
from api.deps import WRITES, DispatchDep, IngestDep, JobsDep, ProductsDep, SearchDep
from api.errors import ApiProblem, responses
from api.ratelimit import SEARCH_LIMIT, UPLOAD_LIMIT
from api.routes.search import Cursor, Documented, FiltersDep, one_way_to_page
from catalogue.ingest import Accepted, Upload
from catalogue.jsonsafe import JsonInputError, parse_json
from catalogue.products import ProductsPage
from catalogue.schemas import (
    JobPublic,
    ProductPublic,
    ProductUpdate,
    Role,
    SearchResults,
)
from catalogue.store.base import POINT_ID_PATTERN, point_id

router = APIRouter(prefix="/v1", tags=["products"])


class JobAccepted(BaseModel):
    job_id: str
    accepted: int
    rejected: int


def parse_metadata(raw: str) -> Any:
    try:
        # The form field's size was capped as it arrived (VITRINE_MAX_PART_BYTES, 413).
        return parse_json(raw, max_bytes=sys.maxsize)
    except JsonInputError as exc:
        raise ApiProblem(422, f"metadata: {exc}", code="invalid_json", field="metadata",
                         line=exc.line) from None


def submit(dispatch: DispatchDep, accepted: Accepted) -> JobAccepted:
    """Hand the recorded job on (503, and nothing kept, if it can't be) and say so."""
    dispatch.submit(accepted.job_id)
    return JobAccepted(job_id=accepted.job_id, accepted=accepted.accepted,
                       rejected=accepted.rejected)


UPLOAD_ERRORS = responses(400, 401, 403, 413, 422, 429, 503)


@router.post("/products", status_code=202, dependencies=[MANAGER, UPLOAD_LIMIT],
             response_model=JobAccepted, responses=UPLOAD_ERRORS)
def create_product(ingest: IngestDep, dispatch: DispatchDep,
                   metadata: Annotated[str, Form(description="Product fields as JSON")],
                   image: Annotated[UploadFile | None, File(description="Product photo")] = None,
                   images: Annotated[list[UploadFile] | None, File(description=(
                       "Several photos, in order (after `image`, before any by URL in the "
                       "metadata's `images`)"))] = None):
    """Upload one product; it is searchable once its job is done. Uploading it again with
    one photo more or less re-encodes only that photo."""
    fields = parse_metadata(metadata)
    if not isinstance(fields, dict):
        raise HTTPException(422, "metadata must be a JSON object with the product's fields")
    parts = ([image] if image is not None and image.filename else []) + \
        [part for part in images or [] if part.filename]
    return submit(dispatch, ingest.accept([Upload(fields, [p.file.read() for p in parts])],
                                          strict=True))


@router.post("/products/batch", status_code=202, dependencies=[MANAGER, UPLOAD_LIMIT],
             response_model=JobAccepted, responses=UPLOAD_ERRORS)
def create_products(ingest: IngestDep, dispatch: DispatchDep,
                    images: Annotated[list[UploadFile], File(description="Photos, in the "
                                                             "order of the metadata list")],
                    metadata: Annotated[str, Form(description="JSON list of products")]):
    """Upload several products in one request; a bad item fails alone with its reason."""
    items = parse_metadata(metadata)
    if not isinstance(items, list) or not items:
        raise HTTPException(422, "metadata must be a non-empty JSON list of products")
    if len(items) != len(images):
        raise HTTPException(422, f"{len(items)} metadata entries but {len(images)} images")
    uploads = (Upload(fields, [part.file.read()]) for fields, part in zip(items, images,
                                                                           strict=True))
    return submit(dispatch, ingest.accept(uploads))


@router.get("/jobs/{job_id}", response_model=JobPublic, dependencies=[MANAGER],
            responses=responses(401, 403, 404, 422, 503))
def read_job(job_id: str, jobs: JobsDep):
    """State of an ingest job: counts and per-item errors."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"unknown job {job_id!r}")
    return job


@router.get("/products", response_model=ProductsPage, dependencies=[MANAGER],
            responses=responses(401, 403, 422, 503))
def read_products(products: ProductsDep,
                  predicted: Annotated[bool, Query(description="Only products with fields "
                                                   "predicted from their image")] = False,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Annotated[str | None, Query(pattern=POINT_ID_PATTERN, description=(
                      "next_offset of the previous page"))] = None):
    """Products in a stable order, flagged ones included; confirm a prediction by PATCHing
    the field."""
    return products.list(limit, offset, predicted)


@router.get("/products/{product_id}", response_model=ProductPublic,
            responses=responses(401, 404, 422, 503))
def read_product(product_id: str, products: ProductsDep, role: Annotated[Role, SHOPPER]):
    """One product as indexed (hidden ones only for managers)."""
    return products.get(product_id, role)


@router.patch("/products/{product_id}", response_model=ProductPublic,
              dependencies=[MANAGER, WRITES],
              responses=responses(400, 401, 403, 404, 413, 422, 503))
def update_product(product_id: str, update: ProductUpdate, products: ProductsDep):
    """Change a product's fields without re-encoding its image."""
    changes = update.model_dump(exclude_unset=True)
    if not changes:
        products.get(product_id)  # an unknown product is a 404 before an empty body's 422
        raise HTTPException(422, "no fields to update")
    return products.update(product_id, changes)


@router.delete("/products/{product_id}", status_code=204, dependencies=[MANAGER, WRITES],
               responses=responses(401, 403, 404, 422, 503))
def delete_product(product_id: str, products: ProductsDep):
    """Remove a product from the index."""
    products.delete(product_id)


@router.get("/products/{product_id}/similar", response_model=SearchResults,
            dependencies=[SHOPPER, SEARCH_LIMIT], responses=responses(401, 404, 422, 429, 503))
def similar_products(product_id: str, products: ProductsDep, search: SearchDep,
                     filters: FiltersDep, documented: Documented,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20,
                     offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
                     min_score: Annotated[float | None, Query(ge=-1, le=1)] = None,
                     cursor: Cursor = None):
    """More like this: products whose photos are nearest, the product itself left out (the
    one-product case of POST /v1/recommend)."""
    one_way_to_page(offset, cursor)
    return search.search(search.like([product_id]), filters, limit, offset, min_score,
                         exclude_ids=[point_id(product_id)], cursor=cursor)
