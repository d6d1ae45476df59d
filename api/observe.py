"""Every request gets an id and is counted: the outermost middleware.

The id is the caller's `X-Request-ID` when sane (catalogue.logs), else a new one;
it is answered in the same header, set on every log line written while the
request is served (a context variable, which Starlette's thread pool carries into
`def` routes) and handed on with the Celery task the request publishes
(workers.dispatch). Requests are counted by route template, not path, so a
product id never becomes a label.

With tracing on (catalogue.tracing), FastAPI's own request span, which encloses
every middleware, gets the request id as an attribute.
"""

from __future__ import annotations

import time

from fastapi.telemetry import TelemetryConfig
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import UNMATCHED, record_request
from catalogue import tracing
from catalogue.logs import REQUEST_ID_HEADER, new_request_id, request_id
from catalogue.tracing import REQUEST_ID_ATTRIBUTE, TracingSettings


def route_template(scope: Scope) -> str:
    """The matched route's path as declared ("/v1/products/{product_id}")."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED


def telemetry_config(settings: TracingSettings | None = None) -> TelemetryConfig:
    """FastAPI's `telemetry` argument: its request spans when tracing is on; never its
    OpenTelemetry metrics or logs (Prometheus and the log lines serve those), nor its
    own exporter set-up (catalogue.tracing's)."""
    on = (settings or TracingSettings()).enabled
    return {"tracing": on, "operation_spans": on, "metrics": False, "logs": False,
            "auto_configure": False}


class Observe:
    """A pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed bodies)."""

    def __init__(self, app: ASGIApp, metrics: bool = True):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        tracing.annotate(REQUEST_ID_ATTRIBUTE, rid)  # FastAPI's request span, when traced
        token = request_id.set(rid)
        status = 500  # unless a response starts: the app failed
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
            # On an exception the id stays set: the 500 handler, outside, logs with it.
            request_id.reset(token)
        finally:
            if self.metrics:
                record_request(route_template(scope), scope["method"], status,
                               time.perf_counter() - start)
