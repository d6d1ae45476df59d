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


def test_eval_and_promote_judge_on_the_live_catalogue(tmp_path, monkeypatch, capsys,
                                                      demo_model, demo_encoder, tiny_encoder):
    """Without --catalogue, eval and promote read the live catalogue's products and stored
    photos, and judge on the candidate's held-out products among them."""
    from catalogue.styles import read_styles
    from testkit.api import ingest
    from training.data import read_split
    from vitrine import cli

    held_out = set(read_split(demo_model.model / "split.json").validation)
    rows = [r for r in read_styles(demo_model.catalogue)
            if r["id"] in held_out and not r.get("moderation")][:40]
    shop = tmp_path / "shop"  # live: the random model, on the demo catalogue's products
    with TestClient(make_app(shop, tiny_encoder)) as client:
        for r in rows:
            photo = (demo_model.catalogue.parent / "images" / f"{r['id']}.jpg").read_bytes()
            ingest(client, r["id"], photo, title=r["productDisplayName"],
                   category=r["articleType"], colour=r["baseColour"])
    monkeypatch.setenv("VITRINE_DATA_DIR", str(shop))
    monkeypatch.setenv("VITRINE_MODEL", tiny_encoder.model_id)

    assert cli.main(["eval", "--model", str(demo_model.model), "--against",
                     "--json", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert f"against {tiny_encoder.model_id} on live catalogue" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["name_mrr"]["queries"] == len(rows)
    assert report["attribute_precision@10"]["low"] > 0  # the trained model is better

    said = []
    assert models.promote(str(demo_model.model), say=said.append) == 0
    assert any("on live catalogue" in line for line in said)
    live = Versions(shop / "jobs.sqlite3").live()
    assert live.id == ModelVersion.of(demo_encoder).id
    assert live.evaluation["report"]["name_mrr"]["queries"] == len(rows)
