"""What the browser is served, checked without one: the product image route (types,
caching by content, hidden products), the pages' security headers and self-contained
static files, and compression."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from api.auth import hash_key
from catalogue.store.base import point_id
from testkit.browser import KEYS, build_app
from testkit.images import image_bytes


@pytest.fixture
def open_client(tmp_path, tiny_encoder):
    with TestClient(build_app(tmp_path / "data", tiny_encoder)) as c:
        yield c


@pytest.fixture
def keyed_client(tmp_path, tiny_encoder):
    keys = {hash_key(k): role for role, k in KEYS.items()}
    with TestClient(build_app(tmp_path / "data", tiny_encoder, keys)) as c:
        yield c


def ingest_one(client, product_id: str, data: bytes, headers=None) -> dict:
    response = client.post("/v1/products", headers=headers or {},
                           data={"metadata": json.dumps({"id": product_id})},
                           files={"image": ("p.bin", data, "application/octet-stream")})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    for _ in range(600):
        job = client.get(f"/v1/jobs/{job_id}", headers=headers or {}).json()
        if job["state"] in ("done", "failed"):
            assert job["state"] == "done", job
            return client.get(f"/v1/products/{product_id}", headers=headers or {}).json()
        time.sleep(0.05)
    raise AssertionError(job)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_image_route_serves_vitrines_own_copy_as_jpeg(open_client, fmt):
    """Never the uploaded bytes: the JPEG Vitrine re-encoded at ingest (issue 11)."""
    client = open_client
    data = image_bytes("red", fmt=fmt, seed=5)
    product = ingest_one(client, "img-1", data)
    response = client.get("/v1/products/img-1/image")
    assert response.status_code == 200 and response.content != data
    assert response.content.startswith(b"\xff\xd8\xff")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["etag"] == f'"{product["display_sha256"]}"'
    assert response.headers["cache-control"] == "public, no-cache"  # by id: may change
    assert response.headers["x-content-type-options"] == "nosniff"


def test_image_route_caches_content_addressed_urls_and_revalidates(open_client):
    client = open_client
    product = ingest_one(client, "img-2", image_bytes("blue", seed=6))
    digest = product["image_sha256"]
    pinned = client.get("/v1/products/img-2/image", params={"v": digest})
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get("/v1/products/img-2/image",
                       headers={"If-None-Match": f'"{product["display_sha256"]}"'})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/v1/products/ghost/image").status_code == 404


def test_hidden_products_images_only_for_managers(keyed_client):
    manager, shopper = {"X-API-Key": KEYS["manager"]}, {"X-API-Key": KEYS["shopper"]}
    ingest_one(keyed_client, "hid-1", image_bytes("green", seed=8), manager)
    assert keyed_client.get("/v1/products/hid-1/image").status_code == 401
    visible = keyed_client.get("/v1/products/hid-1/image", headers=shopper)
    assert visible.status_code == 200
    assert visible.headers["cache-control"].startswith("private")  # it took a key
    services = keyed_client.app.state.services
    services.store.set_payload([point_id("hid-1")], {"moderation_status": "flagged"})
    hidden = keyed_client.get("/v1/products/hid-1/image", headers=shopper)
    assert hidden.status_code == 404 and hidden.json()["message"] == "unknown product 'hid-1'"
    assert keyed_client.get("/v1/products/hid-1/image", headers=manager).status_code == 200


def test_pages_and_static_files_are_public_and_self_contained(keyed_client):
    for path in ("/", "/admin"):
        response = keyed_client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        # No third-party host anywhere: everything comes from this server.
        assert not re.search(r"(src|href)=\"(https?:)?//", response.text)
    css = keyed_client.get("/static/css/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = keyed_client.get("/static/js/shop.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert keyed_client.get("/static/js/shop.js",
                            headers={"If-None-Match": js.headers["etag"]}).status_code == 304
    for sneaky in ("/static/../routes/pages.py", "/static/%2e%2e/routes/pages.py",
                   "/static/nope.js"):
        assert keyed_client.get(sneaky).status_code == 404


def test_pages_scripts_and_json_are_gzipped_images_are_not(open_client):
    client = open_client
    ingest_one(client, "gz-1", image_bytes("red", fmt="JPEG", seed=9))
    gzip = {"Accept-Encoding": "gzip"}
    for path in ("/", "/admin", "/static/js/shop.js", "/static/css/app.css", "/openapi.json"):
        response = client.get(path, headers=gzip)
        assert response.status_code == 200, path
        assert response.headers.get("content-encoding") == "gzip", path
    image = client.get("/v1/products/gz-1/image", headers=gzip)
    assert image.status_code == 200 and "content-encoding" not in image.headers
    assert image.content[:2] == b"\xff\xd8"  # the JPEG itself, untouched
