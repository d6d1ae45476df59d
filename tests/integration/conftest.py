"""One cluster per test module: private Redis (append-only), the Qdrant stand-in, the job
store (a fresh PostgreSQL schema, or SQLite on the shared folder where no PostgreSQL
answers), two API replicas under uvicorn and celery beat. Tests start their own workers."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from api.auth import hash_key
from testkit.cluster import PYTHON, Cluster, free_port, http_ready, wait_for
from testkit.images import image_bytes

API_KEY = "cluster-test-manager-key"
HEADERS = {"X-API-Key": API_KEY}

# Short limits so recovery paths run in seconds: a tiny-model batch takes well under 1 s.
WORKER_ENV = {
    "VITRINE_WORKER_BATCH_SIZE": "8",
    "VITRINE_WORKER_BATCH_WAIT_MS": "50",
    "VITRINE_WORKER_SOFT_TIME_LIMIT": "20",  # covers a cold start on a busy machine
    "VITRINE_WORKER_TIME_LIMIT": "24",
    "VITRINE_WORKER_VISIBILITY_TIMEOUT": "25",
    "VITRINE_WORKER_SWEEP_INTERVAL": "2",
    "VITRINE_WORKER_SWEEP_DEADLINE": "30",
    "VITRINE_WORKER_MAX_ATTEMPTS": "3",
    "VITRINE_WORKER_BROKER_TIMEOUT": "1",
}


@pytest.fixture(scope="module")
def jobs_url(tmp_path_factory):
    from testkit.postgres import postgres_schema

    try:
        with postgres_schema("cluster") as url:
            yield url
    except pytest.skip.Exception:  # no PostgreSQL here: SQLite on the shared folder
        yield str(tmp_path_factory.mktemp("shared") / "jobs.sqlite3")


class Api:
    def __init__(self, urls: list[str]):
        self.urls = urls
        self.clients = [httpx.Client(base_url=u, headers=HEADERS, timeout=30) for u in urls]

    def client(self, i: int = 0) -> httpx.Client:
        return self.clients[i % len(self.clients)]

    def upload(self, product_id: str, seed: int = 0, via: int = 0) -> httpx.Response:
        metadata = {"id": product_id, "title": f"product {product_id}", "colour": "red"}
        return self.client(via).post("/v1/products", data={"metadata": json.dumps(metadata)},
                                     files={"image": ("p.png", image_bytes(seed=seed),
                                                      "image/png")})

    def upload_batch(self, product_ids: list[str], via: int = 0) -> httpx.Response:
        metadata = [{"id": p, "title": f"product {p}"} for p in product_ids]
        files = [("images", (f"{p}.png", image_bytes(seed=i + 100), "image/png"))
                 for i, p in enumerate(product_ids)]
        return self.client(via).post("/v1/products/batch",
                                     data={"metadata": json.dumps(metadata)}, files=files)

    def job(self, job_id: str, via: int = 0) -> dict:
        response = self.client(via).get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_jobs(self, job_ids: list[str], timeout: float = 60) -> dict[str, dict]:
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(done) < len(job_ids):
            for i, job_id in enumerate(job_ids):
                if job_id not in done:
                    job = self.job(job_id, via=i)  # both replicas answer for every job
                    if job["state"] in ("done", "failed"):
                        done[job_id] = job
            time.sleep(0.1)
        missing = [j for j in job_ids if j not in done]
        assert not missing, f"jobs not terminal after {timeout} s: " + ", ".join(
            json.dumps(self.job(j)) for j in missing[:3])
        return done

    def close(self) -> None:
        for c in self.clients:
            c.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tiny_clip_dir, jobs_url):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("cluster")
    qdrant_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")},
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "VITRINE_PROFILE": "cluster",
        "VITRINE_API_KEYS": json.dumps({hash_key(API_KEY): "manager"}),
        "VITRINE_STORE": "server",
        "VITRINE_QDRANT_URL": f"http://127.0.0.1:{qdrant_port}",
        "VITRINE_MODEL": str(tiny_clip_dir),
        "VITRINE_DATA_DIR": str(tmp / "shared"),  # the shared media volume
        "VITRINE_JOBS_URL": jobs_url,
        "OMP_NUM_THREADS": "1",
        # A random model's moderation scores would hide products from shoppers at random.
        "VITRINE_MODERATION_ENABLED": "false",
        **WORKER_ENV,
    }
    c = Cluster(tmp, env)
    try:
        c.start_redis()
        env["VITRINE_BROKER_URL"] = f"redis://127.0.0.1:{c.redis_port}/0"
        c.qdrant_url = env["VITRINE_QDRANT_URL"]
        c.qdrant_args = [PYTHON, "testkit/qdrant_standin.py", "--port", str(qdrant_port),
                         "--path", str(tmp / "qdrant")]
        standin = c.start("qdrant", c.qdrant_args)
        wait_for(lambda: http_ready(f"{c.qdrant_url}/healthz"), 30, "the Qdrant stand-in")
        c.standin = standin
        apis = []
        for i in range(2):  # two replicas, one job store
            port = free_port()
            apis.append((c.start(f"api{i}", [
                PYTHON, "-m", "uvicorn", "--factory", "vitrine.wiring:create_api",
                "--host", "127.0.0.1", "--port", str(port)]), f"http://127.0.0.1:{port}"))
        for proc, url in apis:
            wait_for(lambda u=url, p=proc: http_ready(f"{u}/readyz") or not p.alive(), 90,
                     f"{proc.name} to be ready")
            assert proc.alive(), proc.log(6000)
        c.api = Api([u for _, u in apis])
        c.beat = c.start_beat()
        assert standin.alive()
        yield c
    finally:
        api = getattr(c, "api", None)
        if api:
            api.close()
        c.close()


@pytest.fixture
def workers(cluster):
    """Workers a test starts; all killed when it ends."""
    started = []

    def start(name: str, **extra_env: str):
        proc = cluster.start_worker(name, extra_env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def points_for(cluster, product_ids: list[str]) -> int:
    """How many points the store holds for these products (by their product_id field)."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(url=cluster.qdrant_url, timeout=10, check_compatibility=False)
    try:
        return client.count("products", exact=True, count_filter=models.Filter(must=[
            models.FieldCondition(key="product_id", match=models.MatchAny(any=product_ids))
        ])).count
    finally:
        client.close()
