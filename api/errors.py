"""One error shape for every 4xx and 5xx the API answers, its handlers, and its OpenAPI.

Every error body is an `ApiError`: a machine-readable `code`, a sentence for people
(`message`), and where known the form field or JSON member (`field`) and the line of
an uploaded file (`line`) at fault. Request validation keeps pydantic's details in
`errors`, without the offending input (it may be a NaN, which JSON can't carry).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalogue.attributes import InvalidFilter
from catalogue.cursor import InvalidCursor
from catalogue.dispatch import DispatchUnavailable
from catalogue.images import DecodeBusy, ImageError
from catalogue.ingest import StoreUnavailable, UploadRejected
from catalogue.logs import REQUEST_ID_HEADER, request_id
from catalogue.products import UnknownProduct

log = logging.getLogger("vitrine")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
         415: "unsupported_media_type", 422: "invalid", 429: "too_many_requests",
         500: "internal",
         503: "unavailable"}


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query, path, header, then names")
    msg: str
    type: str


class ApiError(BaseModel):
    """The body of every error answer."""

    code: str = Field(description="Machine-readable, e.g. not_found, invalid, unauthorized")
    message: str = Field(description="What went wrong, for people")
    field: str | None = Field(None, description="The field (or fields) at fault")
    line: int | None = Field(None, description="The line of an uploaded file at fault")
    errors: list[FieldError] | None = Field(None, description="Each validation failure")


class ApiProblem(HTTPException):
    """An HTTPException that also names its code, field or line."""

    def __init__(self, status_code: int, message: str, *, code: str | None = None,
                 field: str | None = None, line: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status_code, message, headers=headers)
        self.code, self.field, self.line = code, field, line


def error_body(status: int, message: str, code: str | None = None, **extra: Any) -> dict:
    error = ApiError(code=code or CODES.get(status, f"http_{status}"), message=message,
                     **extra)
    return error.model_dump(mode="json", exclude_none=True)


def error_response(status: int, message: str, code: str | None = None,
                   headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, **extra), status_code=status,
                        headers=headers)


def _field_name(loc: tuple) -> str:
    names = [str(p) for p in loc[1:] if not isinstance(p, int)] if len(loc) > 1 else []
    return ".".join(names) or (str(loc[0]) if loc else "request")


def validation_message(errors: list[dict]) -> tuple[str, str]:
    """One sentence naming each field at fault, and the fields, comma-separated."""
    fields: list[str] = []
    parts = []
    for error in errors:
        name = _field_name(tuple(error.get("loc", ())))
        if name not in fields:
            fields.append(name)
        parts.append(f"{name}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request", ", ".join(fields)


def install_handlers(app: FastAPI) -> None:
    """The handlers that give every error answer the ApiError shape."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        extra: dict[str, Any] = {}
        if isinstance(exc, ApiProblem):
            extra = {"field": exc.field, "line": exc.line}
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "code", None),
                              headers=exc.headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        raw = list(exc.errors())
        message, fields = validation_message(raw)
        details = [FieldError(loc=[p if isinstance(p, int) else str(p)
                                   for p in e.get("loc", ())],
                              msg=str(e.get("msg", "")), type=str(e.get("type", "")))
                   for e in raw]
        return error_response(422, message, "invalid", field=fields or None, errors=details)

    @app.exception_handler(InvalidCursor)
    async def invalid_cursor(request: Request, exc: InvalidCursor):
        return error_response(422, f"cursor: {exc}", "invalid", field="cursor")

    @app.exception_handler(InvalidFilter)
    async def invalid_filter(request: Request, exc: InvalidFilter):
        return error_response(422, str(exc), "invalid_filter")

    @app.exception_handler(UnknownProduct)
    async def unknown_product(request: Request, exc: UnknownProduct):
        return error_response(404, str(exc), "unknown_product")

    @app.exception_handler(ImageError)
    async def bad_image(request: Request, exc: ImageError):
        return error_response(422, f"bad image: {exc}", "bad_image")

    @app.exception_handler(UploadRejected)
    async def upload_rejected(request: Request, exc: UploadRejected):
        return error_response(422, str(exc), "upload_rejected")

    @app.exception_handler(DispatchUnavailable)
    async def dispatch_down(request: Request, exc: DispatchUnavailable):
        return error_response(503, f"{exc}; nothing was accepted, try again",
                              "dispatch_unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(DecodeBusy)
    async def decode_busy(request: Request, exc: DecodeBusy):
        return error_response(503, f"{exc}; try again", "decode_busy",
                              headers={"Retry-After": "2"})

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable):
        return error_response(503, str(exc), "store_unavailable",
                              headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        rid = request_id.get()  # api.observe's; this answer leaves without passing it again
        return error_response(500, "internal error; it has been logged", "internal",
                              headers={REQUEST_ID_HEADER: rid} if rid else None)


# ------------------------------------------------------------------ OpenAPI

DESCRIPTIONS = {
    400: "The body could not be parsed (malformed multipart or JSON)",
    401: "No API key, or a wrong one, in the X-API-Key header",
    403: "The key's role may not use this route",
    404: "Unknown (or hidden) product or job",
    409: "Conflicts with what runs now (a reindex already running)",
    413: "The request body is over VITRINE_MAX_BODY_BYTES",
    415: "The body is neither multipart/form-data nor application/json",
    422: "A field is missing or invalid; `field` names it",
    429: "Over a rate limit (VITRINE_RATE_LIMIT_*, named in `message`) or the key's running "
         "imports; see Retry-After",
    503: "Starting, or a part (store, dispatch) is unavailable; see Retry-After",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route decorator: each status answered with an ApiError."""
    return {status: {"model": ApiError, "description": DESCRIPTIONS[status]}
            for status in statuses}

