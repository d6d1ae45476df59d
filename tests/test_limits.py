"""Bodies and keys: refusals before the body is read, and caps answered as 413."""

import json
import socket

import pytest
from fastapi.testclient import TestClient

from api.auth import hash_key
from api.settings import ApiSettings
from catalogue.settings import CatalogueSettings
from testkit.images import image_bytes
from testkit.threaded import serve_in_thread
from vitrine.wiring import build_services, create_api

BOUNDARY = "vitrine-test-boundary"


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             .encode() for name, value in fields.items()]
    parts += [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
              f'filename="{i}.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n"
              for i, (name, data) in enumerate(files)]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def services(tmp_path, tiny_encoder):
    return build_services(CatalogueSettings(data_dir=tmp_path / "data"), encoder=tiny_encoder)


def test_401_comes_before_the_body_is_sent(services):
    """A client without a key announces a 60 MB batch and sends none of it: the server
    answers 401 from the headers alone, instead of waiting to read and spool the body."""
    app = create_api(ApiSettings(api_keys={hash_key("k"): "manager"}), services)
    url, stop = serve_in_thread(app)
    try:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((f"POST /v1/products/batch HTTP/1.1\r\nHost: {host}\r\n"
                          f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                          f"Content-Length: {60 * 1024 * 1024}\r\n\r\n").encode())
            try:
                answer = sock.recv(65536).decode(errors="replace")
            except TimeoutError:
                answer = "(no answer while the body was still to come)"
        assert answer.startswith("HTTP/1.1 401"), answer
        assert "X-API-Key" in answer
    finally:
        stop()


def test_a_chunked_body_over_the_cap_is_413(services):
    """No Content-Length to refuse by: the body is cut off at the cap while the form is
    parsed, and that is a 413 naming the setting, not a 400 'error parsing the body'."""
    app = create_api(ApiSettings(max_body_bytes=50_000), services)
    body = multipart({"metadata": json.dumps([{"id": f"c{i}"} for i in range(8)])},
                     [("images", image_bytes(seed=i, size=(96, 96))) for i in range(8)])
    assert len(body) > 50_000

    def chunks():
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    with TestClient(app) as c:
        response = c.post("/v1/products/batch", content=chunks(), headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert "content-length" not in {k.lower() for k in response.request.headers}
        assert response.status_code == 413, response.text
        assert "VITRINE_MAX_BODY_BYTES" in response.text
        assert services.jobs.pending_count() == 0


def test_two_megabytes_of_batch_metadata_are_accepted(services):
    """Starlette's 1 MB default for a form field would refuse it with a 400."""
    metadata = json.dumps([{"id": "big", "title": "big"}]) + " " * (2 * 1024 * 1024)
    with TestClient(create_api(ApiSettings(), services)) as c:
        response = c.post("/v1/products/batch", data={"metadata": metadata},
                          files=[("images", ("0.png", image_bytes(), "image/png"))])
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 1


def test_metadata_over_the_part_cap_is_413_naming_it(services):
    metadata = json.dumps([{"id": "big", "title": "big"}]) + " " * 200_000
    with TestClient(create_api(ApiSettings(max_part_bytes=100_000), services)) as c:
        response = c.post("/v1/products/batch", data={"metadata": metadata},
                          files=[("images", ("0.png", image_bytes(), "image/png"))])
        assert response.status_code == 413, response.text
        assert "VITRINE_MAX_PART_BYTES" in response.json()["message"]
        assert services.jobs.pending_count() == 0


def test_too_many_files_is_413_naming_the_cap(services):
    files = [("images", (f"{i}.png", image_bytes(), "image/png")) for i in range(3)]
    with TestClient(create_api(ApiSettings(max_files=2), services)) as c:
        response = c.post("/v1/products/batch", files=files, data={
            "metadata": json.dumps([{"id": str(i)} for i in range(3)])})
        assert response.status_code == 413, response.text
        assert "VITRINE_MAX_FILES" in response.json()["message"]
