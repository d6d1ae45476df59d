"""Paging through the API: every product exactly once, even when many share one photo.

Products sharing a photo (variants, re-uploads) get equal scores; the engine returns
equal scores in an arbitrary order that changes with the window asked for, so paging
by offset used to repeat some and skip others. Each walk here pages a small limit to
the end, by offset and by cursor, on both stores, and wants each product once.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from catalogue.store.base import point_id
from testkit.api import make_app, upload, wait_job
from testkit.images import image_bytes

SHARED, OTHERS, LIMIT = 110, 15, 7
SHARED_PHOTO = image_bytes("red", seed=7)
ALL_IDS = {f"v{i}" for i in range(SHARED)} | {f"o{i}" for i in range(OTHERS)}


@pytest.fixture(scope="module", params=["edge", "server"])
def shop(request, tmp_path_factory, tiny_encoder):
    settings = {"store": "server", "qdrant_url": ":memory:"} if request.param == "server" else {}
    app = make_app(tmp_path_factory.mktemp(request.param) / "data", tiny_encoder, **settings)
    with TestClient(app) as client:
        jobs = [upload(client, f"v{i}", SHARED_PHOTO, colour="red") for i in range(SHARED)]
        jobs += [upload(client, f"o{i}", image_bytes("blue", seed=100 + i), colour="blue")
                 for i in range(OTHERS)]
        for response in jobs:
            assert response.status_code == 202, response.text
            assert wait_job(client, response.json()["job_id"], timeout=120)["state"] == "done"
        yield client


def walk(client, method: str, url: str, by: str, limit: int = LIMIT, **params) -> list[str]:
    """Product ids of every page, following next_offset or next_cursor to the end."""
    seen: list[str] = []
    follow: dict[str, object] = {}
    for _ in range(len(ALL_IDS) + 2):  # a walk that never ends fails, not hangs
        args = {**params, "limit": limit, **follow}
        response = (client.get(url, params=args) if method == "GET"
                    else client.post(url, data=args))
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [r["product_id"] for r in body["results"]]
        nxt = body["next_offset"] if by == "offset" else body["next_cursor"]
        if nxt is None:
            return seen
        follow = {by: nxt}
    raise AssertionError(f"paging did not end: {len(seen)} results so far")


def assert_each_once(seen: list[str], expected: set[str]) -> None:
    twice = sorted({i for i in seen if seen.count(i) > 1})
    missing = sorted(expected - set(seen))
    assert not twice and not missing, f"twice: {twice}; never: {missing}"
    assert len(seen) == len(expected)


@pytest.mark.parametrize("by", ["offset", "cursor"])
def test_text_search_pages_every_product_once(shop, by):
    assert_each_once(walk(shop, "GET", "/v1/search", by, q="a red dress"), ALL_IDS)


@pytest.mark.parametrize("by", ["offset", "cursor"])
def test_photo_search_pages_every_product_once(shop, by):
    """The shared photo itself as the query: 110 hits tie at the top."""
    seen: list[str] = []
    follow: dict[str, object] = {}
    while True:
        response = shop.post("/v1/search", data={"limit": LIMIT, "alpha": 1, **follow},
                             files={"image": ("q.png", SHARED_PHOTO, "image/png")})
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [r["product_id"] for r in body["results"]]
        nxt = body["next_offset"] if by == "offset" else body["next_cursor"]
        if nxt is None:
            break
        follow = {by: nxt}
        assert len(seen) <= len(ALL_IDS), "paging did not end"
    assert_each_once(seen, ALL_IDS)


@pytest.mark.parametrize("by", ["offset", "cursor"])
def test_search_by_product_pages_every_product_once(shop, by):
    assert_each_once(walk(shop, "POST", "/v1/search", by, product_id="v3", alpha=1), ALL_IDS)


@pytest.mark.parametrize("by", ["offset", "cursor"])
def test_a_product_and_words_page_every_product_once(shop, by):
    """A product's photo narrowed by words (hybrid, words first): the 110 red ones that
    share the photo tie at the head, which an offset page asks only as deep as it reaches."""
    assert_each_once(walk(shop, "POST", "/v1/search", by, product_id="v3", q="red"), ALL_IDS)


@pytest.mark.parametrize("by", ["offset", "cursor"])
def test_similar_pages_every_other_product_once(shop, by):
    seen = walk(shop, "GET", "/v1/products/v5/similar", by)
    assert_each_once(seen, ALL_IDS - {"v5"})


def test_results_come_in_score_then_point_id_order(shop):
    """Score descending, equal scores in point-id order, the same in every window.

    The photo's products score within float noise of each other, not always exactly
    alike: the encoder's last bit depends on what else was in the batch."""
    body = shop.get("/v1/products/v5/similar", params={"limit": 100}).json()["results"]
    shared = [r for r in body if r["product_id"].startswith("v")]
    assert len(shared) == len(body) == 100  # the photo's 109 others come first
    assert max(r["score"] for r in shared) - min(r["score"] for r in shared) < 1e-6
    keys = [(-r["score"], point_id(r["product_id"])) for r in body]
    assert keys == sorted(keys)
    assert len({k for k in keys if k[0] == keys[0][0]}) > 1  # ties at the top to order
    again = walk(shop, "GET", "/v1/products/v5/similar", "offset", limit=3)
    assert again[:len(body)] == [r["product_id"] for r in body]


def test_a_cursor_and_an_offset_page_the_same(shop):
    by_offset = walk(shop, "GET", "/v1/search", "offset", q="red", limit=9)
    by_cursor = walk(shop, "GET", "/v1/search", "cursor", q="red", limit=9)
    assert by_offset == by_cursor


def test_a_cursor_page_says_its_offset(shop):
    first = shop.get("/v1/search", params={"q": "red", "limit": 5}).json()
    second = shop.get("/v1/search", params={"q": "red", "limit": 5,
                                            "cursor": first["next_cursor"]}).json()
    assert second["offset"] == 5 and second["next_offset"] == 10
    by_offset = shop.get("/v1/search", params={"q": "red", "limit": 5, "offset": 5}).json()
    assert [r["product_id"] for r in second["results"]] == [
        r["product_id"] for r in by_offset["results"]]


def test_cursor_paging_survives_inserts_above_the_cursor(shop):
    """A product added before the cursor's place shifts offsets by one; the cursor
    carries on after the last product seen, with nothing repeated."""
    first = shop.post("/v1/search", data={"product_id": "o1", "alpha": 1, "limit": 4}).json()
    seen = [r["product_id"] for r in first["results"]]
    response = upload(shop, "o1-copy", image_bytes("blue", seed=101), colour="blue")
    assert wait_job(shop, response.json()["job_id"])["state"] == "done"
    try:
        rest = walk(shop, "POST", "/v1/search", "cursor", limit=LIMIT, product_id="o1",
                    alpha=1, cursor=first["next_cursor"])
        # walk() sends its own cursor after the first page; the first one it sends is ours
        seen += rest
        assert not {i for i in seen if seen.count(i) > 1}
        assert set(seen) >= ALL_IDS
    finally:
        assert shop.delete("/v1/products/o1-copy").status_code == 204


@pytest.mark.parametrize("cursor, problem", [
    ("not-base64!", "base64url"),
    ("eyJzIjogMX0", "point id"),  # {"s": 1}: no id
    ("W10", "point id"),  # []: not an object
    ("eyJzIjoiTmFOIiwiaWQiOiJ4IiwicCI6MH0", "score"),  # a score that is no number
    ("x" * 300, "characters"),
])
def test_a_malformed_cursor_is_a_422_naming_it(shop, cursor, problem):
    for response in (
            shop.get("/v1/search", params={"q": "red", "cursor": cursor}),
            shop.post("/v1/search", data={"q": "red", "cursor": cursor}),
            shop.get("/v1/products/v1/similar", params={"cursor": cursor})):
        assert response.status_code == 422, response.text
        assert problem in response.json()["message"]


def test_cursor_and_offset_together_are_a_422(shop):
    first = shop.get("/v1/search", params={"q": "red", "limit": 5}).json()
    response = shop.get("/v1/search", params={"q": "red", "offset": 5,
                                              "cursor": first["next_cursor"]})
    assert response.status_code == 422 and "cursor" in response.text
