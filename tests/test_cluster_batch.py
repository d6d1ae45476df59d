"""The workers' plain functions, the Celery configuration and the API's dispatch, without
a broker: batching across uploads, suspects alone, idempotency, the sweep, 503 on publish."""

from __future__ import annotations

import time

import pytest

from catalogue.ingest import Ingest, StoreUnavailable, Upload
from catalogue.jobs import JobStore
from catalogue.media import FolderMediaStore
from catalogue.settings import CatalogueSettings
from catalogue.store.base import point_id
from catalogue.store.server import ServerStore
from testkit.images import image_bytes
from workers import batch
from workers.settings import WorkerSettings


@pytest.fixture
def ingest(tmp_path, tiny_encoder):
    store = ServerStore.connect(":memory:", "products", tiny_encoder.dim)
    jobs = JobStore(tmp_path / "jobs.sqlite3")
    yield Ingest(CatalogueSettings(data_dir=tmp_path), tiny_encoder, store,
                 FolderMediaStore(tmp_path / "media"), jobs)
    store.close()
    jobs.close()


def settings(**overrides) -> WorkerSettings:
    return WorkerSettings(**{"batch_size": 8, "batch_wait_ms": 0, **overrides})


class Published(list):
    def __call__(self):
        self.append("task")


def accept(ingest: Ingest, *product_ids: str, seed: int = 0) -> str:
    return ingest.accept([Upload({"id": p, "title": p}, [image_bytes(seed=seed + i)])
                          for i, p in enumerate(product_ids)]).job_id


def test_one_task_batches_the_uploads_of_several_jobs(ingest, monkeypatch):
    calls = []
    encode = ingest.encoder.encode_images
    monkeypatch.setattr(ingest.encoder, "encode_images",
                        lambda images, *a, **k: calls.append(len(images)) or encode(images))
    jobs = [accept(ingest, f"p{i}", seed=i) for i in range(5)]
    assert batch.run_batch(ingest, settings(), "task-1", Published()) == 5
    assert calls == [5]  # one forward pass for five uploads
    assert all(ingest.jobs.get(j).state == "done" for j in jobs)
    assert ingest.store.count() == 5


def test_a_task_waits_for_more_uploads_to_fill_its_batch(ingest, monkeypatch):
    from catalogue import ingest as ingest_module

    accept(ingest, "first")
    real_sleep = ingest_module.time.sleep
    arrivals = iter([lambda: accept(ingest, "second", seed=9)])

    def sleep_while_an_upload_arrives(seconds):  # the second upload lands during the wait
        next(arrivals, lambda: None)()
        real_sleep(seconds)

    monkeypatch.setattr(ingest_module.time, "sleep", sleep_while_an_upload_arrives)
    items = ingest_module.take_batch(ingest.jobs, 8, wait_s=0.5, owner="t")
    assert sorted(i.product_id for i in items) == ["first", "second"]
    assert ingest_module.take_batch(ingest.jobs, 8, wait_s=0.05, owner="t") == []


def test_follow_ups_are_published_while_uploads_are_left(ingest):
    accept(ingest, *[f"p{i}" for i in range(20)])
    published = Published()
    assert batch.run_batch(ingest, settings(batch_size=8), "t", published) == 8
    assert published == ["task", "task"]  # 12 left: two more tasks, not twelve
    published.clear()
    while batch.run_batch(ingest, settings(batch_size=8), None, published):
        pass
    assert ingest.store.count() == 20


def test_a_redelivered_task_recovers_its_items_and_gives_up_on_poison(ingest):
    job = accept(ingest, "poison", "good")
    s = settings(max_attempts=2)
    ingest.jobs.claim(8, owner="task-x")  # a delivery whose worker then died
    # The redelivery puts both back; each suspect now goes alone.
    assert batch.run_batch(ingest, s, "task-x", Published()) == 1
    ingest.jobs.claim(8, owner="task-y")  # the other suspect kills its worker again
    assert batch.run_batch(ingest, s, "task-y", Published()) == 0  # out of attempts
    state = ingest.jobs.get(job)
    assert (state.succeeded, state.failed) == (1, 1)
    assert "gave up after 2 attempts" in state.errors[0].error


def test_running_twice_leaves_one_point_and_older_updates_lose(ingest):
    accept(ingest, "same")
    batch.run_batch(ingest, settings(), "t1", Published())
    newer = ingest.store.get(point_id("same")).payload["updated_at"]
    # The same upload delivered again, and an older version of it arriving late.
    ingest.jobs.create_job("upload", [ingest.prepare(Upload({"id": "same", "title": "x"},
                                                            [image_bytes(seed=0)]))])
    stale = ingest.prepare(Upload({"id": "same", "title": "old"}, [image_bytes(seed=5)]))
    stale.metadata["version"] = newer - 100
    old_job = ingest.jobs.create_job("upload", [stale])
    while batch.run_batch(ingest, settings(), None, Published()):
        pass
    assert ingest.store.count() == 1
    assert ingest.store.get(point_id("same")).payload["title"] == "x"
    assert ingest.jobs.get(old_job).state == "done"


def test_store_outage_fails_nothing_and_counts_no_attempt(ingest, monkeypatch):
    job = accept(ingest, "p")

    def down(*a, **k):
        raise ConnectionError("qdrant is down")

    monkeypatch.setattr(ingest.store, "retrieve", down)
    for _ in range(5):
        with pytest.raises(StoreUnavailable):
            batch.run_batch(ingest, settings(max_attempts=2), "t", Published())
    assert ingest.jobs.get(job).state == "queued"
    monkeypatch.undo()
    assert batch.run_batch(ingest, settings(max_attempts=2), "t", Published()) == 1
    assert ingest.jobs.get(job).state == "done"


def test_sweep_requeues_stalled_uploads_and_publishes_for_them(ingest, monkeypatch):
    accept(ingest, "lost", "dead")
    ingest.jobs.claim(1, owner="gone")  # its worker died and the broker lost the task
    published = Published()
    s = settings(time_limit=2, soft_time_limit=1, visibility_timeout=3, sweep_deadline=2.5)
    assert batch.sweep(ingest.jobs, s, published) == {"requeued": 0, "stale": 0,
                                                      "published": 0}
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 10)  # the deadline passes
    assert batch.sweep(ingest.jobs, s, published) == {"requeued": 1, "stale": 2,
                                                      "published": 1}
    monkeypatch.undo()
    assert published == ["task"]
    assert batch.run_batch(ingest, s, None, Published()) == 1  # the suspect, alone
    assert batch.run_batch(ingest, s, None, Published()) == 1


def test_publish_failures_in_follow_ups_are_left_to_the_sweep():
    def broken(job_id):
        raise ConnectionError("redis is down")

    assert batch.publish_quietly(broken, 2) == 0


def test_settings_keep_time_limits_below_the_visibility_timeout():
    with pytest.raises(ValueError, match="visibility_timeout"):
        WorkerSettings(time_limit=4000, visibility_timeout=3600)
    with pytest.raises(ValueError, match="sweep_deadline"):
        WorkerSettings(sweep_deadline=100)


def test_celery_configuration():
    from workers.celery_app import INGEST_TASK, SWEEP_TASK, make_celery

    s = WorkerSettings(visibility_timeout=1234, soft_time_limit=100, time_limit=200)
    conf = make_celery(s).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 1234
    assert conf.result_backend_transport_options["visibility_timeout"] == 1234
    assert conf.visibility_timeout == 1234
    assert conf.task_soft_time_limit == 100 and conf.task_time_limit == 200
    assert {q.name for q in conf.task_queues} == {"ingest", "maintenance"}
    assert conf.task_routes[INGEST_TASK]["queue"] == "ingest"
    assert conf.beat_schedule["sweep"]["task"] == SWEEP_TASK


def test_tasks_are_thin_and_retry_on_outages():
    from workers import tasks

    assert tasks.ingest.autoretry_for == tasks.RETRY_ON
    assert StoreUnavailable in tasks.RETRY_ON
    assert tasks.ingest.max_retries is None  # an outage fails nothing, however long
    assert tasks.ingest.retry_backoff


def test_dispatch_withdraws_the_job_and_raises_when_the_broker_is_down(ingest):
    from workers.dispatch import BrokerUnavailable, CeleryDispatch

    class DownApp:
        def send_task(self, *a, **k):
            import kombu.exceptions

            raise kombu.exceptions.OperationalError("connection refused")

    dispatch = CeleryDispatch(ingest.jobs, settings(), app=DownApp())
    job = accept(ingest, "p")
    with pytest.raises(BrokerUnavailable):
        dispatch.submit(job)
    assert ingest.jobs.get(job) is None  # nothing half-done
    # A worker that already took part of a job (batching across jobs) keeps it: accepted.
    taken = accept(ingest, "q")
    ingest.jobs.claim(1)
    dispatch.submit(taken)
    assert ingest.jobs.get(taken) is not None


def test_cluster_api_answers_503_when_the_broker_is_down(tmp_path, tiny_encoder, monkeypatch):
    import json

    from fastapi.testclient import TestClient

    from api.auth import hash_key
    from api.settings import ApiSettings
    from vitrine.wiring import build_services, create_api

    monkeypatch.setenv("VITRINE_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens
    monkeypatch.setenv("VITRINE_WORKER_BROKER_TIMEOUT", "0.5")
    monkeypatch.setenv("VITRINE_MODERATION_ENABLED", "false")
    from workers import celery_app
    from workers import settings as worker_settings

    worker_settings.get_worker_settings.cache_clear()
    monkeypatch.setattr(celery_app, "app", celery_app.make_celery())
    services = build_services(CatalogueSettings(data_dir=tmp_path, store="server",
                                                qdrant_url=":memory:"), encoder=tiny_encoder,
                              profile="cluster")
    app = create_api(ApiSettings(profile="cluster", api_keys={hash_key("k"): "manager"}),
                     services)
    try:
        with TestClient(app) as client:
            response = client.post("/v1/products", headers={"X-API-Key": "k"},
                                   data={"metadata": json.dumps({"id": "p", "title": "p"})},
                                   files={"image": ("p.png", image_bytes(), "image/png")})
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"]
            assert services.jobs.queued_count() == 0
    finally:
        worker_settings.get_worker_settings.cache_clear()
