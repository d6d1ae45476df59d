"""The command line: `python -m bench.vector_search`, per size generate, run, report.

See the package docstring (bench/vector_search/__init__.py) for what is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import bench.vector_search
from bench.common import RESULTS_DIR, machine_info, text_table
from bench.vector_search.data import Shape, Workdir, generate, query_filters
from bench.vector_search.report import (
    HEADER,
    check_big,
    check_target,
    result_rows,
    write_markdown,
)
from bench.vector_search.systems import SYSTEM_LABELS, SYSTEMS, run_isolated
from bench.vector_search.truth import ground_truth
from catalogue.settings import CatalogueSettings

log = logging.getLogger("bench.vector_search")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search",
                                description=bench.vector_search.__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="5k points, 100 queries: smoke test")
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--batch", type=int, default=1000, help="points per upsert")
    p.add_argument("--server-max-size", type=int, default=100_000,
                   help="largest size run through qdrant-client local mode")
    p.add_argument("--server-queries", type=int, default=200,
                   help="queries per mode for qdrant-client local mode (Python filters are slow)")
    p.add_argument("--faiss-hnsw-max-size", type=int, default=100_000)
    p.add_argument("--flat-queries", type=int, default=None,
                   help="queries per mode for the FAISS flat baseline (default: all)")
    p.add_argument("--faiss-m", type=int, default=16)
    p.add_argument("--faiss-ef-construction", type=int, default=100)
    p.add_argument("--faiss-ef-search", type=int, default=64)
    p.add_argument("--pre-optimize-max", type=int, default=100_000,
                   help="largest size at which Edge is also measured before optimize()")
    p.add_argument("--hnsw-ef", type=int, default=CatalogueSettings().hnsw_ef,
                   help="Edge search-time beam width (default: VITRINE_HNSW_EF or its default)")
    p.add_argument("--ef-sweep", type=int, nargs="*", default=[64, 128, 256, 384])
    defaults = CatalogueSettings().index_config  # the app's, unless told otherwise
    p.add_argument("--hnsw-m", type=int, default=defaults.hnsw_m)
    p.add_argument("--ef-construct", type=int, default=defaults.hnsw_ef_construct)
    p.add_argument("--hnsw-ef-growth", type=int, default=defaults.hnsw_ef_growth,
                   help="beam added per tenfold of points beyond 100k (VITRINE_HNSW_EF_GROWTH)")
    p.add_argument("--filter-links", action=argparse.BooleanOptionalAction,
                   default=defaults.filter_links,
                   help="graph links per value of the filter fields (payload-aware HNSW)")
    p.add_argument("--acorn", action=argparse.BooleanOptionalAction, default=defaults.acorn,
                   help="filtered searches look past excluded neighbours (ACORN)")
    p.add_argument("--oversampling", type=float, default=defaults.oversampling)
    p.add_argument("--loose-oversampling", type=float, default=defaults.loose_oversampling,
                   help="loose filters applied among this x limit / share unfiltered "
                        "candidates (VITRINE_LOOSE_FILTER_OVERSAMPLING; 0: never)")
    p.add_argument("--oversampling-sweep", type=float, nargs="*", default=[1.0, 2.0, 3.0])
    p.add_argument("--originals-on-disk", action=argparse.BooleanOptionalAction,
                   default=defaults.originals_on_disk)
    p.add_argument("--optimizer-memory-mb", type=int, default=defaults.optimizer_memory_mb)
    p.add_argument("--fresh", type=int, default=10_000,
                   help="points imported after the build, searched exactly until the next one")
    p.add_argument("--fresh-queries", type=int, default=300)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per system and size")
    p.add_argument("--note", action="append", default=[], help="a line for the Notes section")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep generated data and the shard")
    p.add_argument("--merge", action="store_true",
                   help="keep the other sizes' results already in the output JSON")
    p.add_argument("--out", type=Path, default=None,
                   help=f"results folder (default {RESULTS_DIR}; /tmp for --quick)")
    p.add_argument("--render", action="store_true",
                   help="only rewrite the markdown (and target) from the existing JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quick:
        args.sizes, args.queries, args.server_queries = [5000], 100, 100
        args.pre_optimize_max = args.faiss_hnsw_max_size = args.server_max_size = 5000
        args.ef_sweep, args.fresh, args.oversampling_sweep = [32, 128], 1000, [1.0, 2.0]

    cfg = {"seed": args.seed, "batch": args.batch, "server_queries": args.server_queries,
           "flat_queries": args.flat_queries,
           "pre_optimize_max": args.pre_optimize_max, "ef_sweep": args.ef_sweep,
           "hnsw_ef": args.hnsw_ef, "hnsw_ef_growth": args.hnsw_ef_growth,
           "hnsw_m": args.hnsw_m, "ef_construct": args.ef_construct,
           "filter_links": args.filter_links, "acorn": args.acorn,
           "oversampling": args.oversampling, "loose_oversampling": args.loose_oversampling,
           "oversampling_sweep": args.oversampling_sweep,
           "originals_on_disk": args.originals_on_disk,
           "optimizer_memory_mb": args.optimizer_memory_mb, "fresh": args.fresh,
           "fresh_queries": args.fresh_queries,
           "faiss_m": args.faiss_m, "faiss_ef_construction": args.faiss_ef_construction,
           "faiss_ef_search": args.faiss_ef_search, "threads": len(os.sched_getaffinity(0)),
           "keep": args.keep}
    report: dict = {"machine": machine_info(), "queries": args.queries, "seed": args.seed,
                    "command": "python -m bench.vector_search " + " ".join(
                        argv if argv is not None else sys.argv[1:]),
                    "shape": asdict(Shape()), "selectivity": {}, "results": [], "notes": []}
    if args.out is None:  # a smoke test must not overwrite the real results
        quick_dir = Path(tempfile.gettempdir()) / "vitrine-bench-quick"
        args.out = quick_dir if args.quick else RESULTS_DIR
    out_json = args.out / "vector_search.json"
    out_md = out_json.with_suffix(".md")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge and out_json.exists():  # e.g. 1M run later than 100k
        previous = json.loads(out_json.read_text())
        rerun = {(n, SYSTEM_LABELS[name]) for n in args.sizes for name in args.systems}
        report["results"] = [r for r in previous["results"] if (r["n"], r["system"]) not in rerun]
        report["selectivity"] = {int(n): s for n, s in previous["selectivity"].items()}
        report["notes"] = previous.get("notes", [])
        report["command"] = previous["command"] + "; then " + report["command"]

    report["notes"] += [n for n in args.note if n not in report["notes"]]
    if args.render:
        report = json.loads(out_json.read_text())
        report["notes"] += [n for n in args.note if n not in report["notes"]]
        report["selectivity"] = {int(n): s for n, s in report["selectivity"].items()}
        report["target"] = check_target(report["results"])
        report["target_1m"] = check_big(report["results"])
        out_json.write_text(json.dumps(report, indent=2))
        write_markdown(out_md, report)
        return

    def save() -> None:
        report["results"].sort(key=lambda r: r["n"])  # stable: systems keep their order
        report["target"] = check_target(report["results"])
        report["target_1m"] = check_big(report["results"])
        out_json.write_text(json.dumps(report, indent=2))
        write_markdown(out_md, report)

    root = Path(args.workdir or tempfile.mkdtemp(prefix="vitrine-bench-"))
    for n in args.sizes:
        wd = Workdir(root / str(n), n, args.queries, chunk=min(50_000, n))
        wd.root.mkdir(parents=True, exist_ok=True)
        log.info("size %s: generating data in %s", f"{n:,}", wd.root)
        gen = generate(wd, args.seed)
        filters = query_filters(gen, wd.queries()[1], args.seed)
        t0 = time.perf_counter()
        report["selectivity"][n] = ground_truth(wd, filters)
        log.info("size %s: ground truth in %.1f s", f"{n:,}", time.perf_counter() - t0)
        for name in args.systems:
            if name == "local" and n > args.server_max_size:
                local = [r for r in report["results"]
                         if r["system"] == "qdrant-client local" and "queries" in r]
                why = (f"qdrant-client local mode not run above {args.server_max_size:,} points: "
                       "it keeps every point as Python objects and scans in numpy/Python")
                if local:
                    r0 = local[-1]
                    scale = n / r0["n"]
                    why += (f"; at {r0['n']:,} it took {r0['load_s']:.0f} s to load, "
                            f"{r0['rss_growth_mb']:.0f} MB RSS, p50 "
                            + ", ".join(f"{m} {q['p50_ms']:.0f} ms"
                                        for m, q in r0["queries"].items())
                            + f", so about {r0['load_s'] * scale / 60:.0f} min to load, "
                            f"{r0['rss_growth_mb'] * scale / 1024:.1f} GB and "
                            f"{max(q['p50_ms'] for q in r0['queries'].values()) * scale:.0f} ms "
                            "per filtered query expected here (linear scan)")
                report["results"].append({"system": "qdrant-client local", "n": n,
                                          "skipped": why})
                continue
            if name == "faiss-hnsw" and n > args.faiss_hnsw_max_size:
                why = f"reference only, run up to {args.faiss_hnsw_max_size:,} points"
                report["results"].append({"system": "faiss hnsw", "n": n, "skipped": why})
                continue
            log.info("size %s: running %s", f"{n:,}", name)
            res = run_isolated(name, wd, cfg, args.timeout)
            report["results"].append(res)
            save()
        if not args.keep:
            shutil.rmtree(wd.root, ignore_errors=True)
    save()
    print()
    print(text_table(HEADER, result_rows(report["results"])))
    t = report["target"]
    print(f"\nTarget ({t['target']}): {t['status']} unfiltered, "
          f"{t.get('status_with_filters', '-')} with filters\n  {t['detail']}")
    print(f"\nWritten: {out_json} and {out_md}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
