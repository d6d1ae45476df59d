"""Backup and restore of the local profile (catalogue.backup): a backup made through the API
while uploads are still being ingested restores into a fresh folder as the same products
(ids and payloads), the same search results and no lost job; a damaged backup, a folder
that is not empty and another model are refused with a message naming the problem."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from catalogue.backup import (
    BackupCorrupt,
    BackupModelMismatch,
    RestoreRefused,
    read_manifest,
    restore_backup,
)
from catalogue.jobs import JobStore
from catalogue.settings import CatalogueSettings
from catalogue.versions import ModelMismatch, ModelVersion
from embedding.encoder import Encoder
from testkit.api import ingest, upload, wait_job
from testkit.images import image_bytes
from testkit.threaded import serve_in_thread
from vitrine import cli
from vitrine.wiring import build_services, create_api

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "grey"]
QUERIES = ["red dress", "blue shirt", "green jacket", "product p3"]


class Gate:
    """An enricher that holds ingest mid-batch (items claimed, running) until opened."""

    def __init__(self):
        self.open, self.entered = threading.Event(), threading.Event()
        self.open.set()

    def __call__(self, payloads, mains):
        self.entered.set()
        assert self.open.wait(30), "the gate was never opened"


def serving(data_dir: Path, encoder: Encoder, backup_dir: Path, gate: Gate | None = None,
            **settings):
    services = build_services(CatalogueSettings(data_dir=data_dir, backup_dir=backup_dir,
                                                **settings), encoder=encoder)
    if gate:
        services.ingest.enrichers.append(gate)
    return create_api(services=services)


def products_of(client) -> dict[str, dict]:
    """Every product's stored payload, by id, as the store holds it."""
    store = client.app.state.services.store
    points, offset = [], None
    while True:
        page, offset = store.scroll(limit=100, offset=offset)
        points += page
        if offset is None:
            return {p.payload["product_id"]: p.payload for p in points}


def results_of(client) -> dict[str, list]:
    found = {}
    for q in QUERIES:
        for mode in ("semantic", "hybrid"):
            body = client.get("/v1/search", params={"q": q, "mode": mode, "limit": 20}).json()
            found[f"{mode}:{q}"] = [(r["product_id"], round(r["score"], 5))
                                    for r in body["results"]]
    return found


@dataclass
class Backed:
    backup: Path
    products: dict[str, dict]  # the served catalogue once every upload was ingested
    results: dict[str, list]
    jobs: list[str]


@pytest.fixture(scope="module")
def backed(tmp_path_factory, tiny_encoder) -> Backed:
    """Five products ingested, four more uploaded and held mid-ingest (one batch running,
    the rest queued) while `POST /v1/admin/backup` runs; then ingest finishes."""
    root = tmp_path_factory.mktemp("served")
    gate = Gate()
    app = serving(root / "data", tiny_encoder, root / "backups", gate, ingest_batch_size=2)
    with TestClient(app) as client:
        jobs = [ingest(client, f"p{i}", image_bytes(COLOURS[i], seed=i), colour=COLOURS[i],
                       category="Dresses")["id"] for i in range(5)]
        gate.open.clear()
        gate.entered.clear()
        for i in range(5, 9):
            response = upload(client, f"p{i}", image_bytes(COLOURS[i], seed=i),
                              colour=COLOURS[i], category="Shirts")
            assert response.status_code == 202, response.text
            jobs.append(response.json()["job_id"])
        assert gate.entered.wait(30)
        response = client.post("/v1/admin/backup", json={"name": "during-ingest"})
        assert response.status_code == 201, response.text
        assert client.post("/v1/admin/backup", json={"name": "during-ingest"}
                           ).status_code == 409
        assert client.post("/v1/admin/backup", json={"name": "../escape"}).status_code == 422
        gate.open.set()
        for job in jobs:
            assert wait_job(client, job)["state"] == "done"
        return Backed(Path(response.json()["path"]), products_of(client), results_of(client),
                      jobs)


def test_the_backup_was_taken_mid_ingest_and_its_manifest_says_what_it_holds(backed):
    manifest = read_manifest(backed.backup)
    counts = manifest["counts"]
    assert counts["products"] == 5 and counts["jobs"] == 9
    assert counts["items"]["done"] == 5
    assert counts["items"].get("running", 0) >= 1  # the held batch
    assert counts["items"].get("running", 0) + counts["items"].get("queued", 0) == 4
    assert counts["originals_missing"] == 0 and counts["originals"] >= 9
    assert manifest["model"]["dim"] == 16
    assert manifest["shard"]["photos"] == 1  # one photo a product: the graph's narrow pool
    for name, entry in manifest["files"].items():
        assert len(entry["sha256"]) == 64 and (backed.backup / name).stat().st_size == \
            entry["bytes"]
    assert {"shard.tar", "jobs.sqlite3", "originals.txt"} <= set(manifest["files"])


def test_restore_gives_the_same_products_results_and_jobs(backed, tmp_path, tiny_encoder):
    data = tmp_path / "restored"
    settings = CatalogueSettings(data_dir=data)
    summary = restore_backup(backed.backup, settings, ModelVersion.of(tiny_encoder))
    assert summary.products == 5
    jobs = JobStore(settings.jobs_db)
    try:  # before serving: what was done is done, the rest waits to run again
        states = {job: jobs.get(job).state.value for job in backed.jobs}
        pending = jobs.pending_count()
    finally:
        jobs.close()
    assert [states[j] for j in backed.jobs[:5]] == ["done"] * 5
    assert all(states[j] in ("queued", "running") for j in backed.jobs[5:])
    assert pending == 4

    app = serving(data, tiny_encoder, tmp_path / "backups")
    with TestClient(app) as client:
        assert client.app.state.services.store.photos == 1  # not unknown, as restored
        restored = products_of(client)
        assert set(restored) == {f"p{i}" for i in range(5)}
        assert restored == {k: backed.products[k] for k in restored}
        media = client.app.state.services.media
        assert all(media.exists(ref["sha256"]) and media.exists(ref["display_sha256"])
                   for payload in restored.values() for ref in payload["images"])
        for job in backed.jobs:  # the runner picks the interrupted uploads up again
            assert wait_job(client, job)["state"] == "done"
        assert products_of(client) == backed.products
        assert results_of(client) == backed.results
        assert client.get("/v1/search", params={"q": "red dress"}).json()["results"]


def test_a_damaged_file_fails_its_checksum_and_nothing_is_written(backed, tmp_path,
                                                                 tiny_encoder):
    configured = ModelVersion.of(tiny_encoder)
    for damage in ("jobs.sqlite3", "shard.tar", "an original"):
        copy = tmp_path / f"copy-{damage.replace(' ', '-')}"
        shutil.copytree(backed.backup, copy)
        if damage == "an original":
            victim = next(p for p in (copy / "media").rglob("*") if p.is_file())
        else:
            victim = copy / damage
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        target = tmp_path / f"data-{copy.name}"
        with pytest.raises(BackupCorrupt, match="does not match its SHA-256") as caught:
            restore_backup(copy, CatalogueSettings(data_dir=target), configured)
        assert str(victim) in str(caught.value)
        assert not target.exists() or not any(target.iterdir())
    missing = tmp_path / "copy-missing"
    shutil.copytree(backed.backup, missing)
    (missing / "jobs.sqlite3").unlink()
    with pytest.raises(BackupCorrupt, match="missing"):
        restore_backup(missing, CatalogueSettings(data_dir=tmp_path / "d"), configured)


def test_a_non_empty_data_folder_is_refused(backed, tmp_path, tiny_encoder):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "jobs.sqlite3").write_text("someone's catalogue")
    with pytest.raises(RestoreRefused, match="not empty"):
        restore_backup(backed.backup, CatalogueSettings(data_dir=target),
                       ModelVersion.of(tiny_encoder))
    assert (target / "jobs.sqlite3").read_text() == "someone's catalogue"


def test_another_model_is_refused_unless_told_to_reindex(backed, tmp_path, tiny_siglip_dir):
    other = Encoder(model=str(tiny_siglip_dir)).load()
    settings = CatalogueSettings(data_dir=tmp_path / "other")
    with pytest.raises(BackupModelMismatch, match="vitrine reindex --model"):
        restore_backup(backed.backup, settings, ModelVersion.of(other))
    assert not settings.data_dir.exists()
    restore_backup(backed.backup, settings, ModelVersion.of(other), allow_model_mismatch=True)
    with pytest.raises(ModelMismatch, match="vitrine reindex"):  # serving it would mix
        build_services(settings, encoder=other)


def test_cli_backs_up_a_stopped_folder_and_restores_it(backed, tmp_path, monkeypatch,
                                                       tiny_clip_dir, tiny_siglip_dir, capsys):
    restored = tmp_path / "from-backup"
    monkeypatch.setenv("VITRINE_MODEL", str(tiny_clip_dir))
    monkeypatch.setenv("VITRINE_DATA_DIR", str(restored))
    assert cli.main(["restore", str(backed.backup)]) == 0
    again = tmp_path / "again"
    assert cli.main(["backup", str(again)]) == 0  # nobody serves `restored`: done here
    assert read_manifest(again)["counts"]["products"] == 5
    assert cli.main(["restore", str(again)]) == 2  # into the same, now full, folder
    assert "not empty" in capsys.readouterr().err
    monkeypatch.setenv("VITRINE_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setenv("VITRINE_MODEL", str(tiny_siglip_dir))
    assert cli.main(["restore", str(again)]) == 2
    assert "vitrine reindex --model" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()
    assert cli.main(["restore", str(again), "--reindex"]) == 0  # restored, then reindexed
    services = build_services(CatalogueSettings(data_dir=tmp_path / "fresh"),
                              encoder=Encoder(model=str(tiny_siglip_dir)))
    try:
        assert services.store.count() == 5
    finally:
        services.close()


def test_cli_asks_a_running_server_for_the_backup(tmp_path, tiny_encoder, monkeypatch, capsys):
    data, backups = tmp_path / "data", tmp_path / "backups"
    with TestClient(serving(data, tiny_encoder, backups)) as client:
        ingest(client, "p1", image_bytes("red"))
    url, stop = serve_in_thread(serving(data, tiny_encoder, backups))
    try:
        monkeypatch.setenv("VITRINE_DATA_DIR", str(data))
        monkeypatch.setenv("VITRINE_BACKUP_DIR", str(backups))
        assert cli.main(["backup", str(tmp_path / "elsewhere"), "--url", url]) == 2
        assert "VITRINE_BACKUP_DIR" in capsys.readouterr().err
        assert cli.main(["backup", str(backups / "nightly"), "--url", url]) == 0
        assert "asking it" in capsys.readouterr().out
    finally:
        stop()
    manifest = json.loads((backups / "nightly" / "manifest.json").read_text())
    assert manifest["counts"]["products"] == 1 and manifest["counts"]["items"] == {"done": 1}


def test_an_upload_finishing_while_the_shard_is_copied_is_not_lost(tmp_path, tiny_encoder):
    """The job database is copied before the shard: an item that ends after that copy is
    still pending in the backup, and the restored server runs it again. (Copied the other
    way round, the backup would call it done while its product is missing.)"""
    gate = Gate()
    app = serving(tmp_path / "data", tiny_encoder, tmp_path / "backups", gate)
    with TestClient(app) as client:
        ingest(client, "p1", image_bytes("red", seed=1))
        gate.open.clear()
        late = upload(client, "p2", image_bytes("blue", seed=2)).json()["job_id"]
        assert gate.entered.wait(30)
        store = client.app.state.services.store
        snapshot = store.snapshot

        def then_finish(archive):
            copied = snapshot(archive)
            gate.open.set()  # p2 is upserted and marked done while the backup goes on
            wait_job(client, late)
            return copied

        store.snapshot = then_finish
        response = client.post("/v1/admin/backup", json={"name": "racing"})
        assert response.status_code == 201, response.text
        assert wait_job(client, late)["state"] == "done"
    data = tmp_path / "restored"
    restore_backup(Path(response.json()["path"]), CatalogueSettings(data_dir=data),
                   ModelVersion.of(tiny_encoder))
    jobs = JobStore(CatalogueSettings(data_dir=data).jobs_db)
    try:
        assert jobs.get(late).state.value in ("queued", "running")
    finally:
        jobs.close()
    with TestClient(serving(data, tiny_encoder, tmp_path / "backups")) as client:
        assert wait_job(client, late)["state"] == "done"
        assert set(products_of(client)) == {"p1", "p2"}


def test_the_cluster_restore_script_refuses_a_damaged_backup(tmp_path):
    """deploy/restore.sh checks checksums before it touches PostgreSQL, Qdrant or S3 (the
    rest of both scripts needs those, which are not here)."""
    import hashlib
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "cluster-backup"
    (src / "qdrant").mkdir(parents=True)
    (src / "jobs.pgdump").write_bytes(b"a dump")
    (src / "qdrant" / "node-0.snapshot").write_bytes(b"a snapshot")
    subprocess.run("find . -type f -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS",
                   shell=True, cwd=src, check=True)
    (src / "manifest.json").write_text(json.dumps({
        "format": "vitrine-cluster-backup/1", "collection": "products-x",
        "model": {"version": "x", "model": "m", "dim": 16},
        "counts": {"products": 0, "originals": 0},
        "SHA256SUMS": hashlib.sha256((src / "SHA256SUMS").read_bytes()).hexdigest()}))
    env = {**os.environ, "VITRINE_JOBS_URL": "postgresql://127.0.0.1:1/none"}
    for script in ("backup.sh", "restore.sh"):
        assert subprocess.run(["bash", "-n", root / "deploy" / script]).returncode == 0
    (src / "jobs.pgdump").write_bytes(b"a dumq")
    run = subprocess.run(["bash", root / "deploy" / "restore.sh", src], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "jobs.pgdump: FAILED" in run.stdout + run.stderr
    assert "the backup is damaged" in run.stderr
    (src / "SHA256SUMS").write_text("tampered\n")
    run = subprocess.run(["bash", root / "deploy" / "restore.sh", src], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "SHA256SUMS does not match" in run.stderr
