"""A storefront on another origin may call the API from the browser, and only one the
allowlist (VITRINE_CORS_ORIGINS) names; without one, no CORS header at all."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.auth import hash_key
from api.settings import ApiSettings
from catalogue.settings import CatalogueSettings
from vitrine.wiring import build_services, create_api

SHOP = "https://shop.example"
OTHER = "https://evil.example"
KEY = "storefront-key"


def app_with(tmp_path, tiny_encoder, **settings):
    services = build_services(CatalogueSettings(data_dir=tmp_path / "data"), encoder=tiny_encoder)
    return create_api(ApiSettings(**settings), services=services)


@pytest.fixture
def shop(tmp_path, tiny_encoder):
    with TestClient(app_with(tmp_path, tiny_encoder, cors_origins=[SHOP])) as client:
        yield client


def preflight(client, origin, method="POST", headers="x-api-key, content-type"):
    return client.options("/v1/search", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})


def test_a_preflight_from_an_allowed_origin_gets_the_storefront_s_methods_and_headers(shop):
    answer = preflight(shop, SHOP)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == SHOP
    methods = {m.strip() for m in answer.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST"} <= methods and "DELETE" not in methods
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "x-api-key" in allowed and "x-request-id" in allowed and "content-type" in allowed
    assert answer.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in answer.headers


def test_a_preflight_from_another_origin_or_for_a_manager_s_method_is_refused(shop):
    for origin in (OTHER, "https://shop.example.evil.example", "http://shop.example"):
        answer = preflight(shop, origin)
        assert answer.status_code == 400
        assert "access-control-allow-origin" not in answer.headers
    assert preflight(shop, SHOP, method="DELETE").status_code == 400
    assert preflight(shop, SHOP, headers="x-api-key, x-evil").status_code == 400


def test_a_simple_get_is_readable_only_by_an_allowed_origin(shop):
    allowed = shop.get("/v1/facets", headers={"Origin": SHOP})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    exposed = allowed.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "etag" in exposed and "retry-after" in exposed
    assert "origin" in allowed.headers["vary"].lower()  # caches keep one answer per origin
    other = shop.get("/v1/facets", headers={"Origin": OTHER})
    assert other.status_code == 200  # CORS is the browser's rule: the answer is just unmarked
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in shop.get("/v1/facets").headers


def test_without_an_allowlist_no_cors_header_is_sent(tmp_path, tiny_encoder):
    with TestClient(app_with(tmp_path, tiny_encoder)) as client:
        answer = preflight(client, SHOP)
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
        got = client.get("/v1/facets", headers={"Origin": SHOP})
        assert got.status_code == 200
        assert not [h for h in got.headers if h.lower().startswith("access-control-")]


def test_with_keys_a_preflight_needs_none_and_a_refusal_is_readable(tmp_path, tiny_encoder):
    app = app_with(tmp_path, tiny_encoder, cors_origins=[SHOP],
                   api_keys={hash_key(KEY): "shopper"})
    with TestClient(app) as client:
        answer = preflight(client, SHOP)  # a browser never sends the key with a preflight
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == SHOP
        refused = client.get("/v1/facets", headers={"Origin": SHOP})
        assert refused.status_code == 401  # the storefront's script can read why
        assert refused.headers["access-control-allow-origin"] == SHOP
        assert refused.headers["x-request-id"]
        served = client.get("/v1/facets", headers={"Origin": SHOP, "X-API-Key": KEY})
        assert served.status_code == 200
        assert served.headers["access-control-allow-origin"] == SHOP


def test_origins_come_as_a_json_list_or_a_comma_list_and_must_be_origins(monkeypatch):
    monkeypatch.setenv("VITRINE_CORS_ORIGINS", "https://Shop.example, http://localhost:3000")
    assert ApiSettings().cors_origins == [SHOP, "http://localhost:3000"]
    monkeypatch.setenv("VITRINE_CORS_ORIGINS", '["https://shop.example:8443"]')
    assert ApiSettings().cors_origins == ["https://shop.example:8443"]
    monkeypatch.delenv("VITRINE_CORS_ORIGINS")
    assert ApiSettings().cors_origins == []
    for wrong in ("https://shop.example/", "*", "shop.example", "https://shop.example/path",
                  "ftp://shop.example"):
        with pytest.raises(ValidationError, match="not an origin"):
            ApiSettings(cors_origins=[wrong])
