"""Model versions over HTTP: a reindex started by `POST /v1/models/reindex` runs in the
background with its progress readable, while search answers and uploads, edits and
deletes continue; the running process then serves the new version (another vector
size) without a restart. One reindex at a time (409); a model that does not load is a
422; the live model itself is a 409."""

import dataclasses
import gc
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from catalogue import reindex
from catalogue.reindex import Reindexer
from catalogue.versions import ModelVersion, Versions
from embedding.architecture import Architecture
from embedding.encoder import Encoder
from testkit.api import make_app, wait_job
from testkit.images import image_bytes
from testkit.models import CORPUS, make_random_model


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory):
    """Another model, with another vector size (24 against the tiny CLIP's 16)."""
    arch = dataclasses.replace(Architecture.tiny("clip"), embed_dim=24)
    return make_random_model(tmp_path_factory.mktemp("wide"), arch, CORPUS, seed=3)


@pytest.fixture
def slow_reindex(monkeypatch):
    """Pages of 4 products, each page to encode taking a while: a reindex of a dozen lasts
    seconds."""
    monkeypatch.setattr(reindex, "PAGE", 4)
    real = Reindexer.encode

    def slowly(self, points, progress):
        if points:
            time.sleep(0.25)
        return real(self, points, progress)

    monkeypatch.setattr(Reindexer, "encode", slowly)


def upload(client, product_id, seed):
    response = client.post("/v1/products", files={"image": ("p.png", image_bytes(seed=seed),
                                                            "image/png")},
                           data={"metadata": json.dumps({"id": product_id,
                                                         "title": f"shirt {product_id}"})})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def wait_reindex(client, job_id, timeout=120.0, seen=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/models/reindex/{job_id}").json()
        if seen is not None:
            seen.append(job)
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"reindex {job_id} did not finish: {job}")


def test_reindex_over_http_while_uploads_continue_then_serves_the_new_version(
        tmp_path, tiny_encoder, wide_dir, slow_reindex):
    data = tmp_path / "data"
    with TestClient(make_app(data, tiny_encoder)) as client:
        for job in [upload(client, f"p{i}", i) for i in range(12)]:
            assert wait_job(client, job)["state"] == "done"
        old_services = client.app.state.services
        answered: list[int] = []
        stop = threading.Event()

        def keep_searching():
            while not stop.is_set():
                for path in ("/v1/search?q=shirt", "/v1/facets", "/v1/products/p0/similar"):
                    answered.append(client.get(path).status_code)

        searching = threading.Thread(target=keep_searching)
        searching.start()
        try:
            started = client.post("/v1/models/reindex", json={"model": str(wide_dir)})
            assert started.status_code == 202, started.text
            job_id = started.json()["id"]
            assert started.json()["state"] in ("queued", "running")
            uploads, during, seen, n = [], 0, [], 0
            while True:
                job = client.get(f"/v1/models/reindex/{job_id}").json()
                seen.append(job)
                if job["state"] in ("done", "failed"):
                    break
                uploads.append(upload(client, f"late{n}", 100 + n))
                during += 1
                n += 1
                if n == 2:  # an edit and a delete while it runs land too
                    assert client.patch("/v1/products/p1",
                                        json={"title": "edited"}).status_code == 200
                    assert client.delete("/v1/products/p2").status_code == 204
                time.sleep(0.3)
            for i in range(3):  # and uploads after the switch, into the new version
                uploads.append(upload(client, f"after{i}", 200 + i))
            for job_id_ in uploads:
                assert wait_job(client, job_id_)["state"] == "done"
            time.sleep(0.3)
        finally:
            stop.set()
            searching.join()

        assert job["state"] == "done", job
        assert job["live"] and job["total"] >= 12 and job["done"] == job["total"]
        assert during >= 2  # uploads really went on while it ran
        running = [j for j in seen if j["state"] == "running"]
        assert running and any(0 < j["done"] < j["total"] for j in running)  # progress
        assert answered and set(answered) == {200}  # search never failed

        services = client.app.state.services
        assert services is not old_services  # swapped in place, no restart
        walked = {id(o) for o in gc.get_objects()}  # the new parts frozen, as the old were
        assert id(services.encoder) not in walked and id(services.store) not in walked
        assert services.encoder.model_id == str(wide_dir) and services.encoder.dim == 24
        wide = ModelVersion.of(Encoder(model=str(wide_dir)).load())
        versions = Versions(data / "jobs.sqlite3")
        assert versions.live().id == wide.id
        assert versions.keyword_scheme(wide.id) == services.products.keywords.scheme
        versions.close()
        points = Reindexer.all_points(services.store)
        ids = [p.payload["product_id"] for p in points]
        expected = {f"p{i}" for i in range(12)} - {"p2"} | {f"late{i}" for i in range(n)} | \
            {f"after{i}" for i in range(3)}
        assert sorted(ids) == sorted(expected)  # each exactly once
        [p1] = [p for p in points if p.payload["product_id"] == "p1"]
        assert p1.payload["title"] == "edited"
        [late] = services.store.retrieve([points[ids.index("late0")].id], with_vectors=True)
        assert late.vector.shape == (1, 24)  # the new model's vectors
        assert client.get("/v1/search", params={"q": "shirt"}).status_code == 200
        assert client.get("/readyz").json()["dim"] == 24

        listed = client.get("/v1/models").json()
        by_id = {v["id"]: v for v in listed["versions"]}
        assert by_id[wide.id]["live"] and by_id[wide.id]["dim"] == 24
        assert by_id[wide.id]["products"] == len(expected)
        old = ModelVersion.of(tiny_encoder)
        assert not by_id[old.id]["live"] and by_id[old.id]["state"] == "ready"
        assert by_id[old.id]["dim"] == 16 and by_id[old.id]["products"] >= 11
        assert listed["reindex"]["id"] == job_id and listed["reindex"]["state"] == "done"


def test_one_reindex_at_a_time_bad_models_refused(tmp_path, tiny_encoder, wide_dir,
                                                  slow_reindex):
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as client:
        for job in [upload(client, f"p{i}", i) for i in range(8)]:
            wait_job(client, job)
        empty = tmp_path / "not-a-model"
        empty.mkdir()
        refused = client.post("/v1/models/reindex", json={"model": str(empty)})
        assert refused.status_code == 422
        assert refused.json()["field"] == "model" and str(empty) in refused.json()["message"]
        assert client.post("/v1/models/reindex", json={"model": " "}).status_code == 422
        assert client.post("/v1/models/reindex", json={}).status_code == 422
        same = client.post("/v1/models/reindex", json={"model": tiny_encoder.model_id})
        assert same.status_code == 409 and "live version already" in same.json()["message"]
        assert client.get("/v1/models").json()["reindex"] is None  # refusals start nothing

        first = client.post("/v1/models/reindex", json={"model": str(wide_dir)})
        assert first.status_code == 202, first.text
        second = client.post("/v1/models/reindex", json={"model": str(wide_dir)})
        assert second.status_code == 409 and second.json()["code"] == "reindex_running"
        assert first.json()["id"] in second.json()["message"]
        seen: list[dict] = []
        job = wait_reindex(client, first.json()["id"], seen=seen)
        assert job["state"] == "done" and job["total"] == 8 and job["done"] == 8
        assert job["encoded"] == 8 and job["version"] == ModelVersion.of(
            Encoder(model=str(wide_dir)).load()).id
        assert client.get("/v1/models/reindex/nope").status_code == 404
        # Done: another may start (back to the first model: its version resumes, complete)
        back = client.post("/v1/models/reindex", json={"model": tiny_encoder.model_id})
        assert back.status_code == 202, back.text
        assert wait_reindex(client, back.json()["id"])["state"] == "done"
        assert client.app.state.services.encoder.dim == 16


def test_a_reindex_that_fails_its_check_leaves_the_live_version_serving(
        tmp_path, tiny_encoder, wide_dir, monkeypatch):
    def fail(self):
        raise reindex.ReindexFailed("the sample was not found")

    monkeypatch.setattr(Reindexer, "check", fail)
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as client:
        wait_job(client, upload(client, "p0", 0))
        before = client.app.state.services
        started = client.post("/v1/models/reindex", json={"model": str(wide_dir)})
        job = wait_reindex(client, started.json()["id"])
        assert job["state"] == "failed" and "the sample was not found" in job["message"]
        assert not job["live"] and client.app.state.services is before
        assert client.get("/readyz").json()["dim"] == 16
        wait_job(client, upload(client, "p1", 1))  # the runner was resumed
        assert before.store.count() == 2


def test_starting_with_another_model_refuses_or_reindexes_as_the_setting_says(
        tmp_path, tiny_encoder, wide_dir, monkeypatch):
    from catalogue.versions import ModelMismatch
    from vitrine.wiring import create_api

    data = tmp_path / "data"
    with TestClient(make_app(data, tiny_encoder)) as client:
        for job in [upload(client, f"p{i}", i) for i in range(6)]:
            assert wait_job(client, job)["state"] == "done"
    monkeypatch.setenv("VITRINE_DATA_DIR", str(data))
    monkeypatch.setenv("VITRINE_MODEL", str(wide_dir))
    with pytest.raises(ModelMismatch, match="vitrine reindex"):  # the default: refuse
        with TestClient(create_api()):
            pass
    monkeypatch.setenv("VITRINE_ON_MODEL_CHANGE", "reindex")
    with TestClient(create_api()) as client:
        assert client.app.state.services.encoder.dim == 16  # the live version serves
        assert client.get("/v1/search", params={"q": "shirt"}).status_code == 200
        deadline = time.monotonic() + 60
        while client.app.state.services.encoder.dim != 24:
            assert time.monotonic() < deadline, client.get("/v1/models").json()
            assert client.get("/v1/search", params={"q": "shirt"}).status_code == 200
            time.sleep(0.1)
        listed = client.get("/v1/models").json()
        live = [v for v in listed["versions"] if v["live"]]
        assert [v["model"] for v in live] == [str(wide_dir)] and live[0]["products"] == 6
        assert listed["reindex"]["state"] == "done"
    with TestClient(create_api()) as client:  # a restart now matches: no reindex
        assert client.app.state.services.encoder.dim == 24
        assert client.get("/v1/models").json()["reindex"] is None
