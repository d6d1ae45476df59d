"""Optional OpenTelemetry tracing, off by default (VITRINE_TRACING_ENABLED).

One span per API request, made by FastAPI itself (its native OpenTelemetry
support, from 0.165: route template, status, the caller's `traceparent`, with
spans for dependencies, endpoint and serialisation under it; api.observe's
`telemetry_config`),
to which api.observe adds the request id. One span per Celery task, in the trace
of the request that published it: the context travels in the task's headers
beside the request id (workers.dispatch injects, workers.observe extracts; hand-
written in those hooks rather than by opentelemetry-instrumentation-celery, since
they already hold the task's request id and a second set of signal handlers would
repeat them). Under those, a span for each call into the store's engine
(catalogue.metrics.store_call) and the encoder (embedding.encoder).

Off, or without the SDK (the `tracing` extra), nothing is set up and FastAPI's
tracing is switched off; the task span is not made, and the child spans are made
only under a recording span, so their cost is one context variable read. On, the
SDK exports over OTLP/HTTP, configured by its standard variables
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME...).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry import context, propagate, trace
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

TRACER = "vitrine"
REQUEST_ID_ATTRIBUTE = "vitrine.request_id"
SERVICE = "vitrine"  # the service name unless OTEL_SERVICE_NAME sets one


class TracingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_TRACING_", extra="ignore")

    enabled: bool = False
    """Spans for requests, tasks, store and encoder calls (needs the `tracing` extra)."""
    exporter: Literal["otlp", "console"] = "otlp"
    """`otlp`: OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT; `console`: to stdout."""


def configure_tracing(settings: TracingSettings | None = None) -> bool:
    """Install the SDK's tracer provider with a batching exporter, when enabled (once a
    process: a provider already installed is kept). Whether tracing is on."""
    settings = settings or TracingSettings()
    if not settings.enabled:
        return False
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("VITRINE_TRACING_ENABLED, but the OpenTelemetry SDK is not installed "
                    "(pip install 'vitrine[tracing]'): no traces")
        return False
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    exporter: Any
    if settings.exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("the OTLP exporter is not installed: spans go to the console")
            exporter = ConsoleSpanExporter()
        else:
            exporter = OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_* configure it
    # From OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; "unknown_service" when unset.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: SERVICE}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def tracing() -> bool:
    """Whether a span made now would be recorded: inside a recording span (a traced
    request or task)."""
    return trace.get_current_span().is_recording()


def annotate(key: str, value: Any) -> None:
    """Set an attribute on the current span, if it is recording."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(key, value)


def current() -> context.Context:
    """The current trace context, to carry to another thread."""
    return context.get_current()


@contextmanager
def within(ctx: context.Context) -> Iterator[None]:
    """Run a block in a context carried from another thread (`current`)."""
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def child_span(name: str, **attributes: Any) -> Iterator[None]:
    """A span under the current one, or nothing outside a traced request or task."""
    if not tracing():
        yield
        return
    with tracer().start_as_current_span(name, attributes=attributes):
        yield


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Add the current trace context to a message's headers (`traceparent`...)."""
    propagate.inject(carrier)


def extract(carrier: Any) -> context.Context:
    """The trace context a message's headers carry (an empty one if none)."""
    return propagate.extract(carrier)
