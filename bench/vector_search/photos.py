"""Search over products with several photos: 1 photo against N, side by side, one run.

    .venv/bin/python -m bench.vector_search.photos                    # 100k x 1 and x 4, 30 min
    .venv/bin/python -m bench.vector_search.photos --products 10000   # estimate the build
    .venv/bin/python -m bench.vector_search.photos --quick            # smoke test

The embedded store as the app opens it (a named multi-vector `image`, MaxSim; the
default catalogue schema's payload indexes, `VITRINE_HNSW_EF`'s default), loaded with
products of 1 and of N photos (`bench.vector_search.views`), each case in its own
spawned process so its RSS is its own. Per case: load and index build time, peak RSS of
the process and of the optimizer child, disk, then p50/p99 and recall@10 against exact
MaxSim for photo and text queries, unfiltered and filtered (colour: a nested variant
filter as the app sends it, and colour-flat: the same colour as a plain condition on
`variants[].colour`; category; category + a nested variant price band), and a sweep of
the beam width.
Results: bench/results/vector_search_photos.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import (
    PeakRss,
    dir_size,
    markdown_table,
    rss_bytes,
    run_record,
    text_table,
    write_results,
)
from bench.vector_search.data import DIM, Generator, K
from bench.vector_search.edge_run import wait_retired
from bench.vector_search.measure import measure
from bench.vector_search.views import (
    FLAT_COLOUR,
    MODES,
    QUERY_SETS,
    Catalogue,
    exact_maxsim,
    filters,
    generate,
    payload,
    to_store,
)
from catalogue.settings import CatalogueSettings

log = logging.getLogger("bench.vector_search.photos")
RECALL_GOAL = 0.98


def run_case(cat: Catalogue, photos: int, cfg: dict) -> dict:
    """Load, index and query one store of `photos`-photo products (in its own process)."""
    from catalogue.attributes import DEFAULT_SCHEMA
    from catalogue.store.base import StoredPoint, point_id
    from catalogue.store.edge import EdgeStore
    from catalogue.store.index_config import IndexConfig

    cols = cat.products()
    folder = cat.root / f"edge-{photos}"
    shutil.rmtree(folder, ignore_errors=True)
    base = rss_bytes()
    indexes = [(path, kind.value) for path, kind in DEFAULT_SCHEMA.indexes()]
    store = EdgeStore(folder, DIM, hnsw_ef=cfg["hnsw_ef"], indexes=indexes,
                      index=IndexConfig(graph_pool=cfg["graph_pool"]))
    res: dict = {"photos": photos, "products": cat.n, "rows": cat.n * photos,
                 "hnsw_ef": cfg["hnsw_ef"]}
    with PeakRss() as peak:
        t0 = time.perf_counter()
        for start, rows in cat.read_rows(photos, cfg["batch"]):
            store.upsert([StoredPoint(point_id(f"p{start + j:07d}"),
                                      payload(start + j, cols, photos), rows[j])
                          for j in range(len(rows))])
        res["load_s"] = time.perf_counter() - t0
        res["disk_before_optimize_mb"] = dir_size(folder) / 2**20
        t0 = time.perf_counter()
        store.optimize()
        res["build_s"] = time.perf_counter() - t0
    res["optimizer_child_peak_rss_mb"] = peak.peak_children / 2**20
    res["peak_rss_mb"] = (max(peak.peak_self, rss_bytes()) - base) / 2**20
    res["unindexed_after_optimize"] = store.unindexed()
    wait_retired(store)
    res["disk_mb"] = dir_size(folder) / 2**20

    def search(v, f):
        return [int(h.payload["product_id"][1:]) for h in store.search(v, f, limit=K)]

    gen = Generator(cfg["seed"])
    sets = {}
    for s, qset in enumerate(QUERY_SETS):
        q, clusters = cat.queries(qset)
        fs = {m: [to_store(f, flat=m == FLAT_COLOUR) for f in fl]
              for m, fl in filters(gen, clusters, cfg["seed"] + s).items()}
        sets[qset] = (q, fs, cat.truth(photos, qset))
        for v in q:  # the new shard's files into memory, as a serving store has them
            search(v, None)
    res["queries"] = {qset: measure(search, q, fs, truth, modes=cfg["modes"],
                                     desc=f"{photos}p {qset}")
                      for qset, (q, fs, truth) in sets.items()}
    sweep: dict = {}
    for ef in cfg["ef_sweep"]:
        store.hnsw_ef = ef
        sweep[str(ef)] = {qset: measure(search, q, fs, truth, limit=cfg["sweep_queries"],
                                        modes=cfg["modes"], desc=f"{photos}p ef={ef} {qset}")
                          for qset, (q, fs, truth) in sets.items()}
    res["hnsw_ef_sweep"] = sweep
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    return res


def _child(cat: Catalogue, photos: int, cfg: dict, out: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    Path(out).write_text(json.dumps(run_case(cat, photos, cfg)))


def run_isolated(cat: Catalogue, photos: int, cfg: dict, timeout: float) -> dict:
    out = cat.root / f"result-{photos}.json"
    proc = mp.get_context("spawn").Process(target=_child, args=(cat, photos, cfg, str(out)))
    t0, load = time.perf_counter(), os.getloadavg()[0]
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        import psutil

        for child in psutil.Process(proc.pid).children(recursive=True):  # the optimizer
            child.kill()
        proc.kill()
        proc.join()
        return {"photos": photos, "skipped": f"did not finish within {timeout:.0f} s"}
    if proc.exitcode != 0 or not out.exists():
        return {"photos": photos, "skipped": f"failed with exit code {proc.exitcode}"}
    return {**json.loads(out.read_text()), "wall_s": time.perf_counter() - t0,
            "loadavg_1min": [load, os.getloadavg()[0]]}


def _f(v, digits=2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def needed_ef(case: dict, qset: str, mode: str) -> str:
    """The smallest beam width measured whose recall@10 reaches RECALL_GOAL."""
    found = {int(ef): r[qset][mode]["recall_at_10"] for ef, r in case["hnsw_ef_sweep"].items()}
    found[case["hnsw_ef"]] = case["queries"][qset][mode]["recall_at_10"]
    good = [ef for ef, rec in sorted(found.items()) if rec >= RECALL_GOAL]
    return str(good[0]) if good else f"> {max(found)}"


def tables(res: dict) -> tuple[list, list, list, list]:
    cases = [c for c in res["cases"] if "skipped" not in c]
    build = [[c["photos"], f"{c['rows']:,}", _f(c["load_s"], 1), _f(c["build_s"], 1),
              _f(c["peak_rss_mb"], 0), _f(c["optimizer_child_peak_rss_mb"], 0),
              _f(c["disk_mb"], 0)] for c in cases]
    search = [[c["photos"], qset, mode, _f(m["p50_ms"]), _f(m["p99_ms"]),
               _f(m["recall_at_10"], 4), needed_ef(c, qset, mode)]
              for c in cases for qset, modes in c["queries"].items() for mode, m in modes.items()]
    sweep = [[c["photos"], ef, qset, mode, _f(m["p50_ms"]), _f(m["p99_ms"]),
              _f(m["recall_at_10"], 4)]
             for c in cases for ef, sets in c["hnsw_ef_sweep"].items()
             for qset, modes in sets.items() for mode, m in modes.items()]
    skipped = [f"{c['photos']} photo(s): {c['skipped']}" for c in res["cases"] if "skipped" in c]
    return build, search, sweep, skipped


BUILD = ["photos", "rows", "load s", "index build s", "peak RSS MB", "optimizer child peak MB",
         "disk MB"]
SEARCH = ["photos", "queries", "filter", "p50 ms", "p99 ms", "recall@10",
          f"hnsw_ef for recall >= {RECALL_GOAL}"]
SWEEP = ["photos", "hnsw_ef", "queries", "filter", "p50 ms", "p99 ms", "recall@10"]


def markdown(res: dict) -> str:
    m = res["machine"]
    build, search, sweep, skipped = tables(res)
    sel = res["truth"][str(res["photo_counts"][-1])]
    lines = [
        "# Vector search: products with several photos", "",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} cores, {m['memory_gib']} GiB; "
        f"{m['date']}; load average {res['load_before']} before, {res['load_after']} after.",
        "", f"Command: `{res['command']}`", "",
        f"{res['products']:,} products, 512-d CLIP-like vectors; each photo a view of its "
        f"product (centre + {res['view_spread']} x the cluster's spread, normalised); payloads "
        "as Vitrine stores them (category, gender, 1-3 variants with colour, size, price, "
        "availability), the default catalogue schema's payload indexes. "
        f"{res['queries']} photo queries (a held-out view of a random product) and "
        f"{res['queries']} text-like queries (held-out draws), limit 10, one at a time; "
        "recall@10 against exact MaxSim over every row, reduced per product. Filters: colour "
        "(nested on variants), category, category + a variant price band; selectivity "
        + ", ".join(f"{k} {v:.1%}" for k, v in sel["text"]["selectivity"].items()) + "."
        + (f" {FLAT_COLOUR}: the colour filter as a plain condition on `variants[].colour` "
           "(same products, no nested filter)." if FLAT_COLOUR in res.get("modes", ()) else ""),
        "",
        "## Build and memory", "", markdown_table(BUILD, build), "",
        "Peak RSS: the case's process above its start (the shard's files mapped in included); "
        "the optimizer child builds the index on a copy of the shard.", "",
        f"## Search (hnsw_ef {res['hnsw_ef']}, `VITRINE_HNSW_EF`'s default; graph pool "
        f"{res.get('graph_pool', 256)}, `VITRINE_GRAPH_POOL`, within the beam)", "",
        markdown_table(SEARCH, search), "",
        *([f"## Beam width sweep (first {res['sweep_queries']} queries per set)", "",
           markdown_table(SWEEP, sweep), ""] if sweep else []),
        "## Notes", "",
        *[f"- exact truth, {p} photo(s): FAISS and numpy agree on "
          f"{t['text']['faiss_numpy_agreement']:.4f} / {t['photo']['faiss_numpy_agreement']:.4f}"
          " of the unfiltered top 10 (text / photo)." for p, t in res["truth"].items()],
        *[f"- {c['photos']} photo(s): case wall time {c['wall_s']:.0f} s, 1-min load "
          f"{c['loadavg_1min'][0]:.1f} at start, {c['loadavg_1min'][1]:.1f} at end."
          for c in res["cases"] if "wall_s" in c],
        *[f"- not measured: {s}" for s in skipped],
        *[f"- {n}" for n in res["notes"]], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.photos",
                                description=__doc__.split("\n")[0])
    p.add_argument("--products", type=int, default=100_000)
    p.add_argument("--photos", type=int, nargs="+", default=[1, 4],
                   help="photos per product, one case each")
    p.add_argument("--queries", type=int, default=1000, help="per query set")
    p.add_argument("--modes", nargs="+", default=[*MODES, FLAT_COLOUR],
                   choices=[*MODES, FLAT_COLOUR],
                   help=f"filters measured ({FLAT_COLOUR}: colour as a plain condition on "
                   "variants[].colour, the alternative to the nested filter)")
    p.add_argument("--hnsw-ef", type=int, default=CatalogueSettings().hnsw_ef)
    p.add_argument("--graph-pool", type=int, default=CatalogueSettings().graph_pool,
                   help="candidates of the graph over the photos' mean scored by MaxSim, "
                        "within the beam (VITRINE_GRAPH_POOL)")
    p.add_argument("--ef-sweep", type=int, nargs="*", default=[128, 512])
    p.add_argument("--sweep-queries", type=int, default=300)
    p.add_argument("--batch", type=int, default=500, help="products per upsert")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    p.add_argument("--quick", action="store_true", help="5k products, 100 queries")
    p.add_argument("--out", default=None, help="results name (default vector_search_photos)")
    p.add_argument("--note", action="append", default=[])
    p.add_argument("--render", metavar="JSON", help="only rewrite the .md (adding --note)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.render:
        res = json.loads(Path(args.render).read_text())
        res["notes"] += [n for n in args.note if n not in res["notes"]]
        Path(args.render).write_text(json.dumps(res, indent=2) + "\n")
        Path(args.render).with_suffix(".md").write_text(markdown(res))
        return
    if args.quick:
        args.products, args.queries, args.sweep_queries, args.ef_sweep = 5000, 100, 100, [64]
    name = args.out or ("vector_search_photos_quick" if args.quick else "vector_search_photos")
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="vitrine-bench-photos-"))
    cat = Catalogue(root, args.products, args.queries)
    cfg = {"seed": args.seed, "hnsw_ef": args.hnsw_ef, "graph_pool": args.graph_pool,
           "modes": args.modes,
           "ef_sweep": args.ef_sweep, "sweep_queries": args.sweep_queries, "batch": args.batch}
    try:
        t0 = time.perf_counter()
        gen = generate(cat, args.photos, args.seed)
        log.info("generated %s products in %.0f s", f"{cat.n:,}", time.perf_counter() - t0)
        truth = {}
        for photos in args.photos:
            t0 = time.perf_counter()
            truth[str(photos)] = exact_maxsim(cat, photos, gen, args.seed)
            log.info("exact MaxSim, %d photo(s): %.0f s", photos, time.perf_counter() - t0)
        cases = []
        for photos in args.photos:
            log.info("case: %d photo(s) per product", photos)
            cases.append(run_isolated(cat, photos, cfg, args.timeout))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    from bench.vector_search.views import VIEW_SPREAD

    res = {**run_record("bench.vector_search.photos", argv, load_before),
           "products": args.products, "photo_counts": args.photos, "queries": args.queries,
           "hnsw_ef": args.hnsw_ef, "graph_pool": args.graph_pool,
           "sweep_queries": args.sweep_queries, "modes": args.modes,
           "view_spread": VIEW_SPREAD, "truth": truth, "cases": cases, "notes": args.note}
    if args.quick:  # a smoke test must not overwrite the real results
        out = Path(tempfile.gettempdir()) / f"{name}.md"
        out.write_text(markdown(res))
        out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    else:
        write_results(name, res, markdown(res))
    build, search, _, skipped = tables(res)
    print(text_table(BUILD, build), "", text_table(SEARCH, search), *skipped, sep="\n")


if __name__ == "__main__":
    main()
