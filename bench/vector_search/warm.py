"""The first searches on a shard just opened, with and without reading its files first
(catalogue.store.edge_warm), side by side in one run.

    .venv/bin/python -m bench.vector_search.warm                     # 200k points, 5 minutes
    .venv/bin/python -m bench.vector_search.warm --points 5000       # smoke test

One store is loaded and indexed as the app does it (the store's defaults: int8 from 100k
points, originals on disk); then it is closed and opened again, `--rounds` times in
turn without and with the warming, and each time the first `--queries` unfiltered
searches are timed from the first one on. What the engine does on open (it drops its
files from the page cache) happens on every open, so the page cache is left as it is.
Results: bench/results/vector_search_warm.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import catalogue.store.edge as edge
from bench.common import dir_size, markdown_table, run_record, write_results
from bench.vector_search.data import DIM, Generator, K
from bench.vector_search.layout import run_lines
from catalogue.store.base import StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.edge_warm import warm


def build(folder: Path, n: int, seed: int) -> float:
    store = EdgeStore(folder, DIM)
    gen = Generator(seed)
    for start in range(0, n, 1000):
        x, _ = gen.chunk(0, start, min(1000, n - start))
        store.upsert([StoredPoint(point_id(f"p{start + i}"), {"product_id": f"p{start + i}"},
                                  x[i]) for i in range(len(x))])
    started = time.perf_counter()
    store.optimize()
    took = time.perf_counter() - started
    store.close()
    return took


def first_searches(folder: Path, queries: np.ndarray, warmed: bool) -> dict:
    """Open the store (warming its files or not) and time its first searches."""
    edge.warm = warm if warmed else (lambda path: 0)
    started = time.perf_counter()
    store = EdgeStore(folder, DIM)
    opened = time.perf_counter() - started
    ms = []
    for v in queries:
        t0 = time.perf_counter()
        store.search(v, limit=K)
        ms.append((time.perf_counter() - t0) * 1e3)
    store.close()
    times = np.asarray(ms)
    return {"warmed": warmed, "open_s": opened, "first_ms": float(times[0]),
            "first10_ms": float(times[:10].sum()), "p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99)), "max_ms": float(times.max()),
            "total_ms": float(times.sum())}


def report(result: dict) -> str:
    rows = [["warmed" if r["warmed"] else "as opened", f"{r['open_s']:.2f}",
             f"{r['first_ms']:.1f}", f"{r['first10_ms']:.0f}", f"{r['p50_ms']:.2f}",
             f"{r['p99_ms']:.2f}", f"{r['max_ms']:.1f}", f"{r['total_ms']:.0f}"]
            for r in result["rounds"]]
    header = ["open", "open s (warming included)", "first search ms", "first 10 ms",
              "p50 ms", "p99 ms", "max ms", f"all {result['queries']} ms"]
    return "\n\n".join([
        "# First searches on a shard just opened", *run_lines(result),
        f"{result['n']:,} points of {DIM} dimensions, the store's defaults (int8 from 100k, "
        f"originals on disk); index build {result['build_s']:.0f} s, shard "
        f"{result['disk_mb']:.0f} MB; the first {result['queries']} unfiltered searches "
        f"(limit {K}) after each open.",
        markdown_table(header, rows), ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.warm",
                                description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=200_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="vector_search_warm")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vitrine-warm-") as tmp:
        root = Path(tmp)
        build_s = build(root, args.points, args.seed)
        queries, _ = Generator(args.seed).chunk(1, 0, args.queries)
        rounds = [first_searches(root, queries, warmed)
                  for _ in range(args.rounds) for warmed in (False, True)]
        disk_mb = dir_size(root) / 2**20
    result = {**run_record("bench.vector_search.warm", argv, load_before), "n": args.points,
              "queries": args.queries, "build_s": build_s, "disk_mb": disk_mb,
              "rounds": rounds}
    write_results(args.out, result, report(result))
    print(report(result))


if __name__ == "__main__":
    main()
