"""What the several-photos layout costs: photo rows (a multi-vector, MaxSim) against one
plain vector a point, one photo a product, side by side in one run.

    .venv/bin/python -m bench.vector_search.layout                  # 100k, about 6 minutes
    .venv/bin/python -m bench.vector_search.layout --size 20000     # smoke test

The store kept a product's photos as one multi-vector point with a graph of its own
(`rows_with_graph`; since then the graph is over the photos' mean, catalogue.store.
edge_config), so that a product is one point to filter, count and page. This measures
what that layout costs the engine when every product has one photo, as in the vector
search benchmark's 1M run: the same points, payloads, payload indexes (graph links per
colour, category and price) and index parameters as the store at that size (int8 with
rescoring, `VITRINE_HNSW_M`, `VITRINE_HNSW_EF_CONSTRUCT`), the only difference being
the vector's layout. Each layout in its own spawned process: the shard created with the
build's configuration, loaded in batches of 1,000, indexed in process (`optimize`, timed),
then the query loop of `bench.vector_search` (one query at a time, p50/p99 and recall@10
against exact search, unfiltered and with either filter) at each beam width. The first
beam is measured right after the build, with the new files not yet in the page cache:
its tail is the cold start (give a beam twice to see it warm).
Results: bench/results/vector_search_layout.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import qdrant_edge as qe

from bench.common import dir_size, markdown_table, run_record, text_table, write_results
from bench.vector_search.data import CATEGORIES, COLOURS, DIM, K, Workdir
from bench.vector_search.edge_run import BENCH_INDEXES
from bench.vector_search.measure import measure
from bench.vector_search.truth import prepared
from catalogue.settings import CatalogueSettings
from catalogue.store.base import FULL_SCAN_THRESHOLD_KB, IMAGE_VECTOR
from catalogue.store.edge_config import (
    field_index,
    hnsw,
    quantization,
    search_params,
)
from catalogue.store.edge_engine import engine_filter
from catalogue.store.index_config import IndexConfig

LAYOUTS = {"rows": "photo rows (multi-vector, MaxSim): the store's", "plain": "one plain vector"}


def rows_with_graph(dim: int, index: IndexConfig, kind: str) -> qe.EdgeVectorParams:
    """The photo rows as the store kept them until the graph over their mean: a MaxSim
    multi-vector with a graph of its own, quantised as `kind`."""
    quantized = quantization(kind)
    originals = qe.Memory.Cold if quantized is not None and index.originals_on_disk else None
    return qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine,
                               multivector_config=qe.MultiVectorConfig(
                                   qe.MultiVectorComparator.MaxSim),
                               quantization_config=quantized, memory=originals)


def run_layout(layout: str, root: str, n: int, queries: int, seed: int, beams: list[int],
               index_json: dict, full_scan_kb: int | None = None, payload_m: int = 0) -> dict:
    """One layout's shard: load, build, queries. Runs in its own process."""
    wd = Workdir(Path(root), n, queries, chunk=min(50_000, n))
    q, truth, cols, filters = wd.run_inputs(seed)
    index = IndexConfig.from_json(index_json)
    params = rows_with_graph(DIM, index, index.quantization_for(n))
    if layout == "plain":
        params = plain(params)
    path = Path(root) / f"shard-{layout}"
    shutil.rmtree(path, ignore_errors=True)
    config = qe.EdgeConfig(vectors={IMAGE_VECTOR: params},
                           hnsw_config=hnsw(index, full_scan_kb, payload_m or None))
    shard = qe.EdgeShard.create(str(path), config)
    for name, kind in BENCH_INDEXES:
        shard.update(qe.UpdateOperation.create_field_index(name, field_index(kind, True)))

    def vector(x):
        return [x.tolist()] if layout == "rows" else x.tolist()

    t0 = time.perf_counter()
    for start, x in wd.read_chunks(1000):
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, {IMAGE_VECTOR: vector(v)}, {
            "colour": COLOURS[cols["colour"][i]], "category": CATEGORIES[cols["category"][i]],
            "price": float(cols["price"][i])}) for i, v in enumerate(x, start)]))
    shard.flush()
    res: dict = {"layout": layout, "n": n, "load_s": time.perf_counter() - t0,
                 "full_scan_kb": full_scan_kb or FULL_SCAN_THRESHOLD_KB,
                 "payload_m": payload_m or index.hnsw_m,
                 "disk_flushed_mb": dir_size(path) / 2**20}
    t0 = time.perf_counter()
    shard.optimize()
    shard.flush()
    res["build_s"] = time.perf_counter() - t0
    res["disk_mb"] = dir_size(path) / 2**20
    res["beams"] = {}
    for beam in beams:
        config = search_params(index, beam, False)

        def search(v, f, config=config):
            points = shard.query(qe.QueryRequest(
                limit=K, query=qe.Query.Nearest(vector(v), IMAGE_VECTOR), params=config,
                filter=engine_filter(f.to_store() if f else None)))
            return [int(p.id) for p in points]

        key = str(beam) if str(beam) not in res["beams"] else f"{beam} again"
        res["beams"][key] = measure(search, q, filters, truth, desc=f"{layout} ef={beam}")
    shard.close()
    shutil.rmtree(path, ignore_errors=True)
    return res


def plain(rows: qe.EdgeVectorParams) -> qe.EdgeVectorParams:
    """The photo rows' parameters (`rows_with_graph`) as one plain vector's: the same
    distance, quantisation and memory, no multi-vector."""
    return qe.EdgeVectorParams(size=rows.size, distance=rows.distance,
                               quantization_config=rows.quantization_config,
                               memory=rows.memory)


def isolated(run, *args) -> dict:
    """`run(*args)` in a fresh spawned process: its memory and its page faults its own."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(run, args)


def cell(m: dict) -> str:
    """One mode's figures in a report's cell."""
    return f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f}, {m['recall_at_10']:.3f}"


def run_lines(result: dict) -> list[str]:
    """The machine, the load around the run and the command, as a report's lines."""
    m = result["machine"]
    return [f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores, "
            f"{m['memory_gib']} GiB; {m['date']}; load average before "
            f"{result['load_before']}, after {result['load_after']}.",
            f"Command: `{result['command']}`"]


def report(result: dict) -> str:
    rows = []
    for r in result["layouts"]:
        for beam, modes in r["beams"].items():
            rows.append([LAYOUTS[r["layout"]], f"{r['full_scan_kb']:,}", r.get("payload_m", "-"),
                         beam, f"{r['build_s']:.1f}",
                         f"{r['disk_flushed_mb']:.0f} / {r['disk_mb']:.0f}"]
                        + [cell(m) for m in modes.values()])
    modes = list(result["layouts"][0]["beams"].values())[0]
    header = ["layout", "full scan below (KB)", "links per value (payload m)", "beam",
              "build s", "disk MB: loaded / indexed",
              *[f"{mode}: p50 / p99 ms, recall@10" for mode in modes]]
    return "\n\n".join([
        "# The vector layout: photo rows against one plain vector", *run_lines(result),
        f"{result['n']:,} points of 512-d CLIP-like vectors (bench.vector_search's data), "
        f"{result['queries']} queries, limit {K}; one photo a product; index "
        f"{result['index']}.",
        markdown_table(header, rows), ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.layout",
                                description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--beams", type=int, nargs="+", default=[128, 256, 384])
    p.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    p.add_argument("--full-scan-kb", type=int, nargs="+", default=[FULL_SCAN_THRESHOLD_KB],
                   help="the engine's full-scan threshold: a filter keeping fewer points' "
                        "vectors than this is searched exactly, and gets no links per value")
    p.add_argument("--payload-m", type=int, nargs="+", default=[0],
                   help="links per point in the graphs per filter value (0: as m)")
    p.add_argument("--out", default="vector_search_layout", help="results name under bench/results")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_before = os.getloadavg()
    index = CatalogueSettings().index_config
    root = Path(tempfile.mkdtemp(prefix="vitrine-layout-"))
    try:
        prepared(root, args.size, args.queries, args.seed)
        layouts = [isolated(run_layout, name, str(root), args.size, args.queries, args.seed,
                            args.beams, index.as_json(), kb, pm)
                   for name in args.layouts for kb in args.full_scan_kb for pm in args.payload_m]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {**run_record("bench.vector_search.layout", argv, load_before), "n": args.size,
              "queries": args.queries, "index": index.as_json(), "layouts": layouts}
    markdown = report(result)
    write_results(args.out, result, markdown)
    print(text_table(["layout", "build s"], [[r["layout"], f"{r['build_s']:.1f}"]
                                             for r in layouts]))
    print(f"\nWritten: bench/results/{args.out}.md")


if __name__ == "__main__":
    main()
