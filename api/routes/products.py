"""Catalogue managers' routes: upload, read, update, delete products; follow jobs."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from pydantic import BaseModel

from api.auth import MANAGER, SHOPPER, Role
from api.deps import DispatchDep, ServicesDep
from catalogue.ingest import Upload
from catalogue.schemas import (
    SHOPPER_VISIBLE,
    JobPublic,
    ProductFilters,
    ProductPublic,
    ProductUpdate,
    SearchResults,
)
from catalogue.store.base import point_id
from catalogue.tagging import ProductsPage, list_products

router = APIRouter(prefix="/v1", tags=["products"])
POINT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class JobAccepted(BaseModel):
    job_id: str
    accepted: int
    rejected: int


def parse_metadata(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"metadata is not valid JSON: {exc}") from None


def read_product_or_404(services, product_id: str, role: Role = Role.manager) -> ProductPublic:
    """The product; flagged or rejected ones exist only for managers."""
    point = services.store.get(point_id(product_id))
    hidden = point is not None and point.payload.get("moderation_status") not in SHOPPER_VISIBLE
    if point is None or (hidden and role is not Role.manager):
        raise HTTPException(404, f"unknown product {product_id!r}")
    return ProductPublic.model_validate({**point.payload, "id": point.payload["product_id"]})


@router.post("/products", status_code=202, dependencies=[MANAGER], response_model=JobAccepted)
async def create_product(services: ServicesDep, dispatch: DispatchDep,
                         image: Annotated[UploadFile, File(description="Product photo")],
                         metadata: Annotated[str, Form(description="Product fields as JSON")]):
    """Upload one product; it is searchable once its job is done."""
    fields = parse_metadata(metadata)
    if not isinstance(fields, dict):
        raise HTTPException(422, "metadata must be a JSON object with the product's fields")
    item = services.ingest.prepare(Upload(fields, await image.read()))
    if item.error:
        raise HTTPException(422, item.error)
    job_id = services.jobs.create_job("upload", [item])
    dispatch(job_id)
    return JobAccepted(job_id=job_id, accepted=1, rejected=0)


@router.post("/products/batch", status_code=202, dependencies=[MANAGER],
             response_model=JobAccepted)
async def create_products(services: ServicesDep, dispatch: DispatchDep,
                          images: Annotated[list[UploadFile], File(description="Photos, in the "
                                                                   "order of the metadata list")],
                          metadata: Annotated[str, Form(description="JSON list of products")]):
    """Upload several products in one request; a bad item fails alone with its reason."""
    items = parse_metadata(metadata)
    if not isinstance(items, list) or not items:
        raise HTTPException(422, "metadata must be a non-empty JSON list of products")
    if len(items) != len(images):
        raise HTTPException(422, f"{len(items)} metadata entries but {len(images)} images")
    prepared = [services.ingest.prepare(Upload(fields, await part.read()))
                for fields, part in zip(items, images, strict=True)]
    job_id = services.jobs.create_job("upload", prepared)
    dispatch(job_id)
    rejected = sum(1 for p in prepared if p.error)
    return JobAccepted(job_id=job_id, accepted=len(prepared) - rejected, rejected=rejected)


@router.get("/jobs/{job_id}", response_model=JobPublic, dependencies=[MANAGER])
def read_job(job_id: str, services: ServicesDep):
    """State of an ingest job: counts and per-item errors."""
    job = services.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"unknown job {job_id!r}")
    return job


@router.get("/products", response_model=ProductsPage, dependencies=[MANAGER])
def read_products(services: ServicesDep,
                  predicted: Annotated[bool, Query(description="Only products with fields "
                                                   "predicted from their image")] = False,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Annotated[str | None, Query(pattern=POINT_ID, description=(
                      "next_offset of the previous page"))] = None):
    """Products in a stable order, flagged ones included; confirm a prediction by PATCHing
    the field."""
    return list_products(services.store, limit, offset, predicted)


@router.get("/products/{product_id}", response_model=ProductPublic)
def read_product(product_id: str, services: ServicesDep, role: Annotated[Role, SHOPPER]):
    """One product as indexed (hidden ones only for managers)."""
    return read_product_or_404(services, product_id, role)


@router.patch("/products/{product_id}", response_model=ProductPublic,
              dependencies=[MANAGER])
def update_product(product_id: str, update: ProductUpdate, services: ServicesDep):
    """Change a product's fields without re-encoding its image."""
    current = read_product_or_404(services, product_id)
    changes = update.model_dump(exclude_unset=True)
    if not changes:
        raise HTTPException(422, "no fields to update")
    # A field the manager sets is no longer a prediction.
    predicted = {k: v for k, v in current.predicted.items() if k not in changes}
    services.store.set_payload([point_id(product_id)],
                               {**changes, "predicted": predicted, "updated_at": time.time()})
    return read_product_or_404(services, product_id)


@router.delete("/products/{product_id}", status_code=204, dependencies=[MANAGER])
def delete_product(product_id: str, services: ServicesDep):
    """Remove a product from the index."""
    read_product_or_404(services, product_id)
    services.store.delete([point_id(product_id)])


@router.get("/products/{product_id}/similar", response_model=SearchResults,
            dependencies=[SHOPPER])
def similar_products(product_id: str, services: ServicesDep,
                     filters: Annotated[ProductFilters, Query()],
                     limit: Annotated[int, Query(ge=1, le=100)] = 20,
                     offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
                     min_score: Annotated[float | None, Query(ge=-1, le=1)] = None):
    """More like this: products whose images are nearest, the product itself left out."""
    vector = services.search.product_vector(product_id)
    return services.search.search(vector, filters, limit, offset, min_score,
                                  exclude_ids=[point_id(product_id)])
