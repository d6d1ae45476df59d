"""The embedded store's run: load, index build, queries, beam and oversampling sweeps, and
searches while a fresh import waits for the next build.

One function per configuration (unquantised, int8 with rescoring), each in its own
process (systems.run_isolated), so that each process's peak RSS is its own. Peaks are
the kernel's (getrusage: the process's own and its largest finished child's, which is
the optimizer), not samples; the disk is sampled every half second during the build,
where copy-and-swap holds the most.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import shutil
import time

import numpy as np

from bench.common import PeakDisk, PeakRss, dir_size, rss_bytes
from bench.vector_search.data import DIM, Generator, K, Workdir
from bench.vector_search.measure import measure

log = logging.getLogger(__name__)

# What a shop's catalogue schema indexes for these payloads (filterable attributes).
BENCH_INDEXES = [("colour", "keyword"), ("category", "keyword"), ("price", "number")]


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def run_edge(wd: Workdir, cfg: dict, quantization: str) -> dict:
    from bench.vector_search.systems import _hit_ids, _load_store
    from catalogue.store.edge import EdgeStore
    from catalogue.store.index_config import IndexConfig

    q, truth, cols, filters = wd.run_inputs(cfg["seed"])
    folder = wd.root / f"edge-{quantization}"
    shutil.rmtree(folder, ignore_errors=True)
    index = IndexConfig(quantization=quantization, oversampling=cfg["oversampling"],
                        hnsw_m=cfg["hnsw_m"], hnsw_ef_construct=cfg["ef_construct"],
                        hnsw_ef_growth=cfg["hnsw_ef_growth"],
                        filter_links=cfg["filter_links"], acorn=cfg["acorn"],
                        loose_oversampling=cfg["loose_oversampling"],
                        originals_on_disk=cfg["originals_on_disk"],
                        optimizer_memory_mb=cfg["optimizer_memory_mb"])
    base, whole = rss_bytes(), PeakRss(interval=1.0).start()
    store = EdgeStore(folder, DIM, hnsw_ef=cfg["hnsw_ef"], indexes=BENCH_INDEXES, index=index)
    res: dict = {"system": "edge" if quantization == "none" else f"edge {quantization}",
                 "n": wd.n, "hnsw_ef": cfg["hnsw_ef"], "index": index.as_json()}
    with PeakRss() as peak:
        res["load_s"] = _load_store(store, wd, cols, cfg["batch"], f"edge upsert {wd.n:,}")
    res["rss_after_load_mb"] = (rss_bytes() - base) / 2**20
    res["peak_rss_load_mb"] = (peak.peak_self - base) / 2**20
    res["unindexed_before_optimize"] = store.unindexed()
    res["disk_before_optimize_mb"] = dir_size(folder) / 2**20
    res["wal_before_optimize_mb"] = dir_size(store._path(store._generation) / "wal") / 2**20
    # optimize() flushes first, which truncates the write-ahead log: the shard it copies
    # is this one, the size the build's disk is compared with.
    store._shard.flush()
    res["disk_flushed_mb"] = dir_size(folder) / 2**20

    def search(v, f):
        return _hit_ids(store.search(v, f.to_store() if f else None, limit=K))

    if wd.n <= cfg["pre_optimize_max"]:
        log.info("edge %s: searching before optimize (brute force)", wd.n)
        res["before_optimize"] = measure(search, q, filters, truth, desc="edge brute")
    else:
        res["before_optimize"] = None
        res["before_optimize_skipped"] = f"only measured up to {cfg['pre_optimize_max']:,} points"

    log.info("edge %s %s: optimize()", wd.n, quantization)
    with PeakRss() as peak, PeakDisk(folder) as disk:
        t0 = time.perf_counter()
        store.optimize()
        res["build_s"] = time.perf_counter() - t0
    res["optimizer_child_peak_rss_mb"] = max(peak.peak_children / 2**20,
                                             _peak_mb(resource.RUSAGE_CHILDREN))
    res["disk_peak_build_mb"] = disk.peak / 2**20
    res["unindexed_after_optimize"] = store.unindexed()
    res["rss_growth_mb"] = (rss_bytes() - base) / 2**20
    res["peak_rss_mb"] = (max(peak.peak_self, rss_bytes()) - base) / 2**20
    res["disk_with_old_mb"] = dir_size(folder) / 2**20  # the old shard in its read grace
    wait_retired(store)
    res["disk_mb"] = dir_size(folder) / 2**20
    res["wal_mb"] = dir_size(store._path(store._generation) / "wal") / 2**20
    res["hnsw_ef"] = store.beam(store.hnsw_ef, index.hnsw_ef_growth)  # grown with the store
    # First pass right after the swap: the new shard's files are not yet in memory.
    res["queries"] = measure(search, q, filters, truth, desc=f"edge {quantization}")

    sweep = {}
    store.index = dataclasses.replace(index, hnsw_ef_growth=0)  # each beam as it is
    for ef in cfg["ef_sweep"]:
        store.hnsw_ef = ef
        sweep[str(ef)] = measure(search, q, filters, truth, desc=f"edge ef={ef}")
    store.hnsw_ef, store.index = cfg["hnsw_ef"], index
    res["hnsw_ef_sweep"] = sweep
    if quantization != "none":
        over = {}
        for o in cfg["oversampling_sweep"]:
            store.index = dataclasses.replace(index, oversampling=float(o))
            over[str(o)] = measure(search, q, filters, truth, desc=f"edge oversampling={o}")
        store.index = dataclasses.replace(index, rescore=False)
        over["no rescoring"] = measure(search, q, filters, truth, desc="edge no rescoring")
        store.index = index
        res["oversampling_sweep"] = over
    store.index = dataclasses.replace(index, acorn=not index.acorn)
    res["acorn_flipped"] = measure(search, q, filters, truth, modes=("colour", "category+price"),
                                   desc=f"edge acorn={not index.acorn}")
    res["loose_flipped_to"] = 0.0 if index.loose_oversampling else IndexConfig.loose_oversampling
    store.index = dataclasses.replace(index, loose_oversampling=res["loose_flipped_to"])
    res["loose_flipped"] = measure(search, q, filters, truth, modes=("colour", "category+price"),
                                   desc="edge loose filters flipped")
    store.index = index
    res["queries_repeat"] = measure(search, q, filters, truth, desc="edge again")
    if cfg["fresh"]:
        res["fresh"] = _fresh_import(store, wd, cfg, q)
    res["process_peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
    whole.stop()
    res["process_peak_private_mb"] = whole.peak_self_private / 2**20
    res["optimizer_child_peak_private_mb"] = whole.peak_children_private / 2**20
    store.close()
    if not cfg["keep"]:
        shutil.rmtree(folder, ignore_errors=True)
    return res


def wait_retired(store, timeout: float = 60.0) -> None:
    """Until the shard the build replaced is removed (searches still running on it get
    READ_GRACE_SECONDS), so that the disk after the build is the new shard's alone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
            p != store._path(store._generation) for p in store.folder.glob("shard-*")):
        time.sleep(0.2)


def _fresh_import(store, wd: Workdir, cfg: dict, q: np.ndarray) -> dict:
    """A new import of `fresh` points after the build: searched exactly until the next
    build, and merged by the engine with the indexed part. Recall against the store's own
    exact search over all points (FAISS's truth does not hold the new ones)."""
    from bench.vector_search.systems import _hit_ids
    from catalogue.store.base import StoredPoint, point_id

    n, gen = cfg["fresh"], Generator(cfg["seed"])
    x, c = gen.chunk(2, 0, n)  # stream 2: neither stored points nor queries
    for a in range(0, n, cfg["batch"]):
        store.upsert([StoredPoint(point_id(f"p{wd.n + i:07d}"), {
            "product_id": f"p{wd.n + i:07d}", "price": float(c["price"][i])}, x[i])
            for i in range(a, min(n, a + cfg["batch"]))])
    count = min(len(q), cfg["fresh_queries"])
    times, found, exact = [], [], []
    for i in range(count):
        t0 = time.perf_counter()
        found.append(_hit_ids(store.search(q[i], limit=K)))
        times.append(time.perf_counter() - t0)
    for i in range(min(count, 100)):
        exact.append(_hit_ids(store.search(q[i], limit=K, exact=True)))
    ms = np.asarray(times) * 1e3
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, exact, strict=False)]))
    fresh_hits = np.mean([sum(h >= wd.n for h in e) for e in exact])
    return {"points": n, "unindexed": store.unindexed(), "queries": count,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "recall_at_10_vs_exact": recall, "fresh_in_exact_top10": float(fresh_hits)}
