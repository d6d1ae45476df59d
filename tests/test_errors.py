"""Every error answer has one shape (api.errors.ApiError), and no input reaches a 500:
JSON nested deep or holding NaN/Infinity in a form field, NaN in a JSON body."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.auth import hash_key
from api.errors import ApiError
from api.settings import ApiSettings
from catalogue.jsonsafe import JsonInputError, parse_json
from catalogue.settings import CatalogueSettings
from testkit.api import ingest, make_app
from testkit.images import image_bytes
from vitrine.wiring import build_services, create_api

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000


@pytest.fixture(scope="module")
def shop(tmp_path_factory, tiny_encoder):
    # raise_server_exceptions=False: a 500 is an answer to assert on, not a test crash.
    with TestClient(make_app(tmp_path_factory.mktemp("errors"), tiny_encoder),
                    raise_server_exceptions=False) as c:
        ingest(c, "p1", price=10.0)
        yield c


def assert_error(response, status: int, needle: str = "", field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    ApiError.model_validate(body)
    assert set(body) <= set(ApiError.model_fields), body
    assert needle in body["message"], body
    if field is not None:
        assert body.get("field") == field, body
    return body


def png():
    return ("p.png", image_bytes(), "image/png")


@pytest.mark.parametrize("deep", [DEEP, DEEP_OBJECT], ids=["lists", "objects"])
def test_deep_metadata_in_an_upload_is_a_422(shop, deep):
    response = shop.post("/v1/products", data={"metadata": deep}, files={"image": png()})
    assert_error(response, 422, "nested deeper", field="metadata")


def test_deep_metadata_in_a_batch_is_a_422(shop):
    response = shop.post("/v1/products/batch", data={"metadata": DEEP},
                         files=[("images", png())])
    assert_error(response, 422, "nested deeper", field="metadata")


@pytest.mark.parametrize("name", ["labels", "templates"])
def test_deep_classify_lists_are_a_422(shop, name):
    data = {"labels": '["dress", "coat"]', name: DEEP}
    response = shop.post("/v1/classify", data=data, files={"image": png()})
    assert_error(response, 422, "nested deeper", field=name)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_patch_with_a_non_finite_price_is_a_422(shop, literal):
    response = shop.patch("/v1/products/p1", content=f'{{"price": {literal}}}',
                          headers={"Content-Type": "application/json"})
    body = assert_error(response, 422, "price", field="price")
    assert body["errors"][0]["loc"] == ["body", "price"]
    assert shop.get("/v1/products/p1").json()["price"] == 10.0  # nothing changed


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_in_metadata_are_a_422(shop, literal):
    metadata = f'{{"id": "nan-1", "price": {literal}}}'
    response = shop.post("/v1/products", data={"metadata": metadata}, files={"image": png()})
    assert_error(response, 422, literal, field="metadata")
    assert shop.get("/v1/products/nan-1").status_code == 404


def test_malformed_metadata_names_its_line(shop):
    response = shop.post("/v1/products", data={"metadata": '{"id": "x",\n "title": }'},
                         files={"image": png()})
    assert assert_error(response, 422, "not valid JSON", field="metadata")["line"] == 2


def test_parse_json_bounds_size_depth_and_numbers():
    assert parse_json('{"a": [1, {"b": "[[[[[["}]}', max_depth=3) == {"a": [1, {"b": "[[[[[["}]}
    with pytest.raises(JsonInputError, match="deeper than 3"):
        parse_json("[[[[1]]]]", max_depth=3)
    with pytest.raises(JsonInputError, match="over the limit"):
        parse_json(json.dumps("x" * 100), max_bytes=50)
    with pytest.raises(JsonInputError, match="NaN"):
        parse_json("[1, NaN]")
    assert isinstance(JsonInputError("x"), ValueError)


def test_validation_errors_are_one_sentence_naming_the_fields(shop):
    body = assert_error(shop.get("/v1/search", params={"limit": "many", "offset": "-1"}), 422,
                        "limit: ")
    assert "offset: " in body["message"] and body["field"] == "limit, offset"
    assert {tuple(e["loc"]) for e in body["errors"]} == {("query", "limit"),
                                                         ("query", "offset")}


@pytest.mark.parametrize("method, path, kwargs, status", [
    ("GET", "/v1/products/ghost", {}, 404),
    ("GET", "/v1/jobs/nojob", {}, 404),
    ("DELETE", "/v1/products/ghost", {}, 404),
    ("GET", "/v1/products/ghost/image", {}, 404),
    ("GET", "/v1/search", {}, 422),
    ("GET", "/v1/search", {"params": {"q": "red", "price_max": "inf"}}, 422),
    ("POST", "/v1/search", {"data": {}}, 422),
    ("POST", "/v1/search", {"data": {"product_id": "ghost"}}, 404),
    ("POST", "/v1/search", {"files": {"image": ("x.png", b"not an image", "image/png")}}, 422),
    ("PATCH", "/v1/products/p1", {"json": {}}, 422),
    ("PATCH", "/v1/products/p1", {"json": {"colour": 3, "extra": 1}}, 422),
    ("PATCH", "/v1/products/p1", {"content": "{", "headers": {
        "Content-Type": "application/json"}}, 422),
    ("POST", "/v1/moderation/ghost", {"json": {"decision": "maybe"}}, 422),
    ("POST", "/v1/imports", {"files": {"archive": ("a.zip", b"no zip", "application/zip")}},
     422),
    ("PUT", "/v1/search", {}, 405),
    ("GET", "/nowhere", {}, 404),
])
def test_every_error_answer_has_the_common_shape(shop, method, path, kwargs, status):
    assert_error(shop.request(method, path, **kwargs), status)


def test_role_errors_have_the_common_shape(tmp_path, tiny_encoder):
    settings = ApiSettings(api_keys={hash_key("shop-key"): "shopper"})
    services = build_services(CatalogueSettings(data_dir=tmp_path), encoder=tiny_encoder)
    with TestClient(create_api(settings, services)) as c:
        body = assert_error(c.get("/v1/search", params={"q": "red"}), 401, "X-API-Key")
        assert body["code"] == "unauthorized"
        body = assert_error(c.get("/v1/products", headers={"X-API-Key": "shop-key"}), 403,
                            "manager")
        assert body["code"] == "forbidden"


def test_a_body_over_the_limit_is_a_413_with_the_common_shape(tmp_path, tiny_encoder):
    services = build_services(CatalogueSettings(data_dir=tmp_path), encoder=tiny_encoder)
    with TestClient(create_api(ApiSettings(max_body_bytes=1000), services)) as c:
        response = c.post("/v1/products", data={"metadata": "{}"},
                          files={"image": ("p.png", b"x" * 5000, "image/png")})
        assert_error(response, 413, "limit")


def test_the_schema_documents_errors_and_the_key():
    schema = create_api(ApiSettings()).openapi()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "A shopper's or a catalogue manager's key"}
    error = {"$ref": "#/components/schemas/ApiError"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            public = path in ("/healthz", "/readyz", "/metrics")
            assert ("security" in operation) != public, (method, path)
            for status, answer in operation["responses"].items():
                if status[0] in "45":
                    assert answer["content"]["application/json"]["schema"] == error, (
                        method, path, status)
            if not public:
                assert "401" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"]), (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
