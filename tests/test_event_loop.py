"""No blocking work on the event loop: while an upload is held inside its durable write,
health checks and searches still answer. Proved with a media store that blocks until the
test releases it, not with timings. And no request pays for the collector walking the
server's parts: they are frozen while it serves (embedding.runtime.frozen_heap)."""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from catalogue.media import FolderMediaStore
from catalogue.settings import CatalogueSettings
from embedding.runtime import refreeze_heap
from testkit.images import image_bytes
from vitrine.wiring import build_services, create_api

HELD_FOR = 60  # seconds a held write waits at most: a bound on a deadlock, not a timing


class HeldMedia(FolderMediaStore):
    """Blocks every `put` until `release` is set, and says when one is waiting."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.waiting = threading.Event()
        self.release = threading.Event()

    def put(self, data: bytes) -> str:
        self.waiting.set()
        if not self.release.wait(HELD_FOR):
            raise TimeoutError("the test never released the write")
        return super().put(data)


def in_thread(call):
    """Run `call` in a thread; returns (thread, result list)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_health_and_search_answer_while_an_upload_is_held(tmp_path, tiny_encoder):
    services = build_services(CatalogueSettings(data_dir=tmp_path), encoder=tiny_encoder)
    held = HeldMedia(tmp_path / "held-media")
    services.media = services.ingest.media = held
    with TestClient(create_api(services=services)) as client:
        upload, uploaded = in_thread(lambda: client.post(
            "/v1/products", data={"metadata": json.dumps({"id": "p1", "title": "red"})},
            files={"image": ("p.png", image_bytes(), "image/png")}))
        assert held.waiting.wait(HELD_FOR), "the upload never reached the media store"
        try:
            # Each of these would hang behind the held write if it ran on the event loop.
            for path in ("/healthz", "/readyz", "/v1/search?q=red%20dress"):
                request, answered = in_thread(lambda p=path: client.get(p))
                request.join(HELD_FOR / 2)
                assert answered and answered[0].status_code == 200, (
                    f"{path} did not answer while an upload was held")
            assert upload.is_alive(), "the upload finished although its write was held"
        finally:
            held.release.set()
        upload.join(HELD_FOR)
        assert uploaded and uploaded[0].status_code == 202, uploaded


def walked() -> set[int]:
    """The objects a full garbage collection walks now (frozen ones excluded)."""
    return {id(o) for o in gc.get_objects()}


def test_a_serving_app_keeps_its_parts_out_of_the_collectors_walks(tmp_path, tiny_encoder):
    services = build_services(CatalogueSettings(data_dir=tmp_path), encoder=tiny_encoder)
    parts = {id(services.store), id(services.encoder), id(services.search)}
    assert parts <= walked()
    with TestClient(create_api(services=services)) as client:
        assert client.get("/v1/search", params={"q": "red"}).status_code == 200
        assert not parts & walked()  # frozen while it serves
    assert parts <= walked()  # and back in the collector's care once it stopped
    refreeze_heap()  # a reindex ending after the server stopped freezes nothing again
    assert parts <= walked()
