"""A graph over one photo a product, MaxSim over all of them: would it keep the
several-photos layout's answers at the plain layout's cost? Side by side, one run.

    .venv/bin/python -m bench.vector_search.main_photo                   # 100k x 4, 6 minutes
    .venv/bin/python -m bench.vector_search.main_photo --products 5000   # smoke test

The store's layout (`bench.vector_search.layout`: photo rows, a MaxSim multi-vector with
its own graph) costs the engine about twice the plain layout's build and search. The
candidate here keeps the photo rows for scoring, without a graph of their own (HNSW m 0),
and adds one plain vector a product with the graph: the main photo ("main"), or the mean
of the product's photos ("mean"). A search walks that graph for `--pool` candidates
(a prefetch) and scores them by MaxSim over their rows, which the engine does in one
query. Products with N photos (`bench.vector_search.views`: views of a garment), photo
queries (a held-out view of a catalogue product) and text queries, recall@10 against
exact MaxSim, unfiltered and with a category filter; the same int8 with rescoring and
index settings as the store. Each layout in its own spawned process; its build in
process; the first pool measured after a warm-up pass.
Results: bench/results/vector_search_main_photo.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import qdrant_edge as qe

from bench.common import dir_size, markdown_table, run_record, write_results
from bench.vector_search.data import CATEGORIES, DIM, Generator, K, _unit
from bench.vector_search.layout import cell, isolated, plain, rows_with_graph, run_lines
from bench.vector_search.measure import measure
from bench.vector_search.views import (
    QUERY_SETS,
    Catalogue,
    exact_maxsim,
    filters,
    generate,
    to_store,
)
from catalogue.settings import CatalogueSettings
from catalogue.store.edge_config import field_index, hnsw, search_params
from catalogue.store.edge_engine import engine_filter
from catalogue.store.index_config import IndexConfig

LAYOUTS = {"rows": "photo rows with their own graph (the store's)",
           "main": "graph over the main photo, MaxSim over the rows",
           "mean": "graph over the photos' mean, MaxSim over the rows"}
MODES = ("none", "category")


def run_layout(layout: str, root: str, n: int, queries: int, photos: int, seed: int,
               pools: list[int], beam: int, index_json: dict) -> dict:
    """One layout's shard: load, build, queries per pool. Runs in its own process."""
    cat = Catalogue(Path(root), n, queries)
    index = IndexConfig.from_json(index_json)
    rows = rows_with_graph(DIM, index, index.quantization_for(n))
    vectors = {"image": rows}
    if layout != "rows":  # the rows only for scoring; the graph on the plain vector
        vectors = {"image": qe.EdgeVectorParams(
            size=DIM, distance=rows.distance, multivector_config=rows.multivector_config,
            hnsw_config=hnsw(replace(index, hnsw_m=0), None), memory=rows.memory),
            "main": plain(rows)}
    path = Path(root) / f"shard-{layout}"
    shutil.rmtree(path, ignore_errors=True)
    shard = qe.EdgeShard.create(str(path), qe.EdgeConfig(vectors=vectors,
                                                          hnsw_config=hnsw(index, None)))
    shard.update(qe.UpdateOperation.create_field_index("category", field_index("keyword", True)))
    cols = cat.products()
    t0 = time.perf_counter()
    for start, block in cat.read_rows(photos, 1000):
        points = []
        for i, product in enumerate(block, start):
            named = {"image": product.tolist()}
            if layout != "rows":
                one = product[0] if layout == "main" else _unit(product.mean(0))
                named["main"] = one.tolist()
            points.append(qe.Point(i, named, {"category": CATEGORIES[cols["category"][i]]}))
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    res: dict = {"layout": layout, "n": n, "photos": photos, "load_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    shard.optimize()
    shard.flush()
    res["build_s"] = time.perf_counter() - t0
    res["disk_mb"] = dir_size(path) / 2**20
    params = search_params(index, beam, False)
    gen = Generator(seed)
    res["pools"] = {}
    for pool in ([0] if layout == "rows" else pools):
        res["pools"][str(pool)] = {}
        for s, qset in enumerate(QUERY_SETS):
            q, clusters = cat.queries(qset)
            fs = filters(gen, clusters, seed + s)
            truth, by_mode = cat.truth(photos, qset), {m: fs[m] for m in MODES}

            def search(v, f, pool=pool):
                cond, maxsim = engine_filter(to_store(f)), qe.Query.Nearest([v.tolist()], "image")
                if pool == 0:
                    request = qe.QueryRequest(limit=K, query=maxsim, filter=cond, params=params)
                else:  # the graph's candidates, scored by MaxSim
                    request = qe.QueryRequest(limit=K, query=maxsim, prefetches=[qe.Prefetch(
                        limit=pool, query=qe.Query.Nearest(v.tolist(), "main"), filter=cond,
                        params=params)])
                return [int(p.id) for p in shard.query(request)]

            measure(search, q, by_mode, truth, limit=100, modes=MODES)  # warm
            res["pools"][str(pool)][qset] = measure(
                search, q, by_mode, truth, modes=MODES,
                desc=f"{layout} pool {pool} {qset}")
    shard.close()
    shutil.rmtree(path, ignore_errors=True)
    return res


def report(result: dict) -> str:
    rows = []
    for r in result["layouts"]:
        for pool, sets in r["pools"].items():
            rows.append([LAYOUTS[r["layout"]], "-" if pool == "0" else pool,
                         f"{r['build_s']:.1f}", f"{r['disk_mb']:.0f}"]
                        + [cell(m) for qset in QUERY_SETS for m in sets[qset].values()])
    header = ["layout", "pool", "build s", "disk MB",
              *[f"{qset} {mode}: p50 / p99 ms, recall@10" for qset in QUERY_SETS
                for mode in MODES]]
    return "\n\n".join([
        "# A graph over one photo a product, MaxSim over all of them", *run_lines(result),
        f"{result['n']:,} products of {result['photos']} photos (bench.vector_search.views), "
        f"{result['queries']} queries a set, limit {K}, beam {result['beam']}; recall@10 "
        f"against exact MaxSim; index {result['index']}.",
        markdown_table(header, rows), ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.main_photo",
                                description=__doc__.split("\n")[0])
    p.add_argument("--products", type=int, default=100_000)
    p.add_argument("--photos", type=int, default=4)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--beam", type=int, default=256)
    p.add_argument("--pools", type=int, nargs="+", default=[100, 200, 400])
    p.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    p.add_argument("--out", default="vector_search_main_photo")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_before = os.getloadavg()
    index = CatalogueSettings().index_config
    root = Path(tempfile.mkdtemp(prefix="vitrine-main-photo-"))
    try:
        cat = Catalogue(root, args.products, args.queries)
        gen = generate(cat, [args.photos], args.seed)
        exact_maxsim(cat, args.photos, gen, args.seed)
        layouts = [isolated(run_layout, name, str(root), args.products, args.queries, args.photos,
                             args.seed, args.pools, args.beam, index.as_json())
                   for name in args.layouts]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {**run_record("bench.vector_search.main_photo", argv, load_before),
              "n": args.products, "photos": args.photos, "queries": args.queries,
              "beam": args.beam, "index": index.as_json(), "layouts": layouts}
    write_results(args.out, result, report(result))
    print(report(result))


if __name__ == "__main__":
    main()
