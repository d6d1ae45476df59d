"""Feeds with photo URLs, through the HTTP API: photos fetched by the ingest worker from a
local server (slow, missing, flaky, oversized, looping, private), a re-import that changes
nothing encodes nothing, changes touch only what changed, and pruning removes exactly
the products the feed dropped."""

import csv
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from testkit.api import make_app, wait_job
from testkit.images import image_bytes

FAST = {"fetch_allow_private": True, "fetch_read_timeout": 0.5, "fetch_connect_timeout": 0.5,
        "fetch_retries": 1, "fetch_backoff": 0.01, "max_image_bytes": 200_000}


class PhotoServer(ThreadingHTTPServer):
    """Serves /p/<seed>.png, and misbehaves on /slow, /404, /flaky, /huge and /loop."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server: PhotoServer = self.server  # type: ignore[assignment]
        with server.lock:
            n = server.hits[self.path] = server.hits.get(self.path, 0) + 1
        if self.path.startswith("/p/"):  # /p/<seed>.png, any query string ignored
            seed = int(self.path[3:].split(".")[0])
            return self.send(200, image_bytes(seed=seed, size=(96, 96)))
        if self.path == "/slow":
            time.sleep(2)
            return self.send(200, image_bytes(seed=1))
        if self.path == "/flaky" and n == 1:
            return self.send(500, b"try again")
        if self.path == "/flaky":
            return self.send(200, image_bytes(seed=77, size=(96, 96)))
        if self.path == "/huge":
            return self.send(200, b"\x89PNG" + bytes(300_000))
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return None
        return self.send(404, b"no such photo")

    def send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def photos():
    server = PhotoServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


HEADER = ["id", "item_group_id", "title", "description", "link", "image_link",
          "additional_image_link", "price", "availability", "brand", "color", "size"]


def feed(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows([[row.get(h, "") for h in HEADER] for row in rows])
    return out.getvalue().encode()


def items(base, title_b="Plain shirt", with_a=True):
    a = [{"id": "A-red", "item_group_id": "A", "title": "Summer dress",
          "description": "<p>Light <b>cotton</b></p>", "link": "https://shop.example/a",
          "image_link": f"{base}/p/1.png", "additional_image_link": f"{base}/p/2.png",
          "price": "49.90 EUR", "availability": "in_stock", "color": "Red", "size": "M"},
         {"id": "A-blue", "item_group_id": "A", "title": "Summer dress",
          "image_link": f"{base}/p/3.png", "price": "44.90 EUR", "availability": "out_of_stock",
          "color": "Blue", "size": "M"}]
    b = [{"id": "B", "title": title_b, "image_link": f"{base}/p/4.png",
          "additional_image_link": f"{base}/404,{base}/flaky,{base}/slow,{base}/huge,{base}/loop",
          "price": "19.00 EUR", "availability": "in_stock"}]
    c = [{"id": "C", "title": "Lost photo", "image_link": f"{base}/404", "price": "5.00 EUR",
          "availability": "in_stock"}]
    return (a if with_a else []) + b + c


def run_import(client, body: bytes, prune=False) -> dict:
    response = client.post("/v1/imports", files={"archive": ("feed.tsv", body, "text/plain")},
                           data={"prune": json.dumps(prune)})
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["job_id"], timeout=60)


def test_a_feed_syncs_photo_by_photo(tmp_path, tiny_encoder, photos, monkeypatch):
    with TestClient(make_app(tmp_path / "data", tiny_encoder, **FAST)) as client:
        job = run_import(client, feed(items(photos.base)))
        assert (job["added"], job["failed"], job["succeeded"]) == (2, 1, 2), job
        warnings = " ".join(w["error"] for w in job["warnings"])
        for path, reason in [("/404", "HTTP 404"), ("/slow", ""), ("/huge", "larger than"),
                             ("/loop", "redirect")]:
            assert f"{photos.base}{path}" in warnings and reason in warnings, warnings
        assert f"{photos.base}/flaky" not in warnings and photos.hits["/flaky"] == 2
        assert "HTTP 404" in job["errors"][0]["error"] and job["errors"][0]["product_id"] == "C"
        a = client.get("/v1/products/A").json()
        assert [i["url"] for i in a["images"]] == [f"{photos.base}/p/{n}.png" for n in (1, 2, 3)]
        assert [(v["sku"], v["colour"], v["price"], v["availability"], v["image"])
                for v in a["variants"]] == [("A-red", "Red", 49.9, "in_stock", 0),
                                            ("A-blue", "Blue", 44.9, "out_of_stock", 2)]
        assert a["description"] == "Light cotton" and a["currency"] == "EUR"
        assert len(client.get("/v1/products/B").json()["images"]) == 2  # p/4 and flaky

        encoder = client.app.state.services.encoder
        encoded, original = [], encoder.encode_images
        monkeypatch.setattr(encoder, "encode_images",
                            lambda images: encoded.append(len(images)) or original(images))
        fetched = dict(photos.hits)
        again = run_import(client, feed(items(photos.base)))
        assert (again["unchanged"], again["added"], again["updated"]) == (2, 0, 0), again
        assert encoded == []
        indexed = [f"/p/{n}.png" for n in (1, 2, 3, 4)] + ["/flaky"]
        assert all(photos.hits[p] == fetched[p] for p in indexed)  # not fetched again

        changed = run_import(client, feed(items(photos.base, "Striped shirt", with_a=False)),
                             prune=True)
        assert (changed["updated"], changed["removed"], changed["unchanged"]) == (1, 1, 0)
        assert encoded == []
        assert client.get("/v1/products/B").json()["title"] == "Striped shirt"
        assert client.get("/v1/products/A").status_code == 404
        assert client.get("/v1/products/C").status_code == 404  # never indexed


def test_private_addresses_are_refused_by_default(tmp_path, tiny_encoder, photos):
    guarded = {k: v for k, v in FAST.items() if k != "fetch_allow_private"}
    with TestClient(make_app(tmp_path / "data", tiny_encoder, **guarded)) as client:
        job = run_import(client, feed(items(photos.base)[:1]))
        assert job["failed"] == 1 and "non-public address" in job["errors"][0]["error"]
        assert photos.hits == {}  # nothing reached the server


def test_a_moved_photo_is_fetched_but_not_encoded_again(tmp_path, tiny_encoder, photos,
                                                        monkeypatch):
    with TestClient(make_app(tmp_path / "data", tiny_encoder, **FAST)) as client:
        row = {"id": "M", "title": "Moved", "image_link": f"{photos.base}/p/9.png",
               "price": "9.00 EUR", "availability": "in_stock"}
        assert run_import(client, feed([row]))["added"] == 1
        encoder = client.app.state.services.encoder
        encoded, original = [], encoder.encode_images
        monkeypatch.setattr(encoder, "encode_images",
                            lambda images: encoded.append(len(images)) or original(images))
        moved = {**row, "image_link": f"{photos.base}/p/9.png?cdn=2"}  # same bytes
        job = run_import(client, feed([moved]))
        assert job["updated"] == 1 and encoded == []
        assert photos.hits["/p/9.png?cdn=2"] == 1
        assert client.get("/v1/products/M").json()["images"][0]["url"].endswith("?cdn=2")
