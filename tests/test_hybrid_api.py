"""Search as shops expect it, through the HTTP API on both stores: exact identifiers and
brands first, keyword and hybrid modes, visibility and filters in every mode, German
stemming, diversity, recommendations, explain, and a JSON body equal to the form."""

import base64
import json

import pytest
from fastapi.testclient import TestClient

from catalogue.store.base import point_id
from testkit.api import make_app, wait_job
from testkit.images import image_bytes

PRODUCTS = [
    ("p0", "Summer dress", "Zara", "Red", "10431"),
    ("p1", "Slim jeans", "Levi's", "Blue", "10432"),
    ("p2", "Leather boots", "Dr. Martens", "Black", "10433"),
    ("p3", "Cotton shirt", "Uniqlo", "White", "10434"),
    ("p4", "Wool scarf", "Acne", "Red", "10435"),
    ("p5", "Silk dress", "Zara", "Green", "10436"),
    ("p6", "Running shoes", "Nike", "White", "AM-90"),
    ("p7", "Denim jacket", "Lee", "Blue", "10438"),
]
MODES = ["hybrid", "semantic", "keyword"]


def stock(client, products=PRODUCTS, photo_seed=None):
    metadata = [{"id": pid, "title": title, "brand": brand, "colour": colour,
                 "variants": [{"sku": sku, "size": "M"}]}
                for pid, title, brand, colour, sku in products]
    files = [("images", (f"{i}.png", image_bytes(seed=i if photo_seed is None else photo_seed),
                         "image/png")) for i in range(len(products))]
    response = client.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                           files=files)
    assert wait_job(client, response.json()["job_id"])["state"] == "done"


@pytest.fixture(params=["edge", "server"])
def shop(request, tmp_path, tiny_encoder):
    settings = {} if request.param == "edge" else {"store": "server", "qdrant_url": ":memory:"}
    with TestClient(make_app(tmp_path / "data", tiny_encoder, **settings)) as client:
        stock(client)
        yield client


def search(client, **params):
    response = client.get("/v1/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_identifiers_and_brands_come_first(shop, mode):
    for query, expected in [("10432", "p1"), ("SKU 10433", "p2"), ("AM-90", "p6"),
                            ("p3", "p3"), ("Levi's", "p1"), ("nike shoes", "p6")]:
        results = search(shop, q=query, mode=mode, explain="true")
        assert results[0]["product_id"] == expected, (query, results[0])
    exact = search(shop, q="10432", mode=mode, explain="true")[0]["explain"]
    assert exact["exact"] is True
    by_words = search(shop, q="levi's jeans", mode=mode, explain="true")[0]["explain"]
    assert set(by_words["terms"]) == {"levi's", "jeans"} and by_words["keyword"] > 0


def test_modes_keep_visibility_and_filters(shop):
    services = shop.app.state.services
    services.store.set_payload([point_id("p5")], {"moderation_status": "flagged"})
    for mode in MODES:
        found = {r["product_id"] for r in search(shop, q="Zara dress", mode=mode, limit=20)}
        assert "p5" not in found and "p0" in found, mode
        red = search(shop, q="dress scarf", mode=mode, colour="Red", limit=20)
        assert {r["product_id"] for r in red} <= {"p0", "p4"} and red, mode
    assert search(shop, q="10436", mode="keyword") == []  # hidden, even by its SKU
    assert shop.get("/v1/search", params={"q": "x", "mode": "fuzzy"}).status_code == 422


def test_keyword_pages_hold_together(shop):
    first = search(shop, q="dress jeans boots shirt scarf", mode="keyword", limit=3)
    response = shop.get("/v1/search", params={"q": "dress jeans boots shirt scarf",
                                              "mode": "keyword", "limit": 3, "offset": 3})
    second = response.json()["results"]
    assert not {r["product_id"] for r in first} & {r["product_id"] for r in second}


def test_json_body_and_form_give_the_same_results(shop):
    photo = image_bytes(seed=3)
    form = shop.post("/v1/search", data={"q": "cotton shirt", "alpha": "0.4", "size": "M",
                                         "limit": "5"},
                     files={"image": ("q.png", photo, "image/png")})
    body = shop.post("/v1/search", json={"q": "cotton shirt", "alpha": 0.4, "limit": 5,
                                         "image": base64.b64encode(photo).decode(),
                                         "filters": {"size": ["M"]}})
    assert form.status_code == body.status_code == 200, (form.text, body.text)
    as_pairs = [[(r["product_id"], round(r["score"], 5)) for r in x.json()["results"]]
                for x in (form, body)]
    assert as_pairs[0] == as_pairs[1] and len(as_pairs[0]) == 5
    assert shop.post("/v1/search", json={"q": "x", "image": "%%"}).status_code == 422
    assert shop.post("/v1/search", json={"q": "x", "nope": 1}).status_code == 422
    assert shop.post("/v1/search", content=b"q=x", headers={
        "content-type": "text/plain"}).status_code == 415


def test_recommend_likes_and_dislikes_and_more_like_this_is_its_one_product_case(shop):
    response = shop.post("/v1/recommend", json={"positive": ["p1"], "limit": 7})
    assert response.status_code == 200, response.text
    liked = [r["product_id"] for r in response.json()["results"]]
    assert "p1" not in liked and len(liked) == 7
    similar = shop.get("/v1/products/p1/similar", params={"limit": 7}).json()["results"]
    assert [r["product_id"] for r in similar] == liked
    disliked = shop.post("/v1/recommend", json={"positive": ["p1"], "negative": [liked[0]],
                                                "limit": 7}).json()["results"]
    assert liked[0] not in [r["product_id"] for r in disliked]
    assert shop.post("/v1/recommend", json={"positive": ["ghost"]}).status_code == 404


def test_german_stemming(tmp_path, tiny_encoder):
    with TestClient(make_app(tmp_path / "data", tiny_encoder, text_language="german")) as c:
        stock(c, [("k1", "Rotes Kleid mit Punkten", "Marke", "Rot", "A1"),
                  ("k2", "Blaue Hose", "Marke", "Blau", "A2")])
        assert [r["product_id"] for r in search(c, q="Kleider", mode="keyword")] == ["k1"]


def test_diversity_leaves_out_near_duplicates(tmp_path, tiny_encoder):
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as c:
        stock(c, [(f"same{i}", "T-shirt", "Brand", "White", f"S{i}") for i in range(5)],
              photo_seed=7)
        stock(c, [(f"other{i}", "Top", "Brand", "White", f"O{i}") for i in range(5)])
        photo = image_bytes(seed=7)

        def top(**form):
            response = c.post("/v1/search", data={"limit": "5", **form},
                              files={"image": ("q.png", photo, "image/png")})
            return [r["product_id"] for r in response.json()["results"]]

        assert sum(p.startswith("same") for p in top()) == 5
        assert sum(p.startswith("same") for p in top(diversity="0.7")) <= 2


def test_suggest_completes_with_a_typo(shop):
    def texts(q):
        response = shop.get("/v1/suggest", params={"q": q})
        assert response.status_code == 200, response.text
        return [(s["text"], s["kind"]) for s in response.json()["suggestions"]]

    assert ("Zara", "brand") in texts("za")
    assert ("Leather boots", "title") in texts("leathr")  # one typo in a long word
    assert ("Denim jacket", "title") in texts("denim jac")
    assert texts("denim jak") == []  # no typo allowed in a word under five letters
    assert texts("zzz") == []


@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_a_misspelt_word_finds_its_product(shop, mode):
    results = search(shop, q="leathr", mode=mode, explain="true")
    assert results[0]["product_id"] == "p2"
    assert "leather" in results[0]["explain"]["terms"]  # searched as spelt in the catalogue


def test_hybrid_ranks_what_the_words_find_above_look_alikes(shop):
    """p3's own photo, but "Zara": the photo side's best is p3, which lacks the word."""
    search_ = shop.app.state.services.search

    def ranked(words_first: bool) -> list[str]:
        search_.settings = search_.settings.model_copy(update={
            "fusion": "rrf", "hybrid_words_first": words_first})
        response = shop.post("/v1/search", files={"image": ("q.png", image_bytes(seed=3),
                                                            "image/png")},
                             data={"q": "Zara", "alpha": "1", "keyword_weight": "0.2",
                                   "limit": "8"})
        return [r["product_id"] for r in response.json()["results"]]

    assert ranked(words_first=False)[0] == "p3"  # one fused list: the photo side's pick
    ids = ranked(words_first=True)
    assert sorted(ids[:2]) == ["p0", "p5"] and ids[2] == "p3" and len(ids) == 8
    ids = [r["product_id"] for r in search(shop, q="Zara", mode="hybrid", limit=8)]
    assert sorted(ids[:2]) == ["p0", "p5"] and len(ids) == 8
    # Pages by cursor walk the same list across the words' part and the rest.
    walked, cursor = [], None
    while True:
        params = {"q": "Zara", "mode": "hybrid", "limit": 3, **({"cursor": cursor} if cursor
                                                                 else {})}
        page = shop.get("/v1/search", params=params).json()
        walked += [r["product_id"] for r in page["results"]]
        if not (cursor := page["next_cursor"]):
            break
    assert walked == ids

