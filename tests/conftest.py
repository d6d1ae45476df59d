"""Shared fixtures: tiny models the tests make themselves, and an app on a temp data folder."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from catalogue.settings import CatalogueSettings
from embedding.architecture import Architecture
from embedding.encoder import Encoder
from testkit.images import image_bytes
from testkit.models import CORPUS, make_random_model

# Tiny random models score prompts at random, so moderation and auto-tagging would flag
# and tag at random: they are off unless a test turns them on (enrichers_on), on a demo model.
os.environ.setdefault("VITRINE_MODERATION_ENABLED", "false")
os.environ.setdefault("VITRINE_TAGGING_ENABLED", "false")


@contextmanager
def enrichers_on():
    """Moderation and auto-tagging on, for the services built inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITRINE_MODERATION_ENABLED", "true")
        patch.setenv("VITRINE_TAGGING_ENABLED", "true")
        yield


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


def make_app(data_dir: Path, encoder: Encoder, **settings):
    from catalogue.store.base import VectorStore  # noqa: F401
    from vitrine.wiring import build_services, create_api

    catalogue = CatalogueSettings(data_dir=data_dir, **settings)
    services = build_services(catalogue, encoder=encoder)
    app = create_api(services=services)
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


# ---------------------------------------------------------------- a demo model for behaviour tests

DEMO_TEST_PRODUCTS, DEMO_TEST_PROHIBITED, DEMO_TEST_SEED = 600, 120, 1


@dataclass(frozen=True)
class DemoModel:
    catalogue: Path  # styles.csv; images/<id>.jpg beside it
    model: Path  # a Hugging Face folder with split.json (held-out products) beside the weights


def demo_test_recipe():
    """The demo architecture, trained briefly (about a minute on two quiet cores)."""
    from training.config import DEMO_RECIPE

    return DEMO_RECIPE.arch, DEMO_RECIPE.config.model_copy(update={
        "epochs": 48, "batch_size": 64, "val_fraction": 0.1, "max_minutes": None,
        "progress": False})


def _demo_cache_key(arch, config) -> str:
    """The recipe and the code that makes the data (images and captions): a change to
    either trains a new model. Training code is left out so that refactoring it does not
    cost every run a retraining; its own tests cover it."""
    import hashlib

    import demo
    from catalogue import captions, vocabulary

    digest = hashlib.sha256(repr((arch, config.model_dump(), DEMO_TEST_PRODUCTS,
                                  DEMO_TEST_PROHIBITED, DEMO_TEST_SEED)).encode())
    sources = sorted(Path(demo.__file__).parent.glob("*.py"))
    for path in [*sources, Path(captions.__file__), Path(vocabulary.__file__)]:
        digest.update(f"{path.parent.name}/{path.name}".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def demo_model() -> DemoModel:
    """A small CLIP trained on a generated catalogue with prohibited images, made once per
    version of the code that shapes it and kept under data/test-cache (or
    VITRINE_TEST_CACHE), so later runs load it in a second."""
    import fcntl
    import os
    import shutil

    from demo.generator import generate
    from training.loop import train

    arch, config = demo_test_recipe()
    root = Path(os.environ.get("VITRINE_TEST_CACHE",
                               Path(__file__).resolve().parents[1] / "data" / "test-cache"))
    folder = root / f"demo-model-{_demo_cache_key(arch, config)}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions: one trains, the others wait
        if not (folder / "model" / "config.json").exists():
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            csv_path = generate(partial / "catalogue", n_products=DEMO_TEST_PRODUCTS,
                                seed=DEMO_TEST_SEED, image_size=64,
                                n_prohibited=DEMO_TEST_PROHIBITED, progress=False)
            train(None, csv_path, partial / "model", config, arch)
            partial.rename(folder)
    return DemoModel(folder / "catalogue" / "styles.csv", folder / "model")


@pytest.fixture(scope="session")
def demo_encoder(demo_model) -> Encoder:
    return Encoder(model=str(demo_model.model))
