"""Driving the API in tests: an app on a temp data folder, uploads, waiting for jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from catalogue.settings import CatalogueSettings
from embedding.encoder import Encoder
from testkit.images import image_bytes
from vitrine.wiring import build_services, create_api


@contextmanager
def enrichers_on() -> Iterator[None]:
    """Moderation and auto-tagging on, for the services built inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITRINE_MODERATION_ENABLED", "true")
        patch.setenv("VITRINE_TAGGING_ENABLED", "true")
        yield


def make_app(data_dir: Path, encoder: Encoder, **settings) -> FastAPI:
    """The local profile's app on `data_dir`, with this encoder; its ingest thread starts
    when a TestClient enters it."""
    catalogue = CatalogueSettings(data_dir=data_dir, **settings)
    return create_api(services=build_services(catalogue, encoder=encoder))


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
