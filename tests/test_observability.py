"""Metrics on /metrics and request ids in logs, through the real app (local profile, tiny
model): what a search, an upload and a failure move, read back as Prometheus parses it."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.settings import ApiSettings
from catalogue.logs import (
    JsonFormatter,
    LogSettings,
    RequestIdFilter,
    configure_logging,
    install,
    new_request_id,
    request_id,
)
from catalogue.metrics import failure_reason
from catalogue.settings import CatalogueSettings
from testkit.api import ingest, make_app, upload, wait_job
from testkit.images import image_bytes
from vitrine.wiring import build_services, create_api


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_search_is_counted_by_route_and_timed_by_stage(client):
    ingest(client, "red-1", colour="red")
    before = scrape(client)
    response = client.get("/v1/search", params={"q": "a red dress"})
    assert response.status_code == 200
    after = scrape(client)
    route = {"route": "/v1/search", "method": "GET"}
    assert value(after, "vitrine_http_requests_total", **route, status="200") == \
        value(before, "vitrine_http_requests_total", **route, status="200") + 1
    assert value(after, "vitrine_http_request_seconds_count", **route) == \
        value(before, "vitrine_http_request_seconds_count", **route) + 1
    assert value(after, "vitrine_http_request_seconds_sum", **route) > \
        value(before, "vitrine_http_request_seconds_sum", **route)
    for stage in ("encode", "store", "other"):
        assert value(after, "vitrine_search_seconds_count", stage=stage) == \
            value(before, "vitrine_search_seconds_count", stage=stage) + 1
    # A new query: its vector was encoded and the engine searched.
    assert value(after, "vitrine_search_seconds_sum", stage="encode") > \
        value(before, "vitrine_search_seconds_sum", stage="encode")
    assert value(after, "vitrine_store_seconds_count", operation="search") > \
        value(before, "vitrine_store_seconds_count", operation="search")
    assert value(after, "vitrine_search_seconds_sum", stage="store") > \
        value(before, "vitrine_search_seconds_sum", stage="store")


def test_store_time_counts_the_words_candidates_and_the_page(client):
    """A page the words fill alone (hybrid, words first) asks the engine for the words'
    candidates and the page's products, and never pages the rest: that is store time."""
    ingest(client, "red-2", colour="red")
    ingest(client, "red-3", colour="red")
    before = scrape(client)
    response = client.get("/v1/search", params={"q": "red", "limit": 1})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
    after = scrape(client)
    assert value(after, "vitrine_store_seconds_count", operation="retrieve") > \
        value(before, "vitrine_store_seconds_count", operation="retrieve")
    assert value(after, "vitrine_search_seconds_sum", stage="store") > \
        value(before, "vitrine_search_seconds_sum", stage="store")


def test_paths_are_labelled_by_their_route_template(client):
    before = scrape(client)
    assert client.get("/v1/products/no-such-product").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)
    product = {"route": "/v1/products/{product_id}", "method": "GET", "status": "404"}
    assert value(after, "vitrine_http_requests_total", **product) == \
        value(before, "vitrine_http_requests_total", **product) + 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "vitrine_http_requests_total", **unmatched) == \
        value(before, "vitrine_http_requests_total", **unmatched) + 1
    assert not any("no-such-product" in str(labels) for _, labels in after)


def test_an_upload_moves_the_queue_and_the_ingest_counters(client):
    services = client.app.state.services
    before = scrape(client)
    with services.dispatch.paused():  # the ingest thread waits: the upload stays queued
        response = upload(client, "queued-1")
        assert response.status_code == 202
        waiting = scrape(client)
        assert value(waiting, "vitrine_queue_items", state="queued") == 1
        assert value(waiting, "vitrine_queue_oldest_age_seconds") > 0
    job = wait_job(client, response.json()["job_id"])
    assert job["state"] == "done"
    after = scrape(client)
    assert value(after, "vitrine_queue_items", state="queued") == 0
    assert value(after, "vitrine_queue_oldest_age_seconds") == 0
    assert value(after, "vitrine_ingest_items_total", outcome="added") == \
        value(before, "vitrine_ingest_items_total", outcome="added") + 1
    assert value(after, "vitrine_ingest_batch_size_count") > \
        value(before, "vitrine_ingest_batch_size_count")
    assert value(after, "vitrine_store_points") == 1
    assert value(after, "vitrine_model_info", model=services.encoder.model_id,
                 dim=str(services.encoder.dim)) == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_failures_are_counted_by_reason(client):
    before = scrape(client)
    metadata = [{"id": "ok-1"}, {"id": "broken-1"}, {"title": "no id"}]
    files = [("images", ("a.png", image_bytes(seed=1), "image/png")),
             ("images", ("b.png", b"not an image at all", "image/png")),
             ("images", ("c.png", image_bytes(seed=2), "image/png"))]
    response = client.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                           files=files)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert (job["succeeded"], job["failed"]) == (1, 2), job
    after = scrape(client)
    for reason in ("image", "invalid_metadata"):
        assert value(after, "vitrine_ingest_failures_total", reason=reason) == \
            value(before, "vitrine_ingest_failures_total", reason=reason) + 1, reason
    assert value(after, "vitrine_ingest_items_total", outcome="failed") == \
        value(before, "vitrine_ingest_items_total", outcome="failed") + 2


@pytest.mark.parametrize(("error", "reason"), [
    ("line 12: invalid metadata: id: Field required", "invalid_metadata"),
    ("the file is not an image in an allowed format (JPEG, PNG)", "image"),
    ("image 2: the image is empty", "image"),
    ("https://shop.example/a.jpg: HTTP 404 from shop.example", "fetch"),
    ("gave up after 3 attempts: the worker died while processing this upload each time",
     "worker_died"),
    ("rejected by moderation", "moderation"),
    ("duplicate id x in this batch (item 0 has it)", "duplicate"),
    ("something else", "other"),
])
def test_failure_reasons_are_a_short_closed_list(error, reason):
    assert failure_reason(error) == reason


def test_metrics_can_be_turned_off(tmp_path, tiny_encoder):
    services = build_services(CatalogueSettings(data_dir=tmp_path / "data"),
                              encoder=tiny_encoder)
    app = create_api(ApiSettings(metrics_enabled=False), services)
    with TestClient(app) as c:
        assert c.get("/metrics").status_code == 404
        assert "/metrics" not in app.openapi()["paths"]
        assert c.get("/healthz").headers["X-Request-ID"]  # ids stay


def test_metrics_need_no_key(tmp_path, tiny_encoder):
    from api.auth import hash_key

    services = build_services(CatalogueSettings(data_dir=tmp_path / "data"),
                              encoder=tiny_encoder)
    app = create_api(ApiSettings(api_keys={hash_key("k"): "manager"}), services)
    with TestClient(app) as c:
        assert c.get("/v1/search", params={"q": "x"}).status_code == 401
        assert c.get("/metrics").status_code == 200


def test_a_request_id_is_kept_when_sane_and_made_otherwise(client):
    kept = client.get("/healthz", headers={"X-Request-ID": "shop-frontend:42.a_b"})
    assert kept.headers["X-Request-ID"] == "shop-frontend:42.a_b"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(made.headers["X-Request-ID"]) == 32
    assert client.get("/healthz").headers["X-Request-ID"] != made.headers["X-Request-ID"]
    assert new_request_id("x" * 129) != "x" * 129
    assert client.get("/no/such/path").headers["X-Request-ID"]


@pytest.fixture
def json_log():
    """Root's records, as the JSON formatter writes them, one a line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install(handler, LogSettings(format="json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_request_id_of_a_failing_request(tmp_path, tiny_encoder,
                                                              json_log, monkeypatch):
    app = make_app(tmp_path / "data", tiny_encoder)
    with TestClient(app, raise_server_exceptions=False) as c:
        def broken(*args, **kwargs):
            raise RuntimeError("the engine fell over")

        monkeypatch.setattr(app.state.services.search, "search_json", broken)
        response = c.get("/v1/search", params={"q": "red"}, headers={"X-Request-ID": "r-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "r-500"
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    failed = [line for line in lines if line["message"].startswith("unhandled error")]
    assert len(failed) == 1, lines
    assert failed[0]["request_id"] == "r-500"
    assert failed[0]["level"] == "ERROR" and failed[0]["logger"] == "vitrine"
    assert "the engine fell over" in failed[0]["exc_info"]
    ready = [line for line in lines if line["message"].startswith("Vitrine ready")]
    assert ready and ready[0]["request_id"] is None  # outside any request


def test_json_formatter_keeps_extra_fields_and_text_names_the_request():
    record = logging.LogRecord("vitrine.test", logging.WARNING, __file__, 1, "took %d", (3,),
                               None)
    record.job_id = "j1"
    token = request_id.set("abc")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "took 3" and line["job_id"] == "j1"
    assert line["request_id"] == "abc" and line["time"].endswith("+00:00")
    text = logging.Formatter("%(message)s%(request_tag)s").format(record)
    assert text == "took 3 [request abc]"


def test_configure_logging_formats_a_servers_own_handlers():
    server = logging.getLogger("vitrine.test.server")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    server.addHandler(handler)
    server.propagate = False
    try:
        configure_logging(LogSettings(format="json"), loggers=("vitrine.test.server",))
        token = request_id.set("srv-1")
        try:
            server.warning("listening")
        finally:
            request_id.reset(token)
    finally:
        server.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert (line["message"], line["request_id"]) == ("listening", "srv-1")


def test_the_dashboard_and_alerts_name_only_metrics_that_exist(client):
    """deploy/monitoring/ in step with what the API serves (and the workers' own)."""
    import re
    from pathlib import Path

    import yaml

    response = client.get("/metrics")
    known = {"up", "vitrine_worker_resident_memory_bytes"}  # Prometheus's; workers only
    for family in text_string_to_metric_families(response.text):
        known |= {family.name, *(family.name + s for s in ("_total", "_bucket", "_sum",
                                                            "_count"))}
    monitoring = Path(__file__).resolve().parents[1] / "deploy" / "monitoring"
    rules = yaml.safe_load((monitoring / "alerts.yml").read_text())["groups"][0]["rules"]
    dashboard = json.loads((monitoring / "grafana-dashboard.json").read_text())
    exprs = [r["expr"] for r in rules] + [t["expr"] for p in dashboard["panels"]
                                          for t in p["targets"]]
    assert len(rules) >= 5 and len(exprs) > 20
    used = {m for e in exprs for m in re.findall(r"\b((?:vitrine|process)_[a-z_]+|up)\b", e)}
    assert used - known == set()
    assert {"VitrineIngestQueueStuck", "VitrineApiErrors", "VitrineSearchSlow",
            "VitrineWorkerDown"} <= {r["alert"] for r in rules}


def test_moderation_flags_are_counted_by_category(tmp_path, tiny_encoder, monkeypatch):
    # Every category's threshold at 0: moderation flags each upload (highest score wins).
    policy = ("weapon", "drugs", "nudity", "not_a_product", "blank", "text_only")
    monkeypatch.setenv("VITRINE_MODERATION_ENABLED", "true")
    monkeypatch.setenv("VITRINE_MODERATION_THRESHOLDS", json.dumps(dict.fromkeys(policy, 0.0)))
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as c:
        before = scrape(c)
        for i in range(3):
            ingest(c, f"flagged-{i}", image=image_bytes(seed=i + 20))
        after = scrape(c)
        queue = c.get("/v1/moderation/queue").json()
    flagged = [item["category"] for item in queue["items"]]
    assert len(flagged) == 3
    for category in set(flagged):
        assert value(after, "vitrine_moderation_flags_total", category=category) - \
            value(before, "vitrine_moderation_flags_total", category=category) == \
            flagged.count(category)
