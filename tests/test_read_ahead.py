"""Read-ahead ingest (catalogue.ahead): the next batch is read and decoded while this one is
encoded, a product in two batches in a row is judged against what the first wrote, and
a failure gives the batch read ahead back to the queue."""

from __future__ import annotations

import threading

import pytest

from catalogue.ingest import Ingest, Upload
from catalogue.jobs import JobStore
from catalogue.media import FolderMediaStore
from catalogue.settings import CatalogueSettings
from catalogue.store.base import point_id
from catalogue.store.server import ServerStore
from testkit.images import image_bytes

BATCH = 4


@pytest.fixture
def ingest(tmp_path, tiny_encoder):
    store = ServerStore.connect(":memory:", "products", tiny_encoder.dim)
    jobs = JobStore(tmp_path / "jobs.sqlite3")
    settings = CatalogueSettings(data_dir=tmp_path, ingest_batch_size=BATCH,
                                 ingest_read_ahead=True)
    yield Ingest(settings, tiny_encoder, store, FolderMediaStore(tmp_path / "media"), jobs)
    store.close()
    jobs.close()


def accept(ingest: Ingest, ids: list[str], seed: int = 0) -> str:
    return ingest.accept([Upload({"id": p, "title": p}, [image_bytes(seed=seed + i)])
                          for i, p in enumerate(ids)]).job_id


def test_the_next_batch_is_read_while_this_one_encodes(ingest, monkeypatch):
    job = accept(ingest, [f"p{i}" for i in range(3 * BATCH)])
    started = [threading.Event() for _ in range(3)]  # the read of batch 1, 2, 3 began
    readers: set[str] = set()
    read, encode = ingest.read, ingest.encoder.encode_images

    def watched_read(items):
        readers.add(threading.current_thread().name)
        next(e for e in started if not e.is_set()).set()
        return read(items)

    overlapped: list[bool] = []

    def slow_encode(images, *args, **kwargs):
        batch = len(overlapped)
        if batch < 2:  # the third batch has none after it
            # Read-ahead begins the next batch's read before this encode ends; one batch
            # at a time would leave this waiting out its timeout.
            overlapped.append(started[batch + 1].wait(timeout=10))
        return encode(images, *args, **kwargs)

    monkeypatch.setattr(ingest, "read", watched_read)
    monkeypatch.setattr(ingest.encoder, "encode_images", slow_encode)
    assert ingest.run_pending() == 3 * BATCH
    assert overlapped == [True, True]
    assert readers and all(name.startswith("ingest-ahead") for name in readers)
    assert ingest.jobs.get(job).succeeded == 3 * BATCH == ingest.store.count()


def test_a_product_in_two_batches_in_a_row_is_judged_against_the_first_write(ingest):
    first = accept(ingest, ["a", "b", "c", "d"])
    second = accept(ingest, ["a", "e", "f", "g"], seed=50)  # "a" again, a new photo
    assert ingest.run_pending() == 2 * BATCH
    assert ingest.store.count() == 7
    done = ingest.jobs.get(second)
    # read ahead before the first batch wrote "a", the second batch would call it added
    assert (done.added, done.updated) == (3, 1)
    assert ingest.jobs.get(first).added == BATCH
    a = ingest.store.retrieve([point_id("a")])[0]
    assert a.payload["updated_at"] > a.payload["created_at"]


def test_a_failed_batch_gives_the_one_read_ahead_back(ingest, monkeypatch):
    job = accept(ingest, [f"p{i}" for i in range(2 * BATCH)])

    def broken(points):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest.store, "upsert", broken)
    with pytest.raises(RuntimeError):
        ingest.run_pending()
    monkeypatch.undo()
    ingest.settings.ingest_read_ahead = False
    assert ingest.run_pending() >= BATCH  # the batch read ahead is queued again
    assert ingest.jobs.get(job).succeeded == 2 * BATCH == ingest.store.count()
