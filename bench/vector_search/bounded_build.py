"""The index build held to a memory limit: what the optimizer child needs, and what a limit costs.

The main bench's optimizer child peaks at many GB of RSS at 1M points, but most of it is
pages of the shard's mapped files, which the kernel can drop and read again. This builds
the index of the same unindexed shard as the store does (catalogue.store.edge_build,
through `index_copy`), once free and once per limit in a memory cgroup held to it, and
reports each build's time, the child's peak RSS (the kernel's), what the kernel charged
the cgroup, and the built shard's recall and latency.

    .venv/bin/python -m bench.vector_search --sizes 1000000 --systems edge-int8 --fresh 0 \
        --keep --workdir W
    .venv/bin/python -m bench.vector_search.bounded_build --workdir W/1000000 --limits 0 3072

Linux only, as root, with cgroup v1's memory controller (bench.vector_search.serve).
Results: bench/results/vector_search_bounded_build.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import resource
import shutil
import time
from pathlib import Path

import psutil

from bench.common import Sampler, dir_size, markdown_table, run_record, write_results
from bench.vector_search.data import DIM, MODES, Workdir
from bench.vector_search.layout import run_lines
from bench.vector_search.serve import (
    drop_page_cache,
    memory_cgroup,
    open_as_app,
    query_set,
    searcher,
)


def unindexed_store(wd: Workdir, folder: Path) -> None:
    """The kept run's points imported into a new store at `folder`, flushed, not indexed."""
    from bench.vector_search.edge_run import BENCH_INDEXES
    from bench.vector_search.systems import _load_store
    from catalogue.store.edge import EdgeStore

    shutil.rmtree(folder, ignore_errors=True)
    store = EdgeStore(folder, DIM, indexes=BENCH_INDEXES)
    _load_store(store, wd, wd.columns(), 1000, f"import {wd.n:,}")
    store._shard.flush()
    store.close()


class ChildMemory(Sampler):
    """The peaks of this process's children's resident memory by kind (/proc/PID/status:
    VmRSS, RssAnon, RssFile, RssShmem, and the kernel's high-water mark VmHWM), in MB."""

    FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")

    def __init__(self, interval: float = 0.5):
        super().__init__(interval)
        self.peaks = dict.fromkeys(self.FIELDS, 0.0)

    def sample(self) -> None:
        for child in psutil.Process().children(recursive=True):
            try:
                lines = Path(f"/proc/{child.pid}/status").read_text().splitlines()
            except OSError:  # exited between listing and reading
                continue
            for line in lines:
                key, _, value = line.partition(":")
                if key in self.peaks:
                    self.peaks[key] = max(self.peaks[key], int(value.split()[0]) / 1024)


def build(folder: str, n: int, group: str | None, out: str) -> None:
    """The child: join `group`, index the store's shard as its optimize does, in place."""
    if group:
        (Path(group) / "cgroup.procs").write_text(str(os.getpid()))
    from catalogue.store.edge_build import index_copy
    from catalogue.store.index_config import IndexConfig

    started = time.perf_counter()
    with ChildMemory() as memory:
        index_copy(Path(folder) / "shard-0", DIM, IndexConfig(), n)
    Path(out).write_text(json.dumps({
        "build_s": time.perf_counter() - started, "child_sampled_mb": memory.peaks,
        "child_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "caller_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def searched(folder: Path, wd: Workdir, seed: int) -> dict:
    """The built shard opened as the app opens it, the run's queries through it."""
    from bench.vector_search.measure import measure

    q, truth, filters = query_set(wd, seed)
    store = open_as_app(folder)
    try:
        return measure(searcher(store), q, filters, truth, desc="built")
    finally:
        store.close()


def run(args, wd: Workdir, source: Path, limit_mb: int) -> dict:
    target = Path(args.workdir) / f"bounded-{limit_mb}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    drop_page_cache()
    group = memory_cgroup(f"vitrine-build-{os.getpid()}", limit_mb) if limit_mb else None
    out = Path(args.workdir) / "bounded-result.json"
    out.unlink(missing_ok=True)
    proc = mp.get_context("spawn").Process(target=build, args=(
        str(target), wd.n, str(group) if group else None, str(out)))
    proc.start()
    proc.join(args.timeout)
    res: dict = {"limit_mb": limit_mb}
    if proc.is_alive():  # the optimizer child dies with it (PR_SET_PDEATHSIG)
        proc.kill()
        proc.join()
        res["failed"] = f"did not finish within {args.timeout:.0f} s"
    elif proc.exitcode != 0:
        res["failed"] = f"exit {proc.exitcode}"
    if group:
        res["cgroup_peak_mb"] = int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
        group.rmdir()
    if "failed" not in res:
        res |= json.loads(out.read_text())
        res["disk_mb"] = dir_size(target) / 2**20
        res["queries"] = searched(target, wd, args.seed)
    shutil.rmtree(target, ignore_errors=True)
    return res


def report(result: dict) -> str:
    rows = []
    for r in result["runs"]:
        limit = f"{r['limit_mb']:,} MB" if r["limit_mb"] else "none"
        peak = f"{r['cgroup_peak_mb']:,.0f}" if "cgroup_peak_mb" in r else "-"
        if "failed" in r:
            rows.append([limit, r["failed"], "-", peak, "-", *["-"] * len(MODES)])
            continue
        s = r.get("child_sampled_mb")  # runs before the sampler have none
        kinds = (", ".join(f"{s[k]:,.0f}" for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"))
                 + f" ({s['VmHWM']:,.0f})") if s else "-"
        rows.append([limit, f"{r['build_s']:.0f}", f"{r['child_peak_rss_mb']:,.0f}", peak, kinds,
                     *[f"{r['queries'][m]['p50_ms']:.2f} / {r['queries'][m]['p99_ms']:.2f}, "
                       f"{r['queries'][m]['recall_at_10']:.3f}" for m in MODES]])
    header = ["memory limit", "build s", "optimizer child peak RSS MB", "cgroup peak MB",
              "sampled peaks MB: RSS, RssAnon, RssFile, RssShmem (VmHWM)",
              *[f"{m}: p50 / p99 ms, recall@10" for m in MODES]]
    return "\n\n".join([
        "# The index build held to a memory limit", *run_lines(result),
        f"{result['n']:,} points of {DIM} dimensions, imported as the store does and flushed "
        f"({result['flushed_mb']:,.0f} MB), indexed by the store's build child with its "
        "defaults (int8, originals on disk), on 2 cores; each build from the same copy, the "
        "page cache dropped before it. Peak RSS is the kernel's (getrusage, the largest "
        "child); the cgroup peak is what the kernel charged the build (its private memory "
        "and the page cache it read and wrote). Then the built shard, opened as the app "
        f"opens it, answers the run's {result['queries']:,} queries a mode.",
        markdown_table(header, rows), ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.vector_search.bounded_build",
                                description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a size's folder of a --keep run")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7, help="the --keep run's seed")
    p.add_argument("--limits", type=int, nargs="+", default=[3072, 0],
                   help="memory limits in MB, one build each (0: none)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds a build may take")
    p.add_argument("--out", default="vector_search_bounded_build")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_before = os.getloadavg()
    wd = Workdir(Path(args.workdir), args.size, args.queries, 10_000)
    source = Path(args.workdir) / "unindexed"
    unindexed_store(wd, source)
    runs = [run(args, wd, source, limit) for limit in args.limits]
    result = {**run_record("bench.vector_search.bounded_build", argv, load_before),
              "n": args.size, "queries": args.queries, "flushed_mb": dir_size(source) / 2**20,
              "runs": runs}
    shutil.rmtree(source, ignore_errors=True)
    write_results(args.out, result, report(result))
    print(report(result))


if __name__ == "__main__":
    main()
