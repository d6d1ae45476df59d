"""The cluster profile end to end: API replicas, Redis, Celery workers, the Qdrant stand-in.

Real processes (redis-server, uvicorn, celery worker/beat) on this machine and the
tiny random CLIP model; about a minute and a half on two cores.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess

import pytest
import redis

from testkit.cluster import PYTHON, ROOT, wait_for
from tests.integration.conftest import points_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def accepted(response) -> str:
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def test_uploads_flow_through_a_worker_and_become_searchable(cluster, workers):
    worker = workers("w-flow")
    api = cluster.api
    batch = accepted(api.upload_batch([f"flow-{i}" for i in range(6)], via=0))
    singles = [accepted(api.upload(f"flow-single-{i}", seed=i, via=1)) for i in range(4)]
    cluster.wait_worker_ready(worker)
    jobs = api.wait_jobs([batch, *singles])
    assert all(j["state"] == "done" for j in jobs.values()), jobs
    assert jobs[batch]["succeeded"] == 6
    ids = [f"flow-{i}" for i in range(6)] + [f"flow-single-{i}" for i in range(4)]
    assert points_for(cluster, ids) == 10
    product = api.client(1).get("/v1/products/flow-3")
    assert product.status_code == 200 and product.json()["id"] == "flow-3"
    found = api.client(0).get("/v1/search", params={"q": "product", "limit": 100}).json()
    assert set(ids) <= {r["product_id"] for r in found["results"]}
    # The health check proves this worker answers over the broker and work is moving.
    health = subprocess.run([PYTHON, "-m", "workers.health", f"w-flow@{socket.gethostname()}"],
                            env={**cluster.env}, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert health.returncode == 0, health.stderr
    sick = subprocess.run([PYTHON, "-m", "workers.health", "nobody@nowhere"],
                          env={**cluster.env}, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert sick.returncode == 1 and "does not answer" in sick.stderr


def test_worker_killed_mid_task_the_upload_still_ends_indexed_once(cluster, workers):
    slow = workers("w-slow", TESTKIT_TASK_SLEEP="6")
    cluster.wait_worker_ready(slow)
    job = accepted(cluster.api.upload("killed-1", seed=7))
    wait_for(lambda: cluster.api.job(job)["state"] == "running", 20, "the task to start")
    slow.kill(signal.SIGKILL)  # the whole worker, pool child included: nothing acks
    assert cluster.api.job(job)["state"] == "running"
    # A fresh worker gets the task back once Redis's visibility timeout (25 s here) runs out.
    workers("w-rescue")
    done = cluster.api.wait_jobs([job], timeout=60)[job]
    assert done["state"] == "done", done
    assert points_for(cluster, ["killed-1"]) == 1


def test_poison_upload_fails_after_max_attempts_while_others_flow(cluster, workers):
    worker = workers("w-poison", TESTKIT_CRASH_ON="poison")
    api = cluster.api
    poison = accepted(api.upload("poison", seed=1))
    batch = accepted(api.upload_batch(["beside-1", "beside-2", "beside-3"]))
    cluster.wait_worker_ready(worker)
    after = [accepted(api.upload(f"after-{i}", seed=20 + i, via=i)) for i in range(3)]
    jobs = api.wait_jobs([poison, batch, *after], timeout=90)
    assert jobs[poison]["state"] == "failed"
    assert "gave up after 3 attempts" in jobs[poison]["errors"][0]["error"]
    assert jobs[batch]["state"] == "done" and jobs[batch]["succeeded"] == 3, jobs[batch]
    assert all(jobs[j]["state"] == "done" for j in after)
    assert points_for(cluster, ["poison"]) == 0
    assert points_for(cluster, ["beside-1", "beside-2", "beside-3"]) == 3
    assert worker.alive()  # the pool child died each time; the worker replaced it
    assert worker.log().count("TESTKIT_CRASH_ON=poison") >= 3


def test_redis_restart_under_backlog_loses_nothing_and_refuses_during_outage(cluster, workers):
    worker = workers("w-outage", TESTKIT_TASK_SLEEP="0.5")
    api = cluster.api
    backlog = [accepted(api.upload(f"backlog-{i}", seed=40 + i, via=i)) for i in range(12)]
    cluster.wait_worker_ready(worker)
    mark = len(worker.log())
    cluster.kill_redis()  # returns once its port is closed
    wait_for(lambda: "Connection to broker lost" in worker.log()[mark:], 30,
             "the worker to notice the broker is gone")
    refused = []
    for i in range(3):
        response = api.upload(f"outage-{i}", seed=60 + i, via=i)
        assert response.status_code == 503, response.text  # never 202 while it is down
        refused.append(response)
    cluster.start_redis()  # same port and folder: the append-only file brings the queue back
    jobs = api.wait_jobs(backlog, timeout=90)
    assert all(j["state"] == "done" for j in jobs.values()), jobs
    # The worker consumes again after the reconnect: a new upload goes through.
    fresh = accepted(api.upload("after-outage", seed=80))
    assert api.wait_jobs([fresh], timeout=60)[fresh]["state"] == "done"
    assert points_for(cluster, [f"backlog-{i}" for i in range(12)]) == 12
    assert points_for(cluster, [f"outage-{i}" for i in range(3)]) == 0  # nothing half-done


def test_the_same_task_delivered_twice_leaves_one_point(cluster, workers):
    api = cluster.api
    broker = redis.Redis(port=cluster.redis_port)
    waiting = set(broker.lrange("ingest", 0, -1))  # wake-ups earlier tests left, if any
    job = accepted(api.upload("twice", seed=90))  # no worker yet: the task waits in Redis
    # A task carries no job (it claims whatever is queued): ours is the one message more.
    ours = [m for m in broker.lrange("ingest", 0, -1) if m not in waiting]
    assert len(ours) == 1
    broker.lpush("ingest", ours[0])  # exactly what a redelivery looks like
    task_id = json.loads(ours[0])["headers"]["id"]
    worker = workers("w-twice")
    done = api.wait_jobs([job], timeout=60)[job]
    assert done["state"] == "done" and done["succeeded"] == 1
    wait_for(lambda: worker.log().count(f"[{task_id}] succeeded") == 2, 30,
             "both deliveries to run")
    assert points_for(cluster, ["twice"]) == 1
    broker.close()


def test_qdrant_outage_fails_nothing_and_uploads_finish_when_it_returns(cluster, workers):
    from testkit.cluster import http_ready

    worker = workers("w-qdrant")
    warm = accepted(cluster.api.upload("qdrant-up", seed=119))  # the worker has its stores
    assert cluster.api.wait_jobs([warm], timeout=60)[warm]["state"] == "done"
    mark = len(worker.log())
    cluster.standin.kill(signal.SIGKILL)
    jobs = [accepted(cluster.api.upload(f"qdrant-down-{i}", seed=120 + i, via=i))
            for i in range(3)]  # originals and jobs need no vector store: accepted
    # The tasks run, find the store down, release their items and back off.
    wait_for(lambda: "retry: Retry in" in worker.log()[mark:], 60,
             "a task to find the store down and retry")
    assert all(cluster.api.job(j)["state"] in ("queued", "running") for j in jobs)
    cluster.standin = cluster.start("qdrant-again", cluster.qdrant_args)
    wait_for(lambda: http_ready(f"{cluster.qdrant_url}/healthz"), 30, "the stand-in again")
    done = cluster.api.wait_jobs(jobs, timeout=90)
    assert all(j["state"] == "done" and j["failed"] == 0 for j in done.values()), done
    assert points_for(cluster, [f"qdrant-down-{i}" for i in range(3)]) == 3
    assert "retry: Retry in" in worker.log() and "vector store unreachable" in worker.log()
    assert points_for(cluster, ["qdrant-up"]) == 1  # the stand-in kept its data
