"""Refusals made before a request's body is read: the caller's role and the body's size.

FastAPI resolves a route's dependencies, its `RequireRole` included, only after
it has parsed the whole form: an anonymous client could make the server read
and spool a full-size multipart body before hearing 401. `EarlyRefusal`, an ASGI
middleware, finds the route a request is for among the app's own routes
(`route.matches`, as the router does) and checks its role against the
`X-API-Key` header before any body byte is received; the route's dependency
still runs, so nothing depends on this check alone. It also refuses a declared
Content-Length over the cap, and stops a chunked body at the cap.

A body-size error raised inside `receive` is an `HTTPException(413)`: FastAPI
turns any other exception raised while it parses a form into "400 There was an
error parsing the body". Every refusal here is answered by the app's own
handler for `HTTPException`, so it has the same shape as a route's errors.

Starlette's form parser has caps of its own (non-file part size, number of
files, number of fields; `ApiSettings` sets them) and answers 400 when one is
passed; `form_limit_handler` makes those a 413 naming the setting. Starlette
has no exception type per limit, so they are told from a malformed form (which
stays 400) by its messages.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from api.auth import API_KEY_HEADER, RequireRole, authorize
from api.errors import error_body
from catalogue.schemas import RANK, Role

T = TypeVar("T")
CLOSE = {"Connection": "close"}  # the rest of a refused body is not read: don't reuse


class BodyTooLarge(HTTPException):
    """Raised from `receive` past the cap; an HTTPException, so FastAPI passes it on."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body over the limit of {max_bytes} bytes "
                              "(VITRINE_MAX_BODY_BYTES)", headers=CLOSE)


def route_markers(routes: list[BaseRoute], kind: type[T]) -> list[tuple[BaseRoute, list[T]]]:
    """Each API route with its dependencies of class `kind` (a RequireRole, a RateLimited),
    in the router's order (FastAPI keeps included routers' routes in `original_router`)."""
    found: list[tuple[BaseRoute, list[T]]] = []
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            found += route_markers(original.routes, kind)
            continue
        dependant = getattr(route, "dependant", None)
        marks = [d.call for d in getattr(dependant, "dependencies", ())
                 if isinstance(d.call, kind)]
        if marks:
            found.append((route, marks))
    return found


def matched_marker(app: Any, scope: Scope, kind: type[T]) -> list[T]:
    """The `kind` dependencies of the route answering `scope`; none where no route fully
    matches. The routes' are collected at the first request (all are included by then)."""
    cache = app.state.route_markers = getattr(app.state, "route_markers", None) or {}
    if kind not in cache:
        cache[kind] = route_markers(app.routes, kind)
    for route, marks in cache[kind]:
        if route.matches(scope)[0] is Match.FULL:
            return marks
    return []


def header(scope: Scope, name: str) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers") or []
                 if k == name.lower().encode()), None)


def required_role(app: Any, scope: dict) -> Role | None:
    """The role the route answering `scope` needs; None where no route fully matches."""
    roles = [mark.role for mark in matched_marker(app, scope, RequireRole)]
    return max(roles, key=RANK.__getitem__) if roles else None


def role_refusal(app: Any, scope: dict) -> HTTPException | None:
    """The 401/403 the route's RequireRole would raise, decided from the headers alone."""
    role = required_role(app, scope)
    if role is None or role is Role.public:
        return None
    try:
        authorize(app.state.api_settings, header(scope, API_KEY_HEADER), role)
    except HTTPException as refusal:
        refusal.headers = {**(refusal.headers or {}), **CLOSE}
        return refusal
    return None


async def http_error_response(request: Request, exc: HTTPException):
    """`exc` answered by the app's own handler for it, as a route's would be."""
    handlers = request.app.exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code,
                            exc.headers)
    response = handler(request, exc)
    return await response if inspect.isawaitable(response) else response


class EarlyRefusal:
    """ASGI middleware: 401/403 from the headers, 413 from Content-Length, both before the
    body is read; 413 once a body without (or lying about) a length passes the cap."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = role_refusal(scope["app"], scope) if "app" in scope else None
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if refusal is None and declared is not None and declared.isdigit() \
                and int(declared) > self.max_bytes:
            refusal = BodyTooLarge(self.max_bytes)
        if refusal is not None:
            return await self._answer(scope, receive, send, refusal)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:  # read outside a route (its handler answers inside one)
            if started:
                raise
            await self._answer(scope, receive, send, exc)

    async def _answer(self, scope, receive, send, exc: HTTPException) -> None:
        if "app" not in scope:
            response = JSONResponse(error_body(exc.status_code, str(exc.detail)),
                                    exc.status_code, exc.headers)
        else:
            response = await http_error_response(Request(scope, receive), exc)
        await response(scope, receive, send)


# Starlette's messages for its form caps, and the setting that sets each.
FORM_LIMITS = {"Field exceeded maximum size": "VITRINE_MAX_PART_BYTES",
               "Part exceeded maximum size": "VITRINE_MAX_PART_BYTES",
               "Too many files": "VITRINE_MAX_FILES",
               "Too many fields": "VITRINE_MAX_FIELDS"}


async def form_limit_handler(request: Request, exc: Exception):
    """For status 400: a form over one of Starlette's caps becomes a 413 naming the setting;
    any other 400 goes to the app's handler unchanged."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__context__, MultiPartException):
        message = exc.__context__.message
        setting = next((s for prefix, s in FORM_LIMITS.items() if message.startswith(prefix)),
                       None)
        if setting:
            exc = HTTPException(413, f"{message.rstrip('.')} ({setting})", headers=CLOSE)
    return await http_error_response(request, exc)
