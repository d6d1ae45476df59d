"""Vectors versioned by model: each model's own store, one live version, no mixing; a
reindex into another model while uploads continue and search answers; a crash mid-way
resumes; rollback; a store from before versions adopted."""

import dataclasses
import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalogue.attributes import DEFAULT_SCHEMA
from catalogue.keywords import Keywords
from catalogue.reindex import Reindexer
from catalogue.settings import CatalogueSettings
from catalogue.store.base import Sparse, StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.versions import ModelMismatch, ModelVersion, Versions
from embedding.architecture import Architecture
from embedding.encoder import Encoder
from testkit.api import make_app, upload, wait_job
from testkit.images import image_bytes
from testkit.models import CORPUS, make_random_model
from vitrine import models
from vitrine.wiring import build_services, open_store, refresh_keywords


@pytest.fixture(scope="module")
def wide_encoder(tmp_path_factory) -> Encoder:
    """Another model, with another vector size (24 against the tiny CLIP's 16)."""
    arch = dataclasses.replace(Architecture.tiny("clip"), embed_dim=24)
    return Encoder(model=str(make_random_model(tmp_path_factory.mktemp("wide"), arch, CORPUS,
                                               seed=3)))


@pytest.fixture(scope="module")
def twin_encoder(tmp_path_factory) -> Encoder:
    """Another model of the same vector size: its vectors must not mix with the first's."""
    return Encoder(model=str(make_random_model(tmp_path_factory.mktemp("twin"),
                                               Architecture.tiny("clip"), CORPUS, seed=9)))


def add(client, product_id, seeds=(0,)):
    files = [("images", (f"{s}.png", image_bytes(seed=s), "image/png")) for s in seeds]
    response = client.post("/v1/products", files=files, data={"metadata": json.dumps(
        {"id": product_id, "title": f"shirt {product_id}"})})
    assert wait_job(client, response.json()["job_id"])["state"] == "done"


def live(data):
    return Versions(data / "jobs.sqlite3").live()


def test_each_model_has_its_own_store_and_another_refuses_to_start(tmp_path, tiny_encoder,
                                                                     twin_encoder):
    data = tmp_path / "data"
    with TestClient(make_app(data, tiny_encoder)) as client:
        add(client, "p1")
    version = ModelVersion.of(tiny_encoder)
    assert live(data).id == version.id and (data / "qdrant" / version.id).is_dir()
    with TestClient(make_app(data, tiny_encoder)) as client:  # same model: fine
        assert client.get("/v1/products/p1").status_code == 200
    assert ModelVersion.of(twin_encoder).id != version.id  # same size, other weights
    with pytest.raises(ModelMismatch, match="vitrine reindex --model"):
        build_services(CatalogueSettings(data_dir=data), encoder=twin_encoder)


def test_reindex_while_uploads_continue_then_rollback(tmp_path, tiny_encoder, wide_encoder,
                                                     monkeypatch):
    data = tmp_path / "data"
    settings = CatalogueSettings(data_dir=data)
    with TestClient(make_app(data, tiny_encoder)) as client:
        for i in range(12):
            add(client, f"p{i}", seeds=(i, 100 + i) if i % 3 == 0 else (i,))
        services = client.app.state.services
        versions = Versions(data / "jobs.sqlite3")
        old, new = versions.live(), versions.add(ModelVersion.of(wide_encoder))
        target = open_store(settings, wide_encoder.dim, DEFAULT_SCHEMA, new)
        reindexer = Reindexer(settings, services.store, target, wide_encoder, services.media,
                              Keywords(DEFAULT_SCHEMA))
        answered, done = [], threading.Event()

        def keep_searching():
            while not done.is_set():
                answered.append(client.get("/v1/search", params={"q": "shirt"}).status_code)

        searching = threading.Thread(target=keep_searching)
        searching.start()
        original_upsert, uploaded = target.upsert, []

        def upsert_then_upload(points):  # an upload and an edit land during the reindex
            original_upsert(points)
            if not uploaded:
                uploaded.append(1)
                add(client, "late", seeds=(50,))
                client.patch("/v1/products/p1", json={"title": "edited"})
                client.delete("/v1/products/p2")

        target.upsert = upsert_then_upload
        try:
            progress = reindexer.run(versions, new)
        finally:
            done.set()
            searching.join()
        assert answered and set(answered) == {200}
        assert versions.live().id == new.id and progress.failed == 0
        ids = {p.payload["product_id"]: p for p in Reindexer.all_points(target)}
        assert sorted(ids) == sorted([f"p{i}" for i in range(12) if i != 2] + ["late"])
        assert ids["p1"].payload["title"] == "edited"
        [p0] = target.retrieve([ids["p0"].id], with_vectors=True)
        assert p0.vector.shape == (2, 24)  # both photos, the new model's size
        assert services.store.count() == target.count()  # the old version untouched
        target.close()
    monkeypatch.setenv("VITRINE_DATA_DIR", str(data))
    assert models.use(old.id, say=lambda _: None) == 0 and live(data).id == old.id
    assert models.remove(old.id, say=lambda _: None) == 2  # live: refused
    assert models.remove(new.id, say=lambda _: None) == 0
    assert not (data / "qdrant" / new.id).exists()


def test_a_crash_mid_reindex_leaves_the_live_version_and_resumes(tmp_path, tiny_encoder,
                                                                   wide_encoder, monkeypatch):
    data = tmp_path / "data"
    with TestClient(make_app(data, tiny_encoder)) as client:
        for i in range(150):  # three pages
            add(client, f"p{i}", seeds=(i,)) if i < 3 else None
        services = client.app.state.services
        rows = services.store.retrieve([services.store.scroll(limit=1)[0][0].id],
                                       with_vectors=True)[0]
        more = [dataclasses.replace(rows, id=f"00000000-0000-0000-0000-{i:012d}",
                                    payload={**rows.payload, "product_id": f"q{i}"})
                for i in range(147)]
        services.store.upsert(more)
    monkeypatch.setenv("VITRINE_DATA_DIR", str(data))
    monkeypatch.setenv("VITRINE_MODEL", tiny_encoder.model_id)
    calls = []
    real = Encoder.encode_images

    def crash_on_second_page(self, images):
        calls.append(len(images))
        if self.model_id == wide_encoder.model_id and len(calls) == 2:
            raise RuntimeError("killed")
        return real(self, images)

    monkeypatch.setattr(Encoder, "encode_images", crash_on_second_page)
    with pytest.raises(RuntimeError, match="killed"):
        models.reindex(wide_encoder.model_id, say=lambda _: None)
    versions = Versions(data / "jobs.sqlite3")
    assert versions.live().id == ModelVersion.of(tiny_encoder).id
    said = []
    assert models.reindex(wide_encoder.model_id, say=said.append) == 0
    assert said[-1].startswith(f"{ModelVersion.of(wide_encoder).id} is live: 86 products encoded")
    # 150 products: the first page of 64 was kept from the crashed run, not encoded again
    assert versions.live().id == ModelVersion.of(wide_encoder).id
    assert models.list_versions(say=said.append) == 0 and said[-2].startswith(" ")


def test_a_server_alias_names_the_live_collection(tmp_path):
    from catalogue.store.base import StoredPoint
    from catalogue.store.server import ServerStore, client_for

    client = client_for(str(tmp_path / "qdrant"))
    old, new = (ServerStore(client, name, 4) for name in ("products-v1", "products-v2"))
    new.upsert([StoredPoint("00000000-0000-0000-0000-000000000001", {"product_id": "x"},
                            np.ones((1, 4)) / 2)])
    old.publish("products")
    assert client.count("products").count == 0
    new.publish("products")  # moved in one operation
    assert client.count("products").count == 1
    client.close()


def test_keyword_vectors_of_older_word_rules_are_rewritten_once_at_start(tmp_path,
                                                                        tiny_encoder):
    """A store whose words were written before hyphenated words were joined up ("T-Shirt"
    kept as "t" and "shirt" only) is found by "t-shirt" again after a restart; and a
    restart with a shop's synonyms rewrites them too."""
    data = tmp_path / "data"

    def keyword_ids(client, q: str = "t-shirt") -> list[str]:
        body = client.get("/v1/search", params={"q": q, "mode": "keyword"}).json()
        return [r["product"]["id"] for r in body["results"]]

    with TestClient(make_app(data, tiny_encoder)) as client:
        response = upload(client, "p1", title="Striped T-Shirt")
        assert wait_job(client, response.json()["job_id"])["state"] == "done"
        assert keyword_ids(client) == ["p1"]
        services = client.app.state.services
        keywords = services.products.keywords
        stored = services.store.get(point_id("p1"))
        older = keywords.model.embed_document(keywords.words(stored.payload))  # no compounds
        services.store.set_texts({stored.id: Sparse(list(older.indices), list(older.values))})
        assert keyword_ids(client) == []
        version = live(data).id
        versions = Versions(data / "jobs.sqlite3")
        assert versions.keyword_scheme(version) == keywords.scheme
        versions.set_keyword_scheme(version, "1 english")
        versions.close()
    with TestClient(make_app(data, tiny_encoder)) as client:
        assert keyword_ids(client) == ["p1"]
        services = client.app.state.services
        versions = Versions(data / "jobs.sqlite3")
        assert versions.keyword_scheme(version) == keywords.scheme
        assert refresh_keywords(versions, live(data), services.products) == 0  # once only
        versions.close()
        assert keyword_ids(client, "tee") == []
    with TestClient(make_app(data, tiny_encoder, synonyms="tee tshirt")) as client:
        assert keyword_ids(client, "tee") == ["p1"]



def test_a_shard_from_before_versions_is_adopted_with_what_it_knows(tmp_path, tiny_encoder):
    """A shard written straight into the data folder's qdrant/ (before model versions) is
    moved into the configured model's version folder at start: its products, and its
    marker saying each brought one photo (without it, every search would score them as
    if they had several)."""
    data = tmp_path / "data"
    settings = CatalogueSettings(data_dir=data)
    version = ModelVersion.of(tiny_encoder)
    old = EdgeStore(settings.shard_dir, tiny_encoder.dim)
    vector = np.eye(tiny_encoder.dim, dtype=np.float32)[:1]
    old.upsert([StoredPoint(point_id("p1"), {"product_id": "p1", "title": "shirt",
                                             "model": tiny_encoder.model_id,
                                             "moderation_status": "visible"}, vector)])
    assert old.photos == 1
    old.close()
    services = build_services(settings, encoder=tiny_encoder)
    try:
        assert services.store.folder == settings.shard_dir / version.id
        assert services.store.count() == 1
        assert services.store.photos == 1
    finally:
        services.close()


def test_replicas_starting_together_record_one_version_and_its_scheme():
    """API replicas starting at once on one PostgreSQL write the same rows: the version,
    its keyword scheme, its product count. While one replica's insert of a row is not yet
    committed, another's write of it waits and then succeeds, where it failed on the
    duplicate key and that replica never started."""
    import psycopg

    from testkit.postgres import postgres_schema

    version = ModelVersion("tiny-1", "tiny", 16, "p")
    rows = [("INSERT INTO model_versions (id, model, dim, preprocess, created_at, state) "
             "VALUES ('tiny-1', 'tiny', 16, 'p', 0, 'building')", lambda v: v.add(version)),
            ("INSERT INTO model_version_keywords (id, scheme) VALUES ('tiny-1', 'old')",
             lambda v: v.set_keyword_scheme(version.id, "new")),
            ("INSERT INTO model_version_products (id, products, counted_at) "
             "VALUES ('tiny-1', 1, 0)", lambda v: v.set_products(version.id, 3))]
    with postgres_schema("versions") as url:
        replica = Versions(url)
        with psycopg.connect(url) as other, psycopg.connect(url, autocommit=True) as watch:
            for insert, write in rows:
                other.execute(insert)  # the other replica's row, not yet committed
                failed: list[BaseException] = []

                def run(write=write, failed=failed):
                    try:
                        write(replica)
                    except BaseException as e:  # noqa: BLE001 - reported below
                        failed.append(e)

                writer = threading.Thread(target=run)
                writer.start()
                deadline = time.monotonic() + 30
                while not watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted"
                                        ).fetchone()[0]:
                    assert time.monotonic() < deadline, "the write never waited for the row"
                    time.sleep(0.05)
                other.commit()
                writer.join(30)
                assert failed == [], f"{insert.split('(')[0]}: {failed}"
        assert replica.get("tiny-1").products == 3
        assert replica.keyword_scheme("tiny-1") == "new"
