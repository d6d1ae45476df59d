"""The systems compared: Qdrant Edge (the embedded store, unquantised and int8 with
rescoring: edge_run), qdrant-client local mode, FAISS.

Each `run_*` loads the shared vectors, builds its index and measures its queries, and
returns one result record. `run_isolated` runs one of them in a fresh spawned process,
so that its RSS growth is its own and a crash or an out-of-memory kill does not lose
the other systems' figures.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

from bench.common import PeakRss, rss_bytes
from bench.vector_search.data import (
    CATEGORIES,
    COLOURS,
    DIM,
    GENDERS,
    K,
    QueryFilter,
    Workdir,
)
from bench.vector_search.edge_run import run_edge
from bench.vector_search.measure import measure

log = logging.getLogger(__name__)


def _hit_ids(hits) -> list[int]:
    return [int(h.payload["product_id"][1:]) for h in hits]


def _load_store(store, wd: Workdir, cols: dict[str, np.ndarray], batch: int, desc: str) -> float:
    from catalogue.store.base import StoredPoint, point_id

    t0 = time.perf_counter()
    for start, x in wd.read_chunks(batch, desc=desc):
        points = []
        for j in range(len(x)):
            i = start + j
            pid = f"p{i:07d}"
            points.append(StoredPoint(point_id(pid), {
                "product_id": pid, "category": CATEGORIES[cols["category"][i]],
                "colour": COLOURS[cols["colour"][i]], "gender": GENDERS[cols["gender"][i]],
                "price": float(cols["price"][i])}, x[j]))
        store.upsert(points)
    return time.perf_counter() - t0


def run_server(wd: Workdir, cfg: dict) -> dict:
    from catalogue.store.server import ServerStore

    q, truth, cols, filters = wd.run_inputs(cfg["seed"])
    base = rss_bytes()
    store = ServerStore.connect(":memory:", "bench", DIM)
    res: dict = {"system": "qdrant-client local", "n": wd.n, "build_s": 0.0}
    with PeakRss() as peak:
        res["load_s"] = _load_store(store, wd, cols, cfg["batch"], f"local upsert {wd.n:,}")
    res["rss_growth_mb"] = (rss_bytes() - base) / 2**20
    res["peak_rss_mb"] = (peak.peak_self - base) / 2**20
    limit = cfg["server_queries"]
    res["queries_note"] = f"first {min(limit, len(q))} queries per mode (pure-Python filters)"

    def search(v, f):
        return _hit_ids(store.search(v, f.to_store() if f else None, limit=K))

    res["queries"] = measure(search, q, filters, truth, limit=limit, desc="local")
    store.close()
    return res


def run_faiss(wd: Workdir, cfg: dict, kind: str) -> dict:
    import faiss

    q, truth, cols, filters = wd.run_inputs(cfg["seed"])
    faiss.omp_set_num_threads(cfg["threads"])  # build uses the machine; queries do not
    base = rss_bytes()
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
    else:
        index = faiss.IndexHNSWFlat(DIM, cfg["faiss_m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg["faiss_ef_construction"]
    res: dict = {"system": f"faiss {kind}", "n": wd.n}
    t0 = time.perf_counter()
    with PeakRss() as peak:
        for _, x in wd.read_chunks(desc=f"faiss {kind} add {wd.n:,}"):
            index.add(x)
    res["load_s"] = res["build_s"] = time.perf_counter() - t0
    res["rss_growth_mb"] = (rss_bytes() - base) / 2**20
    res["peak_rss_mb"] = (peak.peak_self - base) / 2**20
    faiss.omp_set_num_threads(1)

    if kind == "flat":
        selectors: dict = {}

        def selector(f: QueryFilter):
            key = (f.colour, f.category, f.price)
            if key not in selectors:
                ids = np.ascontiguousarray(np.nonzero(f.mask(cols))[0], dtype=np.int64)
                sel = faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids))
                selectors[key] = (faiss.SearchParameters(sel=sel), sel, ids)
            return selectors[key][0]

        for mode in ("colour", "category+price"):  # build selectors outside the timed loop
            for f in filters[mode]:
                selector(f)

        def search(v, f):
            params = selector(f) if f else None
            _, ids = index.search(v[None], K, params=params)
            return [int(i) for i in ids[0] if i >= 0]

        limit = cfg.get("flat_queries")
        res["queries"] = measure(search, q, filters, truth, limit=limit, desc="faiss flat")
        if limit is not None and limit < len(q):
            res["queries_note"] = f"first {limit} queries per mode"
    else:
        index.hnsw.efSearch = cfg["faiss_ef_search"]
        res["params"] = {"M": cfg["faiss_m"], "efConstruction": cfg["faiss_ef_construction"],
                         "efSearch": cfg["faiss_ef_search"]}

        def search(v, f):
            _, ids = index.search(v[None], K)
            return [int(i) for i in ids[0] if i >= 0]

        res["queries"] = measure(search, q, filters, truth, modes=("none",), desc="faiss hnsw")
    return res


SYSTEMS = {
    "edge": lambda wd, cfg: run_edge(wd, cfg, "none"),
    "edge-int8": lambda wd, cfg: run_edge(wd, cfg, "int8"),
    "local": run_server,
    "faiss-flat": lambda wd, cfg: run_faiss(wd, cfg, "flat"),
    "faiss-hnsw": lambda wd, cfg: run_faiss(wd, cfg, "hnsw"),
}

SYSTEM_LABELS = {"edge": "edge", "edge-int8": "edge int8", "local": "qdrant-client local",
                 "faiss-flat": "faiss flat", "faiss-hnsw": "faiss hnsw"}


def _child(name: str, wd: Workdir, cfg: dict, out: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    res = SYSTEMS[name](wd, cfg)
    Path(out).write_text(json.dumps(res))


def run_isolated(name: str, wd: Workdir, cfg: dict, timeout: float) -> dict:
    """Run one system in a fresh spawned process: its own RSS, its own failure."""
    out = wd.root / f"result-{name}.json"
    out.unlink(missing_ok=True)
    proc = mp.get_context("spawn").Process(target=_child, args=(name, wd, cfg, str(out)))
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]  # this machine is shared: say when others competed
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        import psutil

        for child in psutil.Process(proc.pid).children(recursive=True):  # e.g. the optimizer
            child.kill()
        proc.kill()
        proc.join()
        return {"system": name, "n": wd.n, "skipped": f"did not finish within {timeout:.0f} s"}
    if proc.exitcode != 0 or not out.exists():
        return {"system": name, "n": wd.n,
                "skipped": f"process failed with exit code {proc.exitcode}"}
    res = json.loads(out.read_text())
    res["wall_s"] = time.perf_counter() - t0
    res["loadavg_1min"] = [load_start, os.getloadavg()[0]]
    return res
