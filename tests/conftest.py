"""Shared fixtures: tiny models the tests make themselves, and an app on a temp data folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from embedding.architecture import Architecture
from embedding.encoder import Encoder
from testkit import demo_model as demo_model_kit
from testkit.api import make_app
from testkit.demo_model import DemoModel
from testkit.models import CORPUS, make_random_model

# Tiny random models score prompts at random, so moderation and auto-tagging would flag
# and tag at random: they are off unless a test turns them on (enrichers_on), on a demo model.
os.environ.setdefault("VITRINE_MODERATION_ENABLED", "false")
os.environ.setdefault("VITRINE_TAGGING_ENABLED", "false")


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


@pytest.fixture
def client(tmp_path, tiny_encoder):
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as c:
        yield c


# ---------------------------------------------------------------- a demo model for behaviour tests

_trainer: subprocess.Popen | None = None


def pytest_collection_modifyitems(session, config, items):
    """A session with tests on the demo model starts training it now (unless it is made,
    testkit.demo_model) and runs the modules that use it last, so that the others run
    meanwhile. Each module's tests keep their order and stay together."""
    global _trainer
    later = {item.path for item in items if "demo_model" in item.fixturenames}
    if later:
        items.sort(key=lambda item: item.path in later)  # stable: order kept within
        _trainer = demo_model_kit.start_training(
            demo_model_kit.folder().parent / "training.log")


def pytest_sessionfinish(session):
    if _trainer is not None and _trainer.poll() is None:
        _trainer.terminate()
        _trainer.wait()


@pytest.fixture(scope="session")
def demo_model() -> DemoModel:
    """A small CLIP trained on a generated catalogue with prohibited images
    (testkit.demo_model): made once per version of the code that shapes it."""
    return demo_model_kit.ensure()


@pytest.fixture(scope="session")
def demo_encoder(demo_model) -> Encoder:
    return Encoder(model=str(demo_model.model))
