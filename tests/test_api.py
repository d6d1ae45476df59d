"""The HTTP API on a tiny random CLIP, end to end through the local profile."""

import json

import pytest
from fastapi.testclient import TestClient

from catalogue.settings import CatalogueSettings
from testkit.api import ingest, make_app, upload, wait_job
from testkit.images import image_bytes

COLOURS = ["red", "blue", "green", "yellow"]
CATEGORIES = ["Dresses", "Shirts", "Jeans"]


@pytest.fixture
def stocked(client):
    """24 products over 4 colours x 3 categories x 2 genders, prices 10..240."""
    metadata, images = [], []
    for i in range(24):
        metadata.append({"id": f"p{i}", "title": f"item {i}", "colour": COLOURS[i % 4],
                         "category": CATEGORIES[i % 3], "gender": ["Men", "Women"][i % 2],
                         "brand": "Acme" if i < 12 else "Zeta", "price": 10.0 * (i + 1)})
        images.append(("images", (f"{i}.png", image_bytes(COLOURS[i % 4], seed=i), "image/png")))
    response = client.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                           files=images)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert job["state"] == "done" and job["succeeded"] == 24, job
    return client


def ids(response):
    assert response.status_code == 200, response.text
    return [r["product_id"] for r in response.json()["results"]]


def test_upload_then_job_completes_and_product_is_readable(client):
    response = upload(client, "sku-1", colour="red", category="Dresses", price=49.9)
    assert response.status_code == 202
    job = wait_job(client, response.json()["job_id"])
    assert job["state"] == "done" and job["succeeded"] == 1 and job["errors"] == []
    product = client.get("/v1/products/sku-1").json()
    assert product["colour"] == "red" and product["price"] == 49.9
    assert product["moderation_status"] == "visible" and len(product["image_sha256"]) == 64


def test_search_by_text_returns_products_with_fields(stocked):
    body = stocked.get("/v1/search", params={"q": "a red dress", "limit": 5}).json()
    assert len(body["results"]) == 5
    first = body["results"][0]
    assert {"product_id", "score", "product"} <= first.keys()
    assert first["product"]["id"] == first["product_id"]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_by_uploaded_image_finds_that_product_first(stocked):
    query = image_bytes(COLOURS[7 % 4], seed=7)
    response = stocked.post("/v1/search", files={"image": ("q.png", query, "image/png")},
                            data={"alpha": "1.0", "limit": "3"})
    results = response.json()["results"]
    assert results[0]["product_id"] == "p7" and results[0]["score"] > 0.999


def test_search_by_text_and_image_mixes_both(stocked):
    query = image_bytes(COLOURS[5 % 4], seed=5)

    def scores(**form) -> dict[str, float]:
        files = {"image": ("q.png", query, "image/png")} if form.pop("image", False) else None
        response = stocked.post("/v1/search", files=files,
                                data={**form, "limit": "24", "mode": "semantic"})
        assert response.status_code == 200, response.text
        return {r["product_id"]: r["score"] for r in response.json()["results"]}

    image_only = scores(image=True, alpha="1")
    text_only = scores(q="green jacket", alpha="0")
    mixed = scores(image=True, q="green jacket", alpha="0.5")
    assert max(image_only, key=image_only.get) == "p5"
    orders = [sorted(s, key=s.get) for s in (image_only, text_only, mixed)]
    assert orders[0] != orders[1]  # two queries to tell apart
    assert len(mixed) == len(image_only) == len(text_only) == 24  # every product
    # Half and half: cos(q, p) = (image + text) / |image + text| for every product p, so
    # each mixed score is the sum of the two, times one factor (1/|i + t|, at least 1/2).
    blend = {p: image_only[p] + text_only[p] for p in mixed}
    factor = sum(mixed[p] * blend[p] for p in mixed) / sum(b * b for b in blend.values())
    assert factor >= 0.5 - 1e-4
    assert all(abs(mixed[p] - factor * blend[p]) < 1e-4 for p in mixed), (factor, mixed, blend)
    assert orders[2] not in orders[:2]
    assert mixed["p5"] < 0.999  # no longer a pure image match


def ids_of(body):
    return [r["product_id"] for r in body["results"]]


def test_search_by_product_id_and_negative_text(stocked):
    by_id = stocked.post("/v1/search", data={"product_id": "p3", "alpha": "1", "limit": "2"})
    assert ids(by_id)[0] == "p3"
    with_negative = stocked.post("/v1/search", data={"product_id": "p3", "alpha": "1",
                                                     "negative": "red", "limit": "2"}).json()
    assert with_negative["results"][0]["score"] < 0.999


@pytest.mark.parametrize("params,check", [
    ({"colour": "red"}, lambda p: p["colour"] == "red"),
    ({"category": "Jeans"}, lambda p: p["category"] == "Jeans"),
    ({"gender": "Women"}, lambda p: p["gender"] == "Women"),
    ({"brand": "Zeta"}, lambda p: p["brand"] == "Zeta"),
    ({"price_min": 50, "price_max": 100}, lambda p: 50 <= p["price"] <= 100),
    ({"colour": ["red", "blue"], "category": "Dresses"},
     lambda p: p["colour"] in ("red", "blue") and p["category"] == "Dresses"),
])
def test_each_filter_narrows(stocked, params, check):
    everything = stocked.get("/v1/search", params={"q": "dress", "limit": 100}).json()["results"]
    narrowed = stocked.get("/v1/search", params={"q": "dress", "limit": 100, **params}
                           ).json()["results"]
    expected = [r for r in everything if check(r["product"])]
    assert 0 < len(narrowed) < len(everything)
    assert all(check(r["product"]) for r in narrowed)
    assert sorted(r["product_id"] for r in narrowed) == sorted(r["product_id"] for r in expected)


def test_facets_add_up_under_filters(stocked):
    facets = stocked.get("/v1/facets").json()
    assert facets["total"] == 24
    assert facets["facets"]["colour"] == dict.fromkeys(COLOURS, 6)
    assert sum(facets["facets"]["category"].values()) == 24
    red = stocked.get("/v1/facets", params={"colour": "red"}).json()
    assert red["total"] == 6 and red["facets"]["colour"] == {"red": 6}
    assert sum(red["facets"]["category"].values()) == 6


def test_pagination_has_no_duplicates(stocked):
    seen = []
    offset = 0
    while offset is not None:
        body = stocked.get("/v1/search", params={"q": "shirt", "limit": 5,
                                                 "offset": offset}).json()
        seen += ids_of(body)
        offset = body["next_offset"]
    assert len(seen) == 24 and len(set(seen)) == 24


def test_min_score_cuts_off(stocked):
    semantic = {"q": "shirt", "limit": 100, "mode": "semantic"}
    all_hits = stocked.get("/v1/search", params=semantic).json()["results"]
    cutoff = sorted(r["score"] for r in all_hits)[12]
    kept = stocked.get("/v1/search", params={**semantic, "min_score": cutoff}
                       ).json()["results"]
    assert 0 < len(kept) < 24 and all(r["score"] >= cutoff for r in kept)


def test_similar_excludes_the_product_itself(stocked):
    results = ids(stocked.get("/v1/products/p2/similar", params={"limit": 23}))
    assert "p2" not in results and len(results) == 23
    filtered = stocked.get("/v1/products/p2/similar", params={"colour": "blue"}).json()
    assert all(r["product"]["colour"] == "blue" for r in filtered["results"])


def test_delete_removes_from_results(stocked):
    assert stocked.delete("/v1/products/p4").status_code == 204
    assert stocked.get("/v1/products/p4").status_code == 404
    assert "p4" not in ids(stocked.get("/v1/search", params={"q": "x", "limit": 100}))
    assert stocked.get("/v1/facets").json()["total"] == 23


def test_reupload_overwrites_instead_of_duplicating(client):
    ingest(client, "dup", colour="red")
    ingest(client, "dup", image_bytes("blue", seed=3), colour="blue")
    assert client.get("/v1/facets").json()["total"] == 1
    assert client.get("/v1/products/dup").json()["colour"] == "blue"


def test_metadata_update_without_reencoding(client):
    ingest(client, "meta", colour="red", price=10)
    services = client.app.state.services
    calls = []
    original = services.encoder.encode_images
    services.encoder.encode_images = lambda images, **kw: calls.append(len(images)) or original(
        images, **kw)
    try:
        ingest(client, "meta", colour="red", price=12)  # same image, new price
    finally:
        services.encoder.encode_images = original
    assert calls == []
    assert client.get("/v1/products/meta").json()["price"] == 12


def test_patch_changes_fields(client):
    ingest(client, "x1", colour="red", price=10)
    response = client.patch("/v1/products/x1", json={"price": 20, "colour": "blue"})
    assert response.status_code == 200 and response.json()["price"] == 20
    assert client.get("/v1/search", params={"q": "x", "colour": "blue"}).json()["results"]
    assert client.patch("/v1/products/x1", json={"price": "cheap"}).status_code == 422
    assert client.patch("/v1/products/x1", json={"sizes": [1]}).status_code == 422
    assert client.patch("/v1/products/nope", json={"price": 1}).status_code == 404


def test_batch_item_fails_alone(client):
    metadata = [{"id": "good", "colour": "red"}, {"id": "bad-image"},
                {"id": "bad meta!", "price": -1}, {"id": "good2", "price": "free"}]
    files = [("images", ("a.png", image_bytes(), "image/png")),
             ("images", ("b.png", b"not an image at all", "image/png")),
             ("images", ("c.png", image_bytes(), "image/png")),
             ("images", ("d.png", image_bytes(), "image/png"))]
    response = client.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                           files=files)
    assert response.status_code == 202 and response.json()["rejected"] == 3
    job = wait_job(client, response.json()["job_id"])
    assert job["state"] == "done" and job["succeeded"] == 1 and job["failed"] == 3
    reasons = {e["index"]: e["error"] for e in job["errors"]}
    assert "not an image" in reasons[1]
    assert "id" in reasons[2] and "price" in reasons[2]
    assert "price" in reasons[3]
    assert client.get("/v1/facets").json()["total"] == 1


@pytest.mark.parametrize("metadata,needle", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "JSON object"),
    ('{"id": "ok", "price": "ten"}', "price"),
    ('{"id": "ok", "colour": "red", "size": "M"}', "size"),
    ('{"title": "no id"}', "id"),
])
def test_bad_metadata_is_refused_with_reason(client, metadata, needle):
    response = client.post("/v1/products", data={"metadata": metadata},
                           files={"image": ("p.png", image_bytes(), "image/png")})
    assert response.status_code == 422 and needle in response.text


def test_unknown_things_are_404(client):
    assert client.get("/v1/products/ghost").status_code == 404
    assert client.delete("/v1/products/ghost").status_code == 404
    assert client.get("/v1/products/ghost/similar").status_code == 404
    assert client.get("/v1/jobs/nope").status_code == 404
    response = client.post("/v1/search", data={"product_id": "ghost"})
    assert response.status_code == 404 and "ghost" in response.text


def test_search_needs_a_query(client):
    assert client.post("/v1/search", data={"limit": "3"}).status_code == 422
    assert client.get("/v1/search").status_code == 422
    assert client.get("/v1/search", params={"q": "x", "limit": 1000}).status_code == 422


def test_whole_body_limit(tmp_path, tiny_encoder):
    from api.settings import ApiSettings
    from vitrine.wiring import build_services, create_api

    services = build_services(CatalogueSettings(data_dir=tmp_path), encoder=tiny_encoder)
    app = create_api(ApiSettings(max_body_bytes=50_000), services)
    with TestClient(app) as c:
        # Each part is small; together they exceed the cap.
        files = [("images", (f"{i}.png", image_bytes(seed=i, size=(96, 96)), "image/png"))
                 for i in range(8)]
        meta = json.dumps([{"id": f"b{i}"} for i in range(8)])
        response = c.post("/v1/products/batch", data={"metadata": meta}, files=files)
        assert response.status_code == 413 and "limit" in response.text
        assert services.jobs.pending_count() == 0


def test_restart_keeps_data_and_jobs(tmp_path, tiny_encoder):
    data = tmp_path / "data"
    with TestClient(make_app(data, tiny_encoder)) as c:
        job = ingest(c, "keep", colour="red")
    with TestClient(make_app(data, tiny_encoder)) as c:
        assert c.get("/v1/products/keep").json()["colour"] == "red"
        assert c.get(f"/v1/jobs/{job['id']}").json()["state"] == "done"
        assert c.get("/v1/facets").json()["total"] == 1


def test_interrupted_job_resumes_after_restart(tmp_path, tiny_encoder):
    """An upload accepted but not processed when the process died is indexed on restart."""
    from catalogue.ingest import Upload
    from vitrine.wiring import build_services

    data = tmp_path / "data"
    services = build_services(CatalogueSettings(data_dir=data), encoder=tiny_encoder)
    job_id = services.ingest.accept([Upload({"id": "late"}, [image_bytes()])]).job_id
    services.jobs.claim(10)  # taken by a worker that then "dies"
    services.close()
    with TestClient(make_app(data, tiny_encoder)) as c:
        assert wait_job(c, job_id)["state"] == "done"
        assert c.get("/v1/products/late").status_code == 200


def test_health(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["dim"] == 16
