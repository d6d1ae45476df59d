"""OpenTelemetry tracing (catalogue.tracing): off by default and then free; on, a search
through the real app is a request span with the encoder's and the store's spans under it,
a Celery task continues the trace of the request that published it, and the OTLP
exporter sends to the configured endpoint."""

from __future__ import annotations

import subprocess
import sys
import threading
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from catalogue import tracing
from catalogue.metrics import store_call
from testkit.api import ingest, make_app
from workers.dispatch import CeleryDispatch
from workers.observe import REQUEST_ID_KEY, Observer
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"  # a W3C traceparent from an upstream caller


@lru_cache(maxsize=1)
def memory_exporter() -> InMemorySpanExporter:
    """The process's tracer provider (set once: OpenTelemetry refuses a second one), its
    spans kept in memory. Spans are made only where tracing is switched on."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = memory_exporter()
    exporter.clear()
    return exporter


def traced_app(tmp_path, encoder, monkeypatch, on: bool):
    monkeypatch.setenv("VITRINE_TRACING_ENABLED", "true" if on else "false")
    return make_app(tmp_path / "data", encoder)


def descendants(root, spans):
    """The spans under `root`, at any depth (FastAPI's own operation spans sit between)."""
    by_id = {s.context.span_id: s for s in spans}

    def under(span) -> bool:
        while span.parent is not None:
            if span.parent.span_id == root.context.span_id:
                return True
            span = by_id.get(span.parent.span_id)
            if span is None:
                return False
        return False

    return [s for s in spans if under(s)]


def test_a_traced_search_is_a_request_span_with_encoder_and_store_children(
        tmp_path, tiny_encoder, monkeypatch, spans):
    with TestClient(traced_app(tmp_path, tiny_encoder, monkeypatch, on=True)) as client:
        ingest(client, "red-1", colour="red")
        spans.clear()
        response = client.get("/v1/search", params={"q": "a traced red dress"},
                              headers={"X-Request-ID": "trace-search-1"})
        assert response.status_code == 200, response.text
    finished = spans.get_finished_spans()
    [request] = [s for s in finished if s.kind == trace.SpanKind.SERVER]
    assert request.name == "GET /v1/search"
    assert request.parent is None  # no caller's context: a new trace
    assert request.attributes["http.route"] == "/v1/search"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["vitrine.request_id"] == "trace-search-1"
    children = {s.name: s for s in descendants(request, finished)}
    assert "encoder.encode_texts" in children, [s.name for s in finished]
    assert "store.search" in children, [s.name for s in finished]
    assert children["encoder.encode_texts"].attributes["vitrine.encoder.inputs"] == 1
    assert {s.context.trace_id for s in finished} == {request.context.trace_id}


def test_a_request_continues_the_callers_trace_and_names_its_route_template(
        tmp_path, tiny_encoder, monkeypatch, spans):
    with TestClient(traced_app(tmp_path, tiny_encoder, monkeypatch, on=True)) as client:
        spans.clear()
        response = client.get("/v1/products/no-such-product", headers={"traceparent": CALLER})
        assert response.status_code == 404
    [request] = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert format(request.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert request.name == "GET /v1/products/{product_id}"  # never the product's id
    assert request.attributes["http.response.status_code"] == 404
    assert request.attributes["vitrine.request_id"] == response.headers["X-Request-ID"]


def test_tracing_off_makes_no_span_and_never_asks_for_a_tracer(
        tmp_path, tiny_encoder, monkeypatch, spans):
    def no_tracer(*_, **__):
        raise AssertionError("a tracer was used with tracing off")

    monkeypatch.setattr(tracing, "tracer", no_tracer)
    monkeypatch.setattr("embedding.encoder.TRACER", SimpleNamespace(
        start_as_current_span=no_tracer))
    with TestClient(traced_app(tmp_path, tiny_encoder, monkeypatch, on=False)) as client:
        ingest(client, "red-1", colour="red")
        response = client.get("/v1/search", params={"q": "an untraced red dress"},
                              headers={"traceparent": CALLER})
        assert response.status_code == 200, response.text
    assert spans.get_finished_spans() == ()


class FakeCelery:
    def __init__(self):
        self.sent: list[dict] = []

    def send_task(self, name, **options):
        self.sent.append({"name": name, **options})


def test_a_task_continues_the_trace_of_the_request_that_published_it(spans, monkeypatch):
    from catalogue.logs import request_id

    broker = FakeCelery()
    dispatch = CeleryDispatch(jobs=None, settings=WorkerSettings(), app=broker)
    token = request_id.set("trace-task-1")
    try:
        with tracing.tracer().start_as_current_span("POST /v1/products") as request:
            dispatch.publish()
    finally:
        request_id.reset(token)
    headers = broker.sent[0]["headers"]
    assert headers[REQUEST_ID_KEY] == "trace-task-1"
    assert TRACE_ID not in headers["traceparent"]
    assert format(request.get_span_context().trace_id, "032x") in headers["traceparent"]

    # The worker's side: Celery makes the message's custom headers the request's attributes.
    task = SimpleNamespace(name="vitrine.ingest", request=SimpleNamespace(
        get=headers.get, headers=None))
    observer = Observer(WorkerSettings(), logs=None, tracing=True)  # type: ignore[arg-type]
    observer.task_started(task_id="t-1", task=task)
    with store_call("search"):
        pass
    observer.task_ended(task_id="t-1", state="SUCCESS")
    assert trace.get_current_span() is trace.INVALID_SPAN  # the task's context is gone

    finished = {s.name: s for s in spans.get_finished_spans()}
    task_span = finished["celery.task vitrine.ingest"]
    assert task_span.kind == trace.SpanKind.CONSUMER
    assert task_span.context.trace_id == request.get_span_context().trace_id
    assert task_span.parent.span_id == request.get_span_context().span_id
    assert task_span.attributes["vitrine.request_id"] == "trace-task-1"
    assert task_span.attributes["celery.state"] == "SUCCESS"
    assert finished["store.search"].parent.span_id == task_span.context.span_id


def test_an_untraced_publish_sends_only_the_request_id(spans):
    broker = FakeCelery()
    CeleryDispatch(jobs=None, settings=WorkerSettings(), app=broker).publish()
    assert broker.sent[0]["headers"] is None


def test_a_command_is_one_trace_when_tracing_is_on(spans, monkeypatch, capsys):
    from vitrine import cli

    assert cli.main(["hash-key", "k"]) == 0  # off: no span
    assert spans.get_finished_spans() == ()
    monkeypatch.setenv("VITRINE_TRACING_ENABLED", "true")  # the SDK is this test's
    assert cli.main(["hash-key", "k"]) == 0
    assert [s.name for s in spans.get_finished_spans()] == ["vitrine hash-key"]


class Collector(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


SCRIPT = """
from opentelemetry import trace
from catalogue.tracing import TracingSettings, configure_tracing
assert configure_tracing(TracingSettings(enabled=False)) is False
assert not hasattr(trace.get_tracer_provider(), "resource")  # still the API's no-op proxy
assert configure_tracing() is True  # VITRINE_TRACING_ENABLED from the environment
with trace.get_tracer("t").start_as_current_span("exported-span-name"):
    pass
trace.get_tracer_provider().shutdown()  # flushes the batch
"""


def test_the_otlp_exporter_sends_to_the_configured_endpoint_and_service_name():
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Collector.bodies = []
    try:
        env = {"PATH": "/usr/bin:/bin", "VITRINE_TRACING_ENABLED": "true",
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
               "OTEL_SERVICE_NAME": "shop-api"}
        done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
    [(path, body)] = Collector.bodies
    assert path == "/v1/traces"
    assert b"exported-span-name" in body and b"shop-api" in body
