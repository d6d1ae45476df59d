"""A built shard searched by a process that only serves it, free and held to a memory limit.

The main bench's searching process also imported the points, and its peak RSS counts
every page of the shard's mapped files that the import and the searches touched. This
opens the shard a `--keep` run left, in a fresh process, as the app opens it at start
(its files read once: catalogue.store.edge_warm), runs the same queries, and reports
that process's peak RSS (the kernel's), its private memory (RssAnon) and what the kernel
charged it. With a limit the process runs in a memory cgroup held to it, so the kernel
must drop pages of the shard's files to stay under it: the latency and recall that costs.

    .venv/bin/python -m bench.vector_search --sizes 1000000 --systems edge-int8 --fresh 0 \
        --keep --workdir W
    .venv/bin/python -m bench.vector_search.serve --workdir W/1000000 --limits 0 3072

Linux only, as root, with cgroup v1's memory controller (this machine's); before each
run the page cache is written back and dropped, so that the run's reads are charged to
its own cgroup. Results: bench/results/vector_search_serve.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import PeakRss, dir_size, markdown_table, run_record, write_results
from bench.vector_search.data import DIM, MODES, Generator, K, Workdir, query_filters
from bench.vector_search.layout import run_lines

CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def memory_cgroup(name: str, limit_mb: int) -> Path:
    """A child of this process's cgroup v1 memory cgroup, held to `limit_mb`."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            group = CGROUP_V1 / path.lstrip("/") / name
            group.mkdir(exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(str(limit_mb * 2**20))
            return group
    raise SystemExit("no cgroup v1 memory controller here: run without --limits, or on Linux "
                     "with cgroup v1 as root")


def drop_page_cache() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("1")


def query_set(wd: Workdir, seed: int) -> tuple[np.ndarray, dict, dict]:
    """The kept run's queries, their exact top k and filters, without its payload columns
    (their memory would count in the process measured)."""
    q, qcols = wd.queries()
    return q, wd.truth(), query_filters(Generator(seed), qcols, seed)


def open_as_app(folder: Path):
    """The store at `folder` opened as the app opens it at start (vitrine.wiring: its
    settings from VITRINE_*), with the bench's indexes."""
    from bench.vector_search.edge_run import BENCH_INDEXES
    from catalogue.settings import CatalogueSettings
    from catalogue.store.edge import EdgeStore

    settings = CatalogueSettings()
    return EdgeStore(folder, DIM, hnsw_ef=settings.hnsw_ef, indexes=BENCH_INDEXES,
                     index=settings.index_config)


def searcher(store):
    """The query loop's `search` over `store` (bench.vector_search.measure)."""
    from bench.vector_search.systems import _hit_ids

    return lambda v, f: _hit_ids(store.search(v, f.to_store() if f else None, limit=K))


def serve(shard: str, root: str, n: int, seed: int, queries: int, group: str | None,
          out: str) -> None:
    """The child: join `group`, open the store as the app does, run every mode's queries."""
    if group:
        (Path(group) / "cgroup.procs").write_text(str(os.getpid()))
    from bench.common import private_bytes, rss_bytes
    from bench.vector_search.measure import measure

    q, truth, filters = query_set(Workdir(Path(root), n, queries, 10_000), seed)
    base = rss_bytes()
    with PeakRss(interval=0.5) as peak:
        started = time.perf_counter()
        store = open_as_app(Path(shard))
        opened = time.perf_counter() - started
        after_open = rss_bytes()
        search = searcher(store)
        first = measure(search, q, filters, truth, desc="first pass")
        again = measure(search, q, filters, truth, desc="again")
        after = rss_bytes(), private_bytes(os.getpid())
        store.close()
    Path(out).write_text(json.dumps({
        "open_s": opened, "rss_before_open_mb": base / 2**20,
        "rss_after_open_mb": after_open / 2**20, "rss_after_queries_mb": after[0] / 2**20,
        "private_after_queries_mb": after[1] / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_private_mb": peak.peak_self_private / 2**20, "queries": first,
        "queries_again": again}))


def run(args, limit_mb: int) -> dict:
    """One serving process, in a cgroup held to `limit_mb` (0: none)."""
    drop_page_cache()
    group = memory_cgroup(f"vitrine-serve-{os.getpid()}", limit_mb) if limit_mb else None
    out = Path(args.workdir) / "serve-result.json"
    out.unlink(missing_ok=True)
    proc = mp.get_context("spawn").Process(target=serve, args=(
        str(Path(args.workdir) / args.shard), args.workdir, args.size, args.seed, args.queries,
        str(group) if group else None, str(out)))
    proc.start()
    proc.join()
    res: dict = {"limit_mb": limit_mb, "exit_code": proc.exitcode}
    if group:
        res["cgroup_peak_mb"] = int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
        res["cgroup_failcnt"] = int((group / "memory.failcnt").read_text())
        group.rmdir()
    if proc.exitcode == 0:
        res |= json.loads(out.read_text())
    return res


def report(result: dict) -> str:
    def cell(r: dict, key: str, mode: str) -> str:
        m = r[key][mode]
        return f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f}, {m['recall_at_10']:.3f}"

    rows = []
    for r in result["runs"]:
        limit = f"{r['limit_mb']:,} MB" if r["limit_mb"] else "none"
        if r["exit_code"] != 0:
            rows.append([limit, f"killed (exit {r['exit_code']})", *["-"] * (3 + len(MODES))])
            continue
        rows.append([limit, f"{r['open_s']:.1f}", f"{r['peak_rss_mb']:,.0f}",
                     f"{r['peak_private_mb']:,.0f}",
                     f"{r['cgroup_peak_mb']:,.0f}" if "cgroup_peak_mb" in r else "-",
                     *[cell(r, "queries", m) for m in MODES],
                     *[cell(r, "queries_again", m) for m in MODES]])
    by_colour = [(r["limit_mb"], r["queries_again"]["colour"].get("recall_by_colour"))
                 for r in result["runs"] if r["exit_code"] == 0]
    by_colour_lines = [f"{limit or 'no'} limit: " + ", ".join(f"{c} {v:.3f}" for c, v in by.items())
                       for limit, by in by_colour if by]
    header = ["memory limit", "open s (files read)", "peak RSS MB", "peak private MB",
              "cgroup peak MB", *[f"{m}: p50 / p99 ms, recall@10" for m in MODES],
              *[f"{m} again" for m in MODES]]
    return "\n\n".join([
        "# A built shard, searched by a process that only serves it", *run_lines(result),
        f"{result['n']:,} points of {DIM} dimensions, the shard a `--keep` run of "
        f"bench.vector_search left ({result['disk_mb']:,.0f} MB on disk), opened as the "
        "app opens it, the run's queries at the store's default beam, single-threaded, "
        f"{result['queries']:,} a mode, twice. Peak RSS is the kernel's (getrusage); private "
        "memory is RssAnon, sampled every half second; the cgroup peak is what the kernel "
        "charged the process (private memory and the page cache it read).",
        markdown_table(header, rows),
        *(["Recall@10 of the colour filter by colour, again (loose filters: "
           f"VITRINE_LOOSE_FILTER_OVERSAMPLING={result.get('loose_filter_oversampling')}): "
           + "; ".join(by_colour_lines)] if by_colour_lines else []), ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.serve",
                                description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a size's folder of a --keep run")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--shard", default="edge-int8", help="the store's folder in the workdir")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7, help="the --keep run's seed")
    p.add_argument("--limits", type=int, nargs="+", default=[0, 3072],
                   help="memory limits in MB, one serving process each (0: none)")
    p.add_argument("--out", default="vector_search_serve")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from catalogue.settings import CatalogueSettings  # the serving processes read it too

    load_before = os.getloadavg()
    runs = [run(args, limit) for limit in args.limits]
    result = {**run_record("bench.vector_search.serve", argv, load_before), "n": args.size,
              "queries": args.queries, "runs": runs,
              "disk_mb": dir_size(Path(args.workdir) / args.shard) / 2**20,
              "loose_filter_oversampling": CatalogueSettings().loose_filter_oversampling}
    write_results(args.out, result, report(result))
    print(report(result))


if __name__ == "__main__":
    main()
