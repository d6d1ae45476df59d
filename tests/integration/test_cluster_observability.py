"""A real worker's metrics port and logs: the request id an API replica answers with shows
up in the worker's JSON log line for the task that request published, and the worker's
prefork child's ingest counts reach the parent's metrics port; with tracing on, the task's
span continues the trace of the request that published it."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.cluster import free_port, wait_for
from testkit.images import image_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def worker_metrics(port: int) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def json_lines(log: str) -> list[dict]:
    lines = []
    for line in log.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:  # Celery's start-up banner is text
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines


def test_a_request_id_reaches_the_workers_log_and_its_counts_the_metrics_port(cluster,
                                                                              workers):
    port = free_port()
    worker = workers("w-observe", VITRINE_WORKER_METRICS_PORT=str(port),
                     VITRINE_LOG_FORMAT="json")
    cluster.wait_worker_ready(worker)
    wait_for(lambda: worker_metrics(port) is not None, 20, "the worker's metrics port")
    before = worker_metrics(port)
    assert ("vitrine_ingest_items_total", frozenset({("outcome", "added")})) not in before

    response = cluster.api.client(0).post(
        "/v1/products", headers={"X-Request-ID": "it-observe-1"},
        data={"metadata": json.dumps({"id": "observe-1", "title": "observed"})},
        files={"image": ("p.png", image_bytes(seed=7), "image/png")})
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"] == "it-observe-1"
    job = cluster.api.wait_jobs([response.json()["job_id"]])[response.json()["job_id"]]
    assert job["state"] == "done", job

    # The parent serves what its pool child counted (multiprocess mode).
    def counted() -> bool:
        samples = worker_metrics(port)
        return samples.get(("vitrine_ingest_items_total",
                            frozenset({("outcome", "added")})), 0) >= 1
    wait_for(counted, 20, "the worker's ingest counter")
    after = worker_metrics(port)
    assert after[("vitrine_ingest_batch_size_count", frozenset())] >= 1
    assert after[("vitrine_ingest_batch_seconds_count", frozenset())] >= 1
    assert after[("process_resident_memory_bytes", frozenset())] > 0  # the parent's
    children = [v for (name, _), v in after.items()
                if name == "vitrine_worker_resident_memory_bytes"]
    assert children and min(children) > 10_000_000  # a child holding torch and the model

    # Every line is JSON; the task's lines carry the API request's id.
    lines = json_lines(worker.log())
    assert any(line["message"].endswith("ready.") for line in lines)
    tagged = [line for line in lines if line.get("request_id") == "it-observe-1"]
    assert any("ingest task" in line["message"] and "took 1 uploads" in line["message"]
               for line in tagged), [line["message"] for line in lines][-20:]
    assert any("succeeded" in line["message"] for line in tagged)  # Celery's own line too
    # Lines outside the task carry none.
    assert all(line.get("request_id") is None for line in lines
               if line["message"].endswith("ready."))


def test_the_api_replicas_log_lines_name_the_request(cluster):
    api = cluster.api.client(1)
    response = api.get("/v1/products/no-such-product", headers={"X-Request-ID": "it-api-404"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "it-api-404"
    replica = next(p for p in cluster.procs if p.name == "api1")
    wait_for(lambda: "[request it-api-404]" in replica.log(), 10, "the access log line")
    line = next(line for line in replica.log().splitlines() if "[request it-api-404]" in line)
    assert "GET /v1/products/no-such-product" in line and "404" in line
    metrics = api.get("/metrics")
    assert metrics.status_code == 200  # no key needed, though the cluster requires keys
    assert 'route="/v1/products/{product_id}"' in metrics.text


def test_a_workers_task_span_joins_the_trace_of_the_request_that_published_it(
        cluster, workers, monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    from workers.celery_app import make_celery
    from workers.dispatch import CeleryDispatch
    from workers.settings import WorkerSettings

    worker = workers("w-trace", VITRINE_TRACING_ENABLED="true",
                     VITRINE_TRACING_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100")
    cluster.wait_worker_ready(worker)
    # The API's side, in this process: a traced request publishing its task.
    monkeypatch.setenv("VITRINE_BROKER_URL", cluster.env["VITRINE_BROKER_URL"])
    settings = WorkerSettings()
    celery = make_celery(settings)
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("POST /v1/products") \
                as request:
            CeleryDispatch(jobs=None, settings=settings, app=celery).publish()
    finally:
        celery.close()
    trace_id = format(request.get_span_context().trace_id, "032x")
    span_id = format(request.get_span_context().span_id, "016x")

    # The worker's console exporter writes each span as JSON: the task's names the
    # request's span as its parent, in the request's trace.
    wait_for(lambda: f'"parent_id": "0x{span_id}"' in worker.log(), 30,
             "the task's span in the worker's output")
    log = worker.log()
    start = log.rindex("{", 0, log.index(f'"parent_id": "0x{span_id}"'))
    while not log[start:].startswith('{\n    "name"'):
        start = log.rindex("{", 0, start)
    span, _ = json.JSONDecoder().raw_decode(log[start:])
    assert span["name"] == "celery.task vitrine.ingest"
    assert span["kind"] == "SpanKind.CONSUMER"
    assert span["context"]["trace_id"] == f"0x{trace_id}"
    assert span["attributes"]["celery.state"] == "SUCCESS"
    assert span["resource"]["attributes"]["service.name"] == "vitrine"
