"""The body of POST /v1/search: a browser's multipart form (a photo as a file part) or a
JSON object (a photo as base64), both read into one `SearchRequest`, so the two
give the same results and are checked by the same rules.

FastAPI reads a body of one content type per route; this reads either, in an async
dependency (the route itself stays a plain `def`), and documents both in OpenAPI.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.formparsers import MultiPartException

from api.errors import ApiProblem
from catalogue.jsonsafe import JsonInputError, parse_json
from catalogue.queries import DEFAULT_ALPHA

FilterValue = list[str] | str | float | bool


class SearchRequest(BaseModel):
    """A search by text, a photo or a product's photos, or a weighted mix."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"q": "red dress with white dots", "filters": {"size": ["M"],
                                                                     "price_max": 80}},
                     {"product_id": "10576", "q": "with flowers", "alpha": 0.6},
                     {"q": "Levi's 501", "mode": "keyword", "sort": "price_asc"}]})

    q: str | None = Field(None, min_length=1, max_length=500)
    image: str | None = Field(None, max_length=40_000_000, description=(
        "JSON: a photo as base64 (a file part named image in a form)"))
    product_id: str | None = Field(None, max_length=128, description="Search by its photos")
    alpha: float = Field(DEFAULT_ALPHA, ge=0, le=1,
                         description="Image weight; 0 = text only")
    negative: str | None = Field(None, max_length=500, description="Less of this")
    negative_weight: float = Field(0.5, ge=0, le=1)
    mode: Literal["hybrid", "semantic", "keyword"] | None = Field(None, description=(
        "hybrid (default): photo vectors and keywords fused; semantic; keyword"))
    keyword_weight: float | None = Field(None, ge=0, le=1)
    diversity: float = Field(0, ge=0, le=1, description="MMR: 0 relevance only")
    filters: dict[str, FilterValue] = Field(default_factory=dict, max_length=100,
                                            description=(
        "Filters as the query string has them: {\"colour\": [\"Red\"], \"price_max\": 80}; "
        "in a form, any other field is a filter"))
    sort: str = Field("relevance", max_length=80)
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)
    cursor: str | None = Field(None, max_length=200)
    min_score: float | None = Field(None, ge=-1, le=1)
    explain: bool = False


def filter_params(filters: dict[str, FilterValue]) -> dict[str, list[str]]:
    """Filters of a JSON body as query-string parameters (CatalogueSchema.filter reads
    those): {"colour": ["Red"], "price_max": 80, "organic": true}."""
    def text(x: str | float | bool) -> str:
        return str(x).lower() if isinstance(x, bool) else str(x)

    return {k: [text(x) for x in v] if isinstance(v, list) else [text(v)]
            for k, v in filters.items()}


def _form_schema() -> dict[str, Any]:
    schema = SearchRequest.model_json_schema()
    properties = {k: v for k, v in schema["properties"].items() if k != "filters"}
    properties["image"] = {"type": "string", "format": "binary",
                           "description": "A photo to search by"}
    return {"type": "object", "properties": properties,
            "additionalProperties": {"type": "string"},
            "description": "The fields of SearchRequest; any other field is a filter"}


OPENAPI = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": SearchRequest.model_json_schema()},
    "multipart/form-data": {"schema": _form_schema()}}}}


async def read_search(request: Request) -> tuple[SearchRequest, bytes | None]:
    """The request and the photo's bytes, from a form or a JSON body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    photo: bytes | None = None
    if kind == "application/json":
        try:
            data = parse_json(await request.body())
        except JsonInputError as exc:
            raise ApiProblem(422, f"body: {exc}", code="invalid_json", line=exc.line) from None
        if not isinstance(data, dict):
            raise ApiProblem(422, "the body must be a JSON object", code="invalid")
    elif kind in ("multipart/form-data", "application/x-www-form-urlencoded", ""):
        limits = request.app.state.api_settings
        try:
            form = await request.form(max_files=limits.max_files, max_fields=limits.max_fields,
                                      max_part_size=limits.max_part_bytes)
        except MultiPartException as exc:  # becomes a 413 naming the setting, or a 400
            raise HTTPException(400, str(exc)) from exc
        data, filters = {}, {}
        for key in form:
            values = form.getlist(key)
            if key == "image":
                part = values[-1]
                if not isinstance(part, str) and part.filename:
                    photo = await part.read()  # empty: the decoder says so
            elif key in SearchRequest.model_fields:
                data[key] = values[-1]
            else:
                filters[key] = [v for v in values if isinstance(v, str)]
        data["filters"] = filters
    else:
        raise ApiProblem(415, "send the search as multipart/form-data or application/json",
                         code="unsupported_media_type")
    try:
        body = SearchRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors()]) from None
    if body.image is not None:
        try:
            photo = base64.b64decode(body.image, validate=True)
        except (binascii.Error, ValueError):
            raise ApiProblem(422, "image: not base64", code="invalid", field="image") from None
    return body, photo


SearchBody = Annotated[tuple[SearchRequest, bytes | None], Depends(read_search)]
