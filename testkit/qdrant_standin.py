"""A stand-in for a Qdrant server: the REST calls Vitrine makes, over real HTTP.

No Qdrant server binary can be installed here, so the cluster tests run this
instead: a small FastAPI app that implements the subset of Qdrant's REST API
that qdrant-client sends for `ServerStore`'s calls (service root and health;
aliases; collections exists/create/get/delete; payload index; points upsert, retrieve,
delete, set payload, update vectors, count, scroll, query; facet) and answers them from
qdrant-client's own local mode (an in-memory engine), in one process. The API,
the workers and the tests all connect with `ServerStore.connect("http://...")`:
the client code that ships, over HTTP, from several processes at once.

What this proves: our requests are well formed for the REST API, the client's
parsing of the answers, point ids, payloads, filters and idempotent upserts
across processes, and the behaviour of the system when the store is slow,
down or comes back (kill this process, start it again).

What it leaves unproven — Qdrant server's own behaviour: HNSW indexing and its
recall (local mode searches exactly), payload indexes (local mode ignores
them), the optimizer, persistence and WAL recovery, distributed mode (shards,
replicas, consistency and write-ordering guarantees), `wait=True` semantics on
a real cluster, and real error codes and messages (here: 404 for a missing
collection, 400 for anything else the engine refuses, 500 for surprises).

Run it alone: `python testkit/qdrant_standin.py --port 6333 [--path DIR]`.
"""

from __future__ import annotations

import argparse
import threading
import time
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import TypeAdapter
from qdrant_client import QdrantClient, models

# Reported to the client's compatibility check: the client's own major.minor.
VERSION = ".".join(version("qdrant-client").split(".")[:2]) + ".0"


def make_app(path: str | None = None, version: str = VERSION) -> FastAPI:
    """`path`: keep the data in that folder (local mode's own persistence), so a stand-in
    killed and started again finds it, as a restarted server would; default in memory.
    `version`: the server version GET / reports. `app.state.created` keeps each create
    collection request as sent (local mode ignores shards and replicas)."""
    engine = QdrantClient(path=path) if path else QdrantClient(location=":memory:")
    lock = threading.Lock()  # local mode is not made for concurrent callers
    app = FastAPI(title="qdrant stand-in")
    app.state.created = {}
    operation = {"id": 0}

    def ok(result: Any, started: float) -> JSONResponse:
        if hasattr(result, "model_dump"):
            result = result.model_dump(mode="json")
        elif isinstance(result, list):
            result = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r
                      for r in result]
        return JSONResponse({"result": result, "status": "ok",
                             "time": time.perf_counter() - started})

    def updated(started: float) -> JSONResponse:
        operation["id"] += 1
        return ok({"operation_id": operation["id"], "status": "completed"}, started)

    @app.exception_handler(Exception)
    async def refused(request: Request, exc: Exception):
        message = str(exc)
        code = 404 if "not found" in message.lower() else (
            400 if isinstance(exc, (ValueError, KeyError, TypeError)) else 500)
        return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=code)

    @app.get("/")
    def root():
        return {"title": "qdrant - vector search engine (test stand-in)", "version": version}

    @app.get("/healthz", response_class=PlainTextResponse)
    @app.get("/readyz", response_class=PlainTextResponse)
    @app.get("/livez", response_class=PlainTextResponse)
    def health():
        return "healthz check passed"

    @app.get("/collections")
    def list_collections():
        t = time.perf_counter()
        with lock:
            return ok(engine.get_collections(), t)

    @app.get("/aliases")
    def list_aliases():
        t = time.perf_counter()
        with lock:
            return ok(engine.get_aliases(), t)

    @app.post("/collections/aliases")
    async def update_aliases(request: Request):
        t = time.perf_counter()
        body = models.ChangeAliasesOperation.model_validate(await request.json())
        with lock:
            engine.update_collection_aliases(change_aliases_operations=body.actions)
        return ok(True, t)

    @app.get("/collections/{name}/exists")
    def collection_exists(name: str):
        t = time.perf_counter()
        with lock:
            return ok({"exists": engine.collection_exists(name)}, t)

    @app.put("/collections/{name}")
    async def create_collection(name: str, request: Request):
        t = time.perf_counter()
        body = models.CreateCollection.model_validate(await request.json())
        app.state.created[name] = body
        with lock:
            engine.create_collection(name, vectors_config=body.vectors,
                                     sparse_vectors_config=body.sparse_vectors)
        return ok(True, t)

    @app.get("/collections/{name}")
    def get_collection(name: str):
        t = time.perf_counter()
        with lock:
            return ok(engine.get_collection(name), t)

    @app.delete("/collections/{name}")
    def delete_collection(name: str):
        t = time.perf_counter()
        with lock:
            return ok(engine.delete_collection(name), t)

    @app.put("/collections/{name}/index")
    async def create_index(name: str, request: Request):
        t = time.perf_counter()
        models.CreateFieldIndex.model_validate(await request.json())  # a well-formed request
        with lock:
            if not engine.collection_exists(name):
                raise ValueError(f"Collection {name} not found")
            # Local mode keeps no payload indexes: accepted and ignored (see the docstring).
        return updated(t)

    @app.put("/collections/{name}/points")
    async def upsert(name: str, request: Request):
        t = time.perf_counter()
        body = TypeAdapter(models.PointInsertOperations).validate_python(await request.json())
        points = body.points if isinstance(body, models.PointsList) else body.batch
        with lock:
            engine.upsert(name, points=points, wait=True)
        return updated(t)

    @app.put("/collections/{name}/points/vectors")
    async def update_vectors(name: str, request: Request):
        t = time.perf_counter()
        body = models.UpdateVectors.model_validate(await request.json())
        with lock:
            engine.update_vectors(name, points=body.points, wait=True)
        return updated(t)

    @app.post("/collections/{name}/points")
    async def retrieve(name: str, request: Request):
        t = time.perf_counter()
        body = models.PointRequest.model_validate(await request.json())
        with lock:
            records = engine.retrieve(name, body.ids, with_payload=body.with_payload
                                      if body.with_payload is not None else True,
                                      with_vectors=body.with_vector or False)
        return ok(records, t)

    @app.post("/collections/{name}/points/delete")
    async def delete(name: str, request: Request):
        t = time.perf_counter()
        selector = TypeAdapter(models.PointsSelector).validate_python(await request.json())
        with lock:
            engine.delete(name, points_selector=selector, wait=True)
        return updated(t)

    @app.post("/collections/{name}/points/payload")
    async def set_payload(name: str, request: Request):
        t = time.perf_counter()
        body = models.SetPayload.model_validate(await request.json())
        with lock:
            engine.set_payload(name, payload=body.payload, points=body.points or body.filter,
                               key=body.key, wait=True)
        return updated(t)

    @app.post("/collections/{name}/points/count")
    async def count(name: str, request: Request):
        t = time.perf_counter()
        body = models.CountRequest.model_validate(await request.json())
        with lock:
            return ok(engine.count(name, count_filter=body.filter, exact=body.exact
                                   if body.exact is not None else True), t)

    @app.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request):
        t = time.perf_counter()
        body = models.ScrollRequest.model_validate(await request.json())
        with lock:
            records, next_offset = engine.scroll(
                name, scroll_filter=body.filter, limit=body.limit or 10, offset=body.offset,
                with_payload=body.with_payload if body.with_payload is not None else True,
                with_vectors=body.with_vector or False, order_by=body.order_by)
        return ok({"points": [r.model_dump(mode="json") for r in records],
                   "next_page_offset": next_offset}, t)

    @app.post("/collections/{name}/points/query")
    async def query(name: str, request: Request):
        t = time.perf_counter()
        body = models.QueryRequest.model_validate(await request.json())
        with lock:
            response = engine.query_points(
                name, query=body.query, prefetch=body.prefetch, using=body.using,
                query_filter=body.filter, search_params=body.params,
                limit=body.limit or 10, offset=body.offset,
                with_payload=body.with_payload if body.with_payload is not None else False,
                with_vectors=body.with_vector or False,
                score_threshold=body.score_threshold)
        return ok(response, t)

    @app.post("/collections/{name}/facet")
    async def facet(name: str, request: Request):
        t = time.perf_counter()
        body = models.FacetRequest.model_validate(await request.json())
        with lock:
            return ok(engine.facet(name, body.key, facet_filter=body.filter,
                                   limit=body.limit or 10,
                                   exact=body.exact if body.exact is not None else False), t)

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--path", help="persist to this folder (default: in memory)")
    args = parser.parse_args(argv)
    uvicorn.run(make_app(args.path), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
