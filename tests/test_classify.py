"""POST /v1/classify: labels ranked for a photo or a product's image, on a demo model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalogue.captions import attribute_query
from catalogue.styles import read_styles
from embedding.zeroshot import classify
from testkit.api import ingest, make_app

COLOURS = ["Red", "Blue", "Green", "Yellow", "Black", "White"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_model, demo_encoder):
    rows = read_styles(demo_model.catalogue)
    held_out = set(json.loads((demo_model.model / "split.json").read_text())["validation"])
    images = demo_model.catalogue.parent / "images"
    candidates = [r for r in rows if r["id"] in held_out and r["baseColour"] in COLOURS
                  and r["pattern"] == "plain"]
    with TestClient(make_app(tmp_path_factory.mktemp("classify") / "data", demo_encoder)) as c:
        yield c, candidates, images


def post(client, labels, image: bytes | None = None, **form):
    files = {"image": ("p.jpg", image, "image/jpeg")} if image is not None else None
    return client.post("/v1/classify", data={"labels": json.dumps(labels), **form},
                       files=files)


def test_plain_products_get_their_colour_first(setup):
    client, candidates, images = setup
    labels = [c.lower() for c in COLOURS]
    ranked_right = 0
    for row in candidates:
        body = post(client, labels, (images / f"{row['id']}.jpg").read_bytes()).json()
        probs = [x["probability"] for x in body["labels"]]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-4
        ranked_right += body["labels"][0]["label"] == row["baseColour"].lower()
    assert ranked_right >= 0.8 * len(candidates), (ranked_right, len(candidates))


def test_a_red_dress_ranks_above_black_trousers(setup):
    client, candidates, images = setup
    dresses = [r for r in candidates if r["articleType"] == "Dresses"
               and r["baseColour"] == "Red"] or [r for r in candidates if r["baseColour"] == "Red"]
    row = dresses[0]
    labels = [attribute_query(row["baseColour"], row["articleType"]),
              attribute_query("Black", "Trousers")]
    body = post(client, labels, (images / f"{row['id']}.jpg").read_bytes(),
                templates=json.dumps(["{}", "a photo of {}"])).json()
    assert body["labels"][0]["label"] == labels[0]


def test_probabilities_are_the_zeroshot_softmax_and_product_ids_work(setup, demo_encoder):
    client, candidates, images = setup
    row = candidates[0]
    data = (images / f"{row['id']}.jpg").read_bytes()
    ingest(client, "p1", data, title="a product")
    labels = ["red", "blue", "green"]
    by_image = post(client, labels, data).json()
    by_id = post(client, labels, product_id="p1").json()
    assert by_id == by_image
    with Image.open(images / f"{row['id']}.jpg") as im:
        vector = demo_encoder.encode_images([im.convert("RGB")])
    expected = classify(demo_encoder, vector, labels)[0]
    got = {x["label"]: x["probability"] for x in by_image["labels"]}
    assert np.allclose([got[x] for x in labels], expected, atol=1e-5)
    assert by_image["model"] == demo_encoder.model_id


@pytest.mark.parametrize("labels, form, needle", [
    (["a"], {}, "either an image or a product_id"),
    ("not json", {"product_id": "p1"}, "labels must be a JSON list"),
    ([], {"product_id": "p1"}, "labels: give 1 to"),
    (["a", "a"], {"product_id": "p1"}, "duplicates"),
    (["a"] * 101, {"product_id": "p1"}, "labels: give 1 to 100"),
    (["a"], {"product_id": "p1", "templates": json.dumps(["no placeholder"])}, "templates"),
    (["a"], {"product_id": "p1", "templates": json.dumps(["{} and {}"])}, "templates"),
])
def test_bad_requests_say_why(setup, labels, form, needle):
    client, _, _ = setup
    raw = labels if isinstance(labels, str) else json.dumps(labels)
    response = client.post("/v1/classify", data={"labels": raw, **form})
    assert response.status_code == 422 and needle in response.text, response.text


def test_unknown_product_is_404(setup):
    client, _, _ = setup
    assert post(client, ["a", "b"], product_id="ghost").status_code == 404



def test_label_cache_is_bounded(tiny_encoder):
    from embedding import zeroshot

    for i in range(zeroshot.CACHE_SIZE + 10):
        zeroshot.class_embeddings(tiny_encoder, [f"label {i}"])
    assert len(zeroshot._cache[tiny_encoder]) == zeroshot.CACHE_SIZE
