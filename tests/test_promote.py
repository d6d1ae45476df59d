"""Promote only what measurably helps: a candidate is compared with the live model on the
same held-out products, with bootstrap intervals, and put into service (reindexed) only
when better; its comparison is kept with its version."""

import json

import pytest
from fastapi.testclient import TestClient

from catalogue.versions import ModelVersion, Versions
from testkit.api import make_app, wait_job
from testkit.images import image_bytes
from training.compare import better, compare
from vitrine import models

pytestmark = pytest.mark.slow  # the demo test model, and a catalogue encoded twice


def shop_with(data, encoder, n=6):
    with TestClient(make_app(data, encoder)) as client:
        for i in range(n):
            response = client.post("/v1/products", files={"image": (
                "p.png", image_bytes(seed=i), "image/png")}, data={"metadata": json.dumps(
                    {"id": f"p{i}", "title": f"product {i}"})})
            assert wait_job(client, response.json()["job_id"])["state"] == "done"


def test_a_worse_candidate_is_refused_and_a_better_one_promoted(tmp_path, monkeypatch,
                                                                 demo_model, demo_encoder,
                                                                 tiny_encoder):
    catalogue = str(demo_model.catalogue)
    report = compare(tiny_encoder.model_id, str(demo_model.model), demo_model.catalogue,
                     demo_model.model / "split.json")
    assert not better(report, "attribute_precision@10")
    assert report["attribute_precision@10"]["high"] < 0  # measurably worse

    good = tmp_path / "good"  # live: the trained model; candidate: a random one
    shop_with(good, demo_encoder)
    monkeypatch.setenv("VITRINE_DATA_DIR", str(good))
    said = []
    assert models.promote(tiny_encoder.model_id, catalogue, say=said.append) == 1
    assert "not promoted" in said[-1]
    assert Versions(good / "jobs.sqlite3").live().id == ModelVersion.of(demo_encoder).id

    poor = tmp_path / "poor"  # live: the random model; candidate: the trained one
    shop_with(poor, tiny_encoder)
    monkeypatch.setenv("VITRINE_DATA_DIR", str(poor))
    monkeypatch.setenv("VITRINE_MODEL", tiny_encoder.model_id)
    assert models.promote(str(demo_model.model), catalogue, say=said.append) == 0
    versions = Versions(poor / "jobs.sqlite3")
    live = versions.live()
    assert live.id == ModelVersion.of(demo_encoder).id
    assert live.evaluation["against"] == ModelVersion.of(tiny_encoder).id
    assert live.evaluation["attribute_precision@10"] > 0.5
