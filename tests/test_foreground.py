"""Background ingest yields to shoppers' requests in the same process (local profile)."""

import threading

from PIL import Image

from catalogue.foreground import Foreground
from catalogue.jobs import Item
from catalogue.photos import Photo


def test_wait_idle_returns_when_the_last_request_ends():
    foreground, released = Foreground(), threading.Event()
    with foreground.serving():
        waiter = threading.Thread(target=lambda: (foreground.wait_idle(30), released.set()))
        waiter.start()
        assert not released.wait(0.2)  # still serving: the waiter waits
    assert released.wait(5)  # the request ended: it goes on at once, not after 30 s
    waiter.join()


def test_wait_idle_is_bounded_under_constant_requests():
    foreground = Foreground()
    with foreground.serving():
        done = threading.Event()
        threading.Thread(target=lambda: (foreground.wait_idle(0.05), done.set())).start()
        assert done.wait(5)


def test_ingest_encodes_in_chunks_looking_at_the_foreground_between_them(client, monkeypatch):
    services = client.app.state.services
    ingest = services.ingest
    assert ingest.foreground is services.search.foreground  # one per process, shared
    waits, sizes = [], []
    monkeypatch.setattr(ingest.foreground, "wait_idle", lambda max_wait: waits.append(max_wait))
    original = services.encoder.encode_images
    monkeypatch.setattr(services.encoder, "encode_images",
                        lambda images: sizes.append(len(images)) or original(images))
    photos = [Photo(sha256=f"{i:064x}", image=Image.new("RGB", (64, 64))) for i in range(20)]
    items = [Item("job", i, f"p{i}", {}, "") for i in range(4)]
    ready = [(items[i // 5], None, photos[i:i + 5], None) for i in range(0, 20, 5)]
    monkeypatch.setattr(ingest, "payload", lambda *args: {"product_id": "p"})
    monkeypatch.setattr(ingest, "same_main_photo", lambda *args: True)
    ingest.encode(ready)
    assert sizes == [8, 8, 4]
    assert waits == [ingest.settings.ingest_yield_max_ms / 1000] * 3
    assert all(p.vector is not None and p.image is None for p in photos)
