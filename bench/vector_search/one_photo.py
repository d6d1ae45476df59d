"""One photo a product: the graph over the means alone against its pool scored by MaxSim
over the photo rows, on the same store, in one process, taking turns.

    .venv/bin/python -m bench.vector_search.one_photo                 # 100k, about 6 minutes
    .venv/bin/python -m bench.vector_search.one_photo --size 20000    # smoke test

While every product has one photo, a product's mean is its photo, so the embedded store
searches the graph alone (one engine stage, rescored with its own originals) instead of
taking the graph's best oversampling x limit and scoring them by MaxSim over the rows (two
stages; catalogue.store.query.plan). Both answer the same; this measures what the second
stage costs. One EdgeStore as the app opens it (the store's defaults: int8 with rescoring
from 100k points), loaded with `bench.vector_search`'s data and indexed; then the query
loop of `bench.vector_search` (p50/p99, recall@10 against exact search, unfiltered and with
either filter) for each plan in turn, `--rounds` times, the plan chosen by the store's
record of the most photos a product has (`EdgeStore._photos`) and its graph pool (`PLANS`).
Results: bench/results/vector_search_one_photo.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
from pathlib import Path

from bench.common import markdown_table, run_record, write_results
from bench.vector_search.data import DIM, K, Workdir
from bench.vector_search.edge_run import BENCH_INDEXES
from bench.vector_search.layout import run_lines
from bench.vector_search.measure import measure
from bench.vector_search.systems import _hit_ids, _load_store
from bench.vector_search.truth import prepared
from catalogue.settings import CatalogueSettings
from catalogue.store.edge import EdgeStore

# The store's record of the most photos a product has (1, or None: unknown), and its
# graph pool: with none, the graph's best oversampling x limit are scored by MaxSim, as
# the store did for one-photo products before the graph answered alone.
PLANS = {"the graph alone (now)": (1, None),
         "oversampling x limit of the graph's, by MaxSim (before)": (None, 0)}


def run(wd: Workdir, seed: int, rounds: int) -> dict:
    q, truth, cols, filters = wd.run_inputs(seed)
    settings = CatalogueSettings()
    index = settings.index_config
    store = EdgeStore(wd.root / "edge", DIM, hnsw_ef=settings.hnsw_ef, indexes=BENCH_INDEXES,
                      index=index)
    res: dict = {"load_s": _load_store(store, wd, cols, 1000, "load")}
    t0 = time.perf_counter()
    store.optimize()
    res["build_s"] = time.perf_counter() - t0
    res["beam"] = store.beam(store.hnsw_ef, store.index.hnsw_ef_growth)

    def search(v, f):
        return _hit_ids(store.search(v, f.to_store() if f else None, limit=K))

    res["rounds"] = []
    for r in range(rounds):
        res["rounds"].append({})
        for name, (photos, pool) in PLANS.items():
            store._photos = photos
            store.index = index if pool is None else dataclasses.replace(index, graph_pool=pool)
            res["rounds"][r][name] = measure(search, q, filters, truth, desc=f"{r} {name}")
    store.close()
    return res


def report(result: dict) -> str:
    rows = [[str(r + 1), name] + [f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f}, "
                                  f"{m['recall_at_10']:.4f}" for m in modes.values()]
            for r, plans in enumerate(result["rounds"]) for name, modes in plans.items()]
    modes = list(result["rounds"][0].values())[0]
    return "\n\n".join([
        "# One photo a product: the graph alone against its pool scored by MaxSim",
        *run_lines(result),
        f"{result['n']:,} one-photo products of 512-d CLIP-like vectors (bench.vector_search's "
        f"data), {result['queries']} queries, limit {K}; the store's defaults (index "
        f"{result['index']}), beam {result['beam']}; load {result['load_s']:.0f} s, build "
        f"{result['build_s']:.0f} s. The plans take turns, each mode's whole query set at a "
        "time.",
        markdown_table(["round", "plan", *[f"{mode}: p50 / p99 ms, recall@10"
                                           for mode in modes]], rows), ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.one_photo",
                                description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="vector_search_one_photo")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vitrine-one-photo-") as tmp:
        res = run(prepared(Path(tmp), args.size, args.queries, args.seed), args.seed,
                  args.rounds)
    result = {**run_record("bench.vector_search.one_photo", argv, load_before), **res,
              "n": args.size, "queries": args.queries,
              "index": CatalogueSettings().index_config.as_json()}
    write_results(args.out, result, report(result))
    print(f"Written: bench/results/{args.out}.md")


if __name__ == "__main__":
    main()
