"""Running it: duplicate ids in a batch, when the index is rebuilt, the indexing child's
lifetime, and a second process on a held data folder."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from catalogue.store.edge import EdgeStore
from testkit.api import make_app, wait_job
from testkit.images import image_bytes
from tests.test_edge_store import points

ROOT = Path(__file__).resolve().parents[1]


def test_duplicate_ids_in_a_batch_fail_after_the_first(client):
    metadata = [{"id": "dup", "title": "first"}, {"id": "other"}, {"id": "dup", "title": "2nd"}]
    files = [("images", (f"{i}.png", image_bytes(seed=i), "image/png")) for i in range(3)]
    response = client.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                           files=files)
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["rejected"]) == (2, 1)
    job = wait_job(client, response.json()["job_id"])
    assert [(e["index"], e["error"]) for e in job["errors"]] == [
        (2, "duplicate id dup in this batch (item 0 has it)")]
    assert job["succeeded"] == 2
    assert client.get("/v1/products/dup").json()["title"] == "first"


def test_the_store_does_not_rebuild_for_what_the_engine_left_unindexed(tmp_path):
    """300 points of 16-d are too few for the engine to index: an optimize leaves them
    unindexed. One more point must not start another copy of the whole shard."""
    store = EdgeStore(tmp_path, 16, optimize_threshold=100)
    pts = points(301)
    store.upsert(pts[:300])
    assert store.optimize_in_background()
    store.wait_for_optimizer()
    assert store.unindexed() == 300  # the engine's own choice, not ours
    store.upsert(pts[300:])
    assert not store.optimize_in_background()
    store.upsert(points(400, seed=1)[300:])  # 100 more: now it is worth another one
    assert store.optimize_in_background()
    store.close()


def test_one_product_after_a_big_batch_starts_no_rebuild(tmp_path, tiny_encoder, monkeypatch):
    """Through the local runner: a batch past the threshold builds the index once; a
    one-product batch after it does not build it again."""
    app = make_app(tmp_path / "data", tiny_encoder, optimize_threshold=5)
    with TestClient(app) as c:
        store = c.app.state.services.store
        optimizes, calls = [], []
        called = threading.Condition()
        real_optimize, real_background = store.optimize, store.optimize_in_background
        monkeypatch.setattr(store, "optimize", lambda: (optimizes.append(1), real_optimize()))

        def background(force=False):
            started = real_background(force)
            with called:
                calls.append(started)
                called.notify_all()
            return started

        monkeypatch.setattr(store, "optimize_in_background", background)

        def post_batch(ids):
            files = [("images", (f"{i}.png", image_bytes(seed=i), "image/png")) for i in ids]
            response = c.post("/v1/products/batch", files=files, data={
                "metadata": json.dumps([{"id": f"p{i}"} for i in ids])})
            assert response.status_code == 202, response.text
            assert wait_job(c, response.json()["job_id"])["succeeded"] == len(ids)
            with called:  # the runner asks the store after the batch is done
                assert called.wait_for(lambda: len(calls) >= n_calls + 1, timeout=30)
            store.wait_for_optimizer()

        n_calls = 0
        post_batch(range(8))
        assert optimizes == [1]
        n_calls = len(calls)
        post_batch([100])
        assert optimizes == [1], "a one-product batch rebuilt the index"


# Loaded by the parent and the indexing child (PYTHONPATH): in the child only, the
# engine's optimize sleeps, so the child is still at work when its parent is killed.
SLOW_CHILD = """
import os
if "\\0-m\\0catalogue.store.edge\\0" in open("/proc/self/cmdline").read():
    import time
    import qdrant_edge
    real = qdrant_edge.EdgeShard

    class SlowShard:
        def __init__(self, shard):
            self._shard = shard

        @classmethod
        def load(cls, *args, **kwargs):
            return cls(real.load(*args, **kwargs))

        def optimize(self):
            time.sleep(120)

        def __getattr__(self, name):
            return getattr(self._shard, name)

    qdrant_edge.EdgeShard = SlowShard
"""

PARENT = """
import sys, time
from catalogue.store.edge import EdgeStore
from tests.test_edge_store import points
store = EdgeStore(sys.argv[1], 16)
store.upsert(points(50))
assert store.optimize_in_background(force=True)
print("optimizing", flush=True)
time.sleep(300)
"""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; nobody may be reaping it here


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_indexing_child_dies_with_its_parent(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(ROOT)])}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "shard")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert parent.stdout.readline().strip() == "optimizing"
        deadline = time.monotonic() + 30
        while child is None and time.monotonic() < deadline:
            kids = children_of(parent.pid)
            child = kids[0] if kids else None
            time.sleep(0.05)
        assert child is not None, "the optimizer's child process never started"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the indexing child outlived its killed parent"
    finally:
        parent.kill()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


HOLDER = """
import sys, time
from catalogue.settings import CatalogueSettings
from embedding.encoder import Encoder
from vitrine.wiring import build_services
services = build_services(CatalogueSettings(data_dir=sys.argv[1]),
                          encoder=Encoder(model=sys.argv[2]))
print("holding", flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["import", "nothing.jsonl"]])
def test_a_second_process_on_a_held_data_folder_is_told_who_holds_it(
        tmp_path, tiny_clip_dir, command):
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VITRINE_DATA_DIR": str(data),
           "VITRINE_MODEL": str(tiny_clip_dir)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data), str(tiny_clip_dir)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        second = subprocess.run([sys.executable, "-m", "vitrine.cli", *command], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait(10)
    assert second.returncode == 2, second.stderr[-3000:]
    assert f"vitrine: {data.resolve()} is in use by process {holder.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    message = [line for line in second.stderr.splitlines() if line.startswith("vitrine:")]
    assert len(message) == 1, second.stderr
