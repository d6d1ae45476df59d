"""Search on a trained model, through the HTTP API: the demo-architecture test model
(tests/conftest.py) over the products it was trained on, queried with words and with
held-out photos it never saw.

The thresholds sit well inside what this model measures (see each test); a model that
searches at random, or a query path that drops a part of the query, fails them.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from catalogue.styles import read_styles
from testkit.api import make_app, wait_job

pytestmark = pytest.mark.slow  # about 10 s, most of it encoding the catalogue

RED_DRESS, BLACK_TROUSERS = ("Red", "Dresses"), ("Black", "Trousers")
HELD_OUT_RED_DRESS = "10576"  # a photo of the validation split: not in the index


@pytest.fixture(scope="module")
def shop(tmp_path_factory, demo_model, demo_encoder):
    """The API with the model's training products (540) ingested; the held-out rows and
    the folder of photos."""
    by_id = {r["id"]: r for r in read_styles(demo_model.catalogue)}
    split = json.loads((demo_model.model / "split.json").read_text())
    stock, held_out = ([by_id[i] for i in split[part]] for part in ("train", "validation"))
    images = demo_model.catalogue.parent / "images"
    with TestClient(make_app(tmp_path_factory.mktemp("search") / "data", demo_encoder)) as c:
        metadata = [{"id": r["id"], "title": r["productDisplayName"],
                     "category": r["articleType"], "colour": r["baseColour"],
                     "gender": r["gender"]} for r in stock]
        response = c.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                          files=[("images", (f"{r['id']}.jpg",
                                             (images / f"{r['id']}.jpg").read_bytes(),
                                             "image/jpeg")) for r in stock])
        assert response.status_code == 202, response.text
        job = wait_job(c, response.json()["job_id"], timeout=300)
        assert job["state"] == "done" and job["succeeded"] == len(stock), job
        yield c, stock, held_out, images


def kind(result: dict) -> tuple[str, str]:
    product = result["product"]
    return product["colour"], product["category"]


def post(client, image: bytes | None = None, **form) -> list[dict]:
    """The model's own ranking (semantic mode: the cosines these tests measure) unless the
    form names a mode."""
    files = {"image": ("q.jpg", image, "image/jpeg")} if image is not None else None
    form = {"mode": "semantic", **form}
    response = client.post("/v1/search", data={k: str(v) for k, v in form.items()},
                           files=files)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def ranking(client, image: bytes | None = None, **form) -> list[dict]:
    """Every product, best first, a page of 100 at a time."""
    results: list[dict] = []
    while True:
        page = post(client, image, limit=100, offset=len(results), **form)
        results += page
        if len(page) < 100:
            return results


def ranks_of(results: list[dict], wanted: tuple[str, str]) -> list[int]:
    return [i for i, r in enumerate(results) if kind(r) == wanted]


def assert_red_dresses_outrank_black_trousers(results: list[dict], margin: float) -> None:
    dresses, trousers = ranks_of(results, RED_DRESS), ranks_of(results, BLACK_TROUSERS)
    assert dresses and trousers
    assert max(dresses) < min(trousers), (dresses, trousers)
    lowest_dress = min(results[i]["score"] for i in dresses)
    best_trousers = max(results[i]["score"] for i in trousers)
    assert lowest_dress - best_trousers > margin, (lowest_dress, best_trousers)


def test_red_dress_text_ranks_red_dresses_first_and_black_trousers_far_below(shop):
    client, stock, _, _ = shop
    results = ranking(client, q="red dress")
    assert len(results) == len(stock)
    dresses = ranks_of(results, RED_DRESS)
    assert len(dresses) == 3  # every red dress in the index
    # Measured (the 48 px recipe, issue 17): the red dresses at ranks 0, 1 and 2, then
    # dresses of other colours and red socks and caps; the first black trousers at rank
    # 121. (The 64 px model before put colour first: 9 of the top 10 red.)
    assert max(dresses) < 3
    assert all(colour == "Red" or article == "Dresses" for colour, article in
               map(kind, results[:10]))  # each shares what the words ask for
    assert_red_dresses_outrank_black_trousers(results, margin=0.15)
    assert min(ranks_of(results, BLACK_TROUSERS)) >= 30


def test_hybrid_keeps_what_the_pictures_rank(shop):
    """Words beside the vectors: "red dress" in hybrid mode still puts red dresses on top
    (the words "red" and "dress" agree with the pictures here)."""
    client, stock, _, _ = shop
    results = ranking(client, q="red dress", mode="hybrid")
    assert len(results) == len(stock)
    # Measured: the red dresses at ranks 0-2, then dresses of other colours (the word
    # "dress" brings in more of them than semantic mode's red socks and caps); black
    # trousers from rank 122.
    assert max(ranks_of(results, RED_DRESS)) < 3
    assert all(colour == "Red" or article == "Dresses" for colour, article in
               map(kind, results[:10]))
    assert min(ranks_of(results, BLACK_TROUSERS)) >= 30


def test_colour_filter_returns_only_that_colour_and_all_of_it(shop):
    client, stock, _, _ = shop
    black = Counter(r["baseColour"] for r in stock)["Black"]
    response = client.get("/v1/search", params={"q": "red dress", "colour": "Black",
                                                 "mode": "semantic", "limit": 100})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == black > 20  # 45 here: all of them, and nothing else
    assert {kind(r)[0] for r in results} == {"Black"}
    # The filter narrows and keeps the ranking: the black products of the unfiltered
    # search, in its order.
    everything = ranking(client, q="red dress")
    assert [r["product_id"] for r in results] == [
        r["product_id"] for r in everything if kind(r)[0] == "Black"]


def test_red_dress_photo_finds_red_products_and_keeps_black_trousers_far_below(shop):
    client, stock, held_out, images = shop
    assert HELD_OUT_RED_DRESS not in {r["id"] for r in stock}
    photo = next(r for r in held_out if r["id"] == HELD_OUT_RED_DRESS)
    assert (photo["baseColour"], photo["articleType"]) == RED_DRESS
    pattern = {r["id"]: r["pattern"] for r in stock}
    results = ranking(client, (images / f"{HELD_OUT_RED_DRESS}.jpg").read_bytes())
    # The photo is of a red floral dress. Measured on the model that sees patterns (issue
    # 17): 6 of the top 10 red, a red floral dress first, then a red floral bag, a red
    # plain dress and a red floral cap; floral dresses in navy and yellow at ranks 5 and 6.
    # Every one of the 10 shares the photo's colour, article type or pattern. (The model
    # before it, blind to patterns, put 9 red products in the top 10: colour counted for
    # more than anything else.)
    assert sum(colour == "Red" for colour, _ in map(kind, results[:10])) >= 6
    assert all(kind(r)[0] == "Red" or kind(r)[1] == "Dresses"
               or pattern[r["product_id"]] == photo["pattern"] for r in results[:10])
    assert min(ranks_of(results, RED_DRESS)) < 5
    assert_red_dresses_outrank_black_trousers(results, margin=0.15)


def test_held_out_photos_find_their_colour_and_category_well_above_chance(shop):
    client, stock, held_out, images = shop
    colours = Counter(r["baseColour"] for r in stock)
    categories = Counter(r["articleType"] for r in stock)
    same_colour = same_category = chance_colour = chance_category = 0
    for row in held_out:
        top = [kind(r) for r in post(client, (images / f"{row['id']}.jpg").read_bytes(),
                                     limit=10)]
        assert len(top) == 10
        same_colour += sum(colour == row["baseColour"] for colour, _ in top)
        same_category += sum(category == row["articleType"] for _, category in top)
        chance_colour += 10 * colours[row["baseColour"]] / len(stock)
        chance_category += 10 * categories[row["articleType"]] / len(stock)
    # Measured over the 60 photos: 70% of the top 10 share the photo's colour (chance:
    # 8%), 20% its category (chance: 6%).
    assert same_colour >= 6 * chance_colour, (same_colour, chance_colour)
    assert same_category >= 2 * chance_category, (same_category, chance_category)


@pytest.mark.parametrize("query,negative,field,value,before,after", [
    # Measured: 6 red of the top 10 alone (the 3 red dresses, 3 red socks and caps), 3 with
    # "less of red" (the red dresses, which the words still ask for); dresses 7 to 10.
    ("red dress", "red", 0, "Red", 6, 4),
    # ("dress", "trousers") was measured here while the model mixed dresses and trousers
    # up (5 trousers in "dress"'s top 10); the 64 px model (issue 17) puts none there, so
    # "less of trousers" has nothing left to move.
])
def test_less_of_moves_results_away_from_the_negative(shop, query, negative, field, value,
                                                      before, after):
    client = shop[0]
    alone = [kind(r) for r in post(client, q=query, limit=10)]
    less = [kind(r) for r in post(client, q=query, negative=negative, limit=10)]
    assert sum(k[field] == value for k in alone) >= before, alone
    assert sum(k[field] == value for k in less) <= after, less
    # What the query asks for is kept: more dresses than without the negative.
    assert sum(k[1] == "Dresses" for k in less) > sum(k[1] == "Dresses" for k in alone)


def test_a_colour_query_shows_the_variant_of_that_colour(shop):
    """One dress in two colours (a variant each, with its own held-out photo): "red dress"
    shows the red variant's photo, "<other colour> dress" the other one's."""
    client, _, held_out, images = shop
    red = next(r for r in held_out if (r["baseColour"], r["articleType"]) == RED_DRESS)
    other = next(r for r in held_out if r["articleType"] == "Dresses"
                 and r["baseColour"] not in ("Red", "Pink", "Maroon"))
    metadata = {"id": "two-colours", "title": "Dress", "category": "Dresses", "variants": [
        {"sku": "other", "colour": other["baseColour"], "price": 40, "image": 0},
        {"sku": "red", "colour": "Red", "price": 50, "image": 1}]}
    files = [("images", (f"{r['id']}.jpg", (images / f"{r['id']}.jpg").read_bytes(),
                         "image/jpeg")) for r in (other, red)]
    response = client.post("/v1/products", data={"metadata": json.dumps(metadata)},
                           files=files)
    assert wait_job(client, response.json()["job_id"])["state"] == "done"
    for query, sku, photo in (("red dress", "red", 1),
                              (f"{other['baseColour'].lower()} dress", "other", 0)):
        found = [r for r in ranking(client, q=query) if r["product_id"] == "two-colours"]
        assert len(found) == 1
        assert (found[0]["variant"]["sku"], found[0]["image"]) == (sku, photo), query
    client.delete("/v1/products/two-colours")


# ---------------------------------------------------------------- patterns


def pattern_of(stock: list[dict]) -> dict[str, str]:
    return {r["id"]: r["pattern"] for r in stock}


def test_a_floral_dress_ranks_floral_dresses_above_striped_ones(shop):
    client, stock, _, _ = shop
    patterns = pattern_of(stock)
    results = ranking(client, q="a floral dress")
    dresses = [(i, patterns[r["product_id"]]) for i, r in enumerate(results)
               if r["product"]["category"] == "Dresses"]
    floral = [i for i, p in dresses if p == "floral"]
    striped = [i for i, p in dresses if p == "striped"]
    assert len(floral) == 4 and len(striped) == 6  # every one in the index
    assert max(floral) < min(striped), (floral, striped)


def fresh_photo(article: str, colour: str, pattern: str) -> bytes:
    """The demo catalogue's drawing of such a product, in a pose no indexed photo has."""
    import io
    from dataclasses import replace

    from demo.generator import picture
    from demo.plan import plan
    from testkit.demo_model import PRODUCTS, PROHIBITED, SEED

    items = plan(PRODUCTS, PROHIBITED, SEED)
    item = next(i for i in items if (i.article, i.colour, i.pattern) == (article, colour,
                                                                          pattern))
    image, quality = picture(replace(item, id=99_999), 64, SEED)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_a_red_dress_photo_plus_floral_ranks_red_floral_dresses_first(shop):
    """"This dress, but floral", at the shop page's default alpha (the form's default)."""
    client, stock, _, _ = shop
    patterns = pattern_of(stock)
    photo = fresh_photo("Dresses", "Red", "plain")
    alone = post(client, photo, limit=10)
    # Measured: the photo alone ranks a red cap, a beige striped dress, then the red floral
    # dress; with "floral" the red floral dress comes first at every alpha from 0.2 to 0.5.
    assert RED_DRESS in map(kind, alone[:5])
    results = post(client, photo, q="floral", limit=10)
    assert kind(results[0]) == RED_DRESS and patterns[results[0]["product_id"]] == "floral"


def test_hybrid_keeps_the_look_alikes_a_common_word_finds(shop):
    """The same query in the shop's default mode (hybrid, words first), with more products
    carrying "floral" than the keyword side's cut keeps: the red floral dress the photo
    finds must not lose its place to floral products that merely have shorter texts."""
    client, stock, _, _ = shop
    patterns = pattern_of(stock)
    search = client.app.state.services.search
    default, cut = search.settings, 10
    assert sum("floral" in r["productDisplayName"].lower() for r in stock) > 3 * cut
    search.settings = default.model_copy(update={"hybrid_candidates": cut})
    try:
        results = post(client, fresh_photo("Dresses", "Red", "plain"), q="floral",
                       mode="hybrid", limit=10)
    finally:
        search.settings = default
    assert kind(results[0]) == RED_DRESS and patterns[results[0]["product_id"]] == "floral"
    assert all(patterns[r["product_id"]] == "floral" for r in results)  # the words first
