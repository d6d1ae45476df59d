"""Rate limits (api.ratelimit) and anonymous storefront search, through the HTTP API: the
in-process counters of the local profile and the Redis ones the cluster's replicas share
(the Redis on 127.0.0.1:6379, under a key prefix of each test's own)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from fastapi.testclient import TestClient

from api.auth import hash_key
from api.limits import route_markers
from api.ratelimit import Group, RateLimited, build_limits
from api.settings import ApiSettings
from catalogue.settings import CatalogueSettings
from testkit.images import image_bytes
from vitrine.wiring import build_services, create_api

KEYS = {"shop-a": "shopper", "shop-b": "shopper", "boss": "manager"}
KEYED = {hash_key(k): role for k, role in KEYS.items()}
REDIS_URL = "redis://127.0.0.1:6379/0"
# Windows of an hour: a test never straddles one's edge (where a sliding window's count
# of the last window starts to fade).
NO_LIMITS = {f"rate_limit_{g}_per_{k}": "" for g in Group for k in ("key", "address")}


@contextmanager
def serving(tmp_path, tiny_encoder, name="a", **settings) -> Iterator[TestClient]:
    services = build_services(CatalogueSettings(data_dir=tmp_path / name), encoder=tiny_encoder)
    app = create_api(ApiSettings(**{"rate_limit_enabled": True, **NO_LIMITS, **settings}),
                     services)
    with TestClient(app) as client:
        yield client


def key(name: str) -> dict[str, str]:
    return {"X-API-Key": name}


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"vitrine-test-{uuid.uuid4().hex}"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    for stale in r.scan_iter(f"{prefix}*"):
        r.delete(stale)


def refused_count(client: TestClient, group: str, kind: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^vitrine_rate_limited_requests_total\{{group="{group}",'
                      rf'limit="{kind}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_over_the_limit_is_a_429_with_retry_after_naming_the_limit(tmp_path, tiny_encoder):
    with serving(tmp_path, tiny_encoder, rate_limit_search_per_address="3/hour") as client:
        assert client.get("/v1/facets").status_code == 200
        assert client.get("/v1/search", params={"q": "red dress"}).status_code == 200
        assert client.post("/v1/search", json={"q": "red dress"}).status_code == 200
        before = refused_count(client, "search", "address")
        refused = client.get("/v1/suggest", params={"q": "dre"})
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        body = refused.json()
        assert body["code"] == "rate_limited"
        assert "3 per 1 hour" in body["message"]
        assert "VITRINE_RATE_LIMIT_SEARCH_PER_ADDRESS" in body["message"]
        assert refused.headers["X-Request-ID"]  # answered through the app's own stack
        assert refused_count(client, "search", "address") == before + 1
        # Other groups and unlimited routes keep answering.
        assert client.get("/v1/schema").status_code == 200
        assert client.get("/v1/products/ghost").status_code == 404


def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(tmp_path, tiny_encoder):
    with serving(tmp_path, tiny_encoder, api_keys=KEYED,
                 rate_limit_uploads_per_key="1/hour") as client:
        def upload():
            return client.post("/v1/products", headers=key("boss"),
                               data={"metadata": json.dumps({"id": "p1", "title": "a"})},
                               files={"image": ("p.png", image_bytes(), "image/png")})

        assert upload().status_code == 202
        refused = upload()
        assert refused.status_code == 429, refused.text
        assert "VITRINE_RATE_LIMIT_UPLOADS_PER_KEY" in refused.json()["message"]
        assert refused.headers["Connection"] == "close"
        assert int(refused.headers["Retry-After"]) >= 1


def test_each_key_and_each_address_has_its_own_budget(tmp_path, tiny_encoder):
    with serving(tmp_path, tiny_encoder, api_keys=KEYED, anonymous_search=True,
                 rate_limit_search_per_key="2/hour",
                 rate_limit_search_per_address="1/hour") as client:
        for _ in range(2):
            assert client.get("/v1/facets", headers=key("shop-a")).status_code == 200
        over = client.get("/v1/facets", headers=key("shop-a"))
        assert over.status_code == 429
        assert "VITRINE_RATE_LIMIT_SEARCH_PER_KEY" in over.json()["message"]
        # Another key, from the same address: a budget of its own.
        for _ in range(2):
            assert client.get("/v1/facets", headers=key("shop-b")).status_code == 200
        assert client.get("/v1/facets", headers=key("shop-b")).status_code == 429
        # Without a key (anonymous shoppers), per address: the keys' use spent none of it.
        assert client.get("/v1/facets").status_code == 200
        anonymous = client.get("/v1/facets")
        assert anonymous.status_code == 429
        assert "VITRINE_RATE_LIMIT_SEARCH_PER_ADDRESS" in anonymous.json()["message"]
        elsewhere = TestClient(client.app, client=("203.0.113.9", 40000))
        assert elsewhere.get("/v1/facets").status_code == 200
        assert elsewhere.get("/v1/facets").status_code == 429
        # A wrong key is a 401, not a fresh budget.
        assert client.get("/v1/facets", headers=key("made-up")).status_code == 401


def test_two_api_replicas_share_one_budget_through_redis(tmp_path, tiny_encoder, redis_prefix):
    settings = {"profile": "cluster", "api_keys": KEYED, "rate_limit_redis_url": REDIS_URL,
                "rate_limit_redis_prefix": redis_prefix,
                "rate_limit_search_per_key": "3/hour"}
    with serving(tmp_path, tiny_encoder, "one", **settings) as one, \
            serving(tmp_path, tiny_encoder, "two", **settings) as two:
        assert one.get("/v1/facets", headers=key("shop-a")).status_code == 200
        assert two.get("/v1/facets", headers=key("shop-a")).status_code == 200
        assert one.get("/v1/facets", headers=key("shop-a")).status_code == 200
        assert two.get("/v1/facets", headers=key("shop-a")).status_code == 429
        assert one.get("/v1/facets", headers=key("shop-a")).status_code == 429
        assert two.get("/v1/facets", headers=key("shop-b")).status_code == 200
    stored = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}*"))
    assert stored and not any(b"shop-a" in k for k in stored)  # a key's digest, never it


def test_without_redis_requests_pass_uncounted(tmp_path, tiny_encoder):
    with serving(tmp_path, tiny_encoder, profile="cluster", api_keys=KEYED,
                 rate_limit_redis_url="redis://127.0.0.1:1/0",
                 rate_limit_search_per_key="1/hour") as client:
        for _ in range(3):
            assert client.get("/v1/facets", headers=key("shop-a")).status_code == 200


@pytest.mark.parametrize("anonymous", [False, True])
def test_anonymous_search_only_when_on_and_managers_routes_still_need_a_key(
        tmp_path, tiny_encoder, anonymous):
    with serving(tmp_path, tiny_encoder, api_keys=KEYED, anonymous_search=anonymous,
                 rate_limit_enabled=False) as client:
        for path in ("/v1/search?q=dress", "/v1/facets", "/v1/suggest?q=dr",
                     "/v1/products/ghost", "/v1/products/ghost/similar"):
            status = client.get(path).status_code
            assert (status not in (401, 403)) if anonymous else status == 401, (path, status)
        status = client.post("/v1/recommend", json={"positive": ["ghost"]}).status_code
        assert status == (404 if anonymous else 401)
        # Managers' routes: 401 without a key, 403 with a shopper's, either way.
        assert client.get("/v1/products").status_code == 401
        assert client.get("/v1/products", headers=key("shop-a")).status_code == 403
        assert client.get("/v1/products", headers=key("boss")).status_code == 200
        upload = client.post("/v1/products", data={"metadata": '{"id": "x"}'},
                             files={"image": ("p.png", image_bytes(), "image/png")})
        assert upload.status_code == 401
        # A wrong key is still wrong, not anonymous.
        assert client.get("/v1/facets", headers=key("made-up")).status_code == 401


def test_the_limited_routes_and_their_groups(tmp_path, tiny_encoder):
    app = create_api(ApiSettings())
    groups = {(m, route.path): marks[0].group
              for route, marks in route_markers(app.routes, RateLimited)
              for m in route.methods}
    search = [("GET", "/v1/search"), ("POST", "/v1/search"), ("GET", "/v1/facets"),
              ("GET", "/v1/suggest"), ("POST", "/v1/recommend"), ("POST", "/v1/classify"),
              ("GET", "/v1/products/{product_id}/similar")]
    assert groups == {**dict.fromkeys(search, Group.search),
                      ("POST", "/v1/products"): Group.uploads,
                      ("POST", "/v1/products/batch"): Group.uploads,
                      ("POST", "/v1/imports"): Group.imports}


def test_settings_decide_on_and_off_and_a_bad_limit_fails_at_start():
    assert build_limits(ApiSettings()) is None  # local: off unless asked
    assert build_limits(ApiSettings(profile="cluster", rate_limit_redis_url=REDIS_URL))
    assert build_limits(ApiSettings(profile="cluster", rate_limit_enabled=False)) is None
    with pytest.raises(ValueError, match="VITRINE_RATE_LIMIT_SEARCH_PER_KEY"):
        build_limits(ApiSettings(rate_limit_enabled=True,
                                 rate_limit_search_per_key="lots per minute"))
