"""Shared fixtures: tiny models the tests make themselves, and an app on a temp data folder."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalogue.settings import CatalogueSettings
from embedding.encoder import Encoder
from embedding.factory import Architecture, make_random_model

CORPUS = ["a red dress with white dots", "black trousers for men", "blue striped shirt",
          "Kleid mit Punkten", "rotes Kleid", "green jacket", "white sneakers"] * 20


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("tiny-clip"), Architecture.tiny("clip"),
                             CORPUS)


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("tiny-siglip"),
                             Architecture.tiny("siglip"), CORPUS)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_clip_dir) -> Encoder:
    return Encoder(model=str(tiny_clip_dir))


def image_bytes(colour="red", size=(64, 64), fmt="PNG", seed: int | None = None) -> bytes:
    """A small product-like picture: a coloured square on white, optionally with noise."""
    image = Image.new("RGB", size, "white")
    inner = Image.new("RGB", (size[0] // 2, size[1] // 2), colour)
    image.paste(inner, (size[0] // 4, size[1] // 4))
    if seed is not None:  # a distinct, reproducible texture per seed
        rng = np.random.default_rng(seed)
        noise = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        image = Image.blend(image, noise, 0.5)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def make_app(data_dir: Path, encoder: Encoder, **settings):
    from api.main import create_app
    from catalogue.services import Services
    from catalogue.store.base import VectorStore  # noqa: F401

    catalogue = CatalogueSettings(data_dir=data_dir, **settings)
    services = Services.build(catalogue, encoder=encoder)
    app = create_app(services=services)
    app.state.owns_services = True
    return app


@pytest.fixture
def client(tmp_path, tiny_encoder):
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as c:
        yield c


def upload(client, product_id, image=None, **fields) -> dict:
    metadata = {"id": product_id, "title": f"product {product_id}", **fields}
    response = client.post("/v1/products", data={"metadata": json.dumps(metadata)},
                           files={"image": ("p.png", image or image_bytes(), "image/png")})
    return response


def wait_job(client, job_id, timeout=30.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def ingest(client, product_id, image=None, **fields) -> dict:
    response = upload(client, product_id, image, **fields)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert job["state"] == "done", job
    return job
