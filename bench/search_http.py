"""End-to-end text search latency over real HTTP: `GET /v1/search` on a served catalogue.

    .venv/bin/python -m bench.search_http            # 5,000 products, 300 requests per filter mode
    .venv/bin/python -m bench.search_http --quick    # smoke run, under a minute

A few thousand products with synthetic, CLIP-like image vectors and realistic payloads
are written straight into an EdgeStore in a temporary data folder (and indexed), which
is then closed. `vitrine serve` starts on 127.0.0.1 over that folder with the
ViT-B/32-sized random model (bench/ingest/workload.py builds it once into
data/models/vit-b32-random): every query goes through its 12-layer, 512-wide text
tower. The products carry their words, so hybrid search (the default mode) has a
keyword side to score (bench/search_catalogue.py). A sequential httpx client sends
distinct query texts, so that the query-vector cache answers none of them, without
filters and with them, after a warm-up; latency is measured at the client, request to
parsed JSON. Then (bench/search_load.py): hybrid against semantic on cold texts, one
repeated query (the cache), and throughput at 1, 4 and 16 concurrent clients driven by
Locust in a child process, cold texts and popular ones (`--clients`, `--load-seconds`).

The text-encode share is measured apart: the same queries encoded in this process by
the same model at the same thread count while the server is idle, set against the
HTTP latency. The store search alone is timed the same way before the server starts.
Loopback only; every loop is bounded by a count and the whole run by --deadline.

All of it runs once per text tower of `--text-towers` (VITRINE_TEXT_TOWER,
embedding.fast_text): float32 and the default, to set against the targets (text encode
p50 <= 8 ms, HTTP p50 <= 12 ms and p99 <= 20 ms, cold texts, no filter). A server per
tower, each fresh (nothing cached) on its own copy of the store, all up at once: the
filtered requests and the in-process encodes take turns between the towers, 50 requests
each, so the machine's load falls on them alike (`take_turns` says why not one each);
the mode comparison and the repeated query run one server after the other, the throughput
levels taking turns between the servers level by level. With `--baseline DIR` (a git
worktree of an earlier commit), each tower is also served by that code, beside this
checkout's and taking turns with it: a change measured before and after in one run, on a
VM whose speed drifts between runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import search_load
from bench.common import latency_summary, run_record, write_results
from bench.ingest.workload import ensure_vit_b32
from bench.search_catalogue import (
    CATEGORIES,
    COLOURS,
    MEDIAN_PRICE,
    QUERIES,
    distinct_texts,
    fill_store,
    schema_indexes,
)
from bench.search_http_report import MODES, TARGETS, report

log = logging.getLogger("bench.search_http")
LOAD_TEXTS = 4000  # cold texts per throughput level, more than one can send
BLOCK, SWITCH_PAUSE_S = 50, 0.5  # text towers take turns by blocks of requests (take_turns)


# -- requests --------------------------------------------------------------------------------------
def request_params(texts: list[str], n: int, seed: int = 1) -> dict[str, list[dict]]:
    """Per filter, n query-string dicts: a text, plus a colour, or a category and price band;
    each its own text of `texts` (3 n of them)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for i in range(n):
        q = texts[3 * i]
        out["none"].append({"q": q, "limit": 20})
        out["colour"].append({"q": texts[3 * i + 1], "limit": 20,
                              "colour": COLOURS[rng.integers(len(COLOURS))]})
        cat = int(rng.integers(len(CATEGORIES)))
        lo, hi = MEDIAN_PRICE[cat] * rng.uniform(0.4, 0.9), MEDIAN_PRICE[cat] * rng.uniform(1.1, 2)
        out["category+price"].append({"q": texts[3 * i + 2], "limit": 20,
                                      "category": CATEGORIES[cat],
                                      "price_min": round(lo, 2), "price_max": round(hi, 2)})
    return out


# -- in-process parts ------------------------------------------------------------------------------
def take_turns(items: list, towers: list[str], measure) -> dict[str, list[float]]:
    """`measure(tower, item)` for every item and tower, the towers taking turns by blocks of
    BLOCK items, with a pause at each switch: torch's OpenMP threads spin on after a pass
    and slowed the next ONNX Runtime pass from 3.4 to 10.6 ms (still 5.5 ms 50 ms later),
    so turns of one request each would charge float32's spinning to the other tower."""
    times: dict[str, list[float]] = {tower: [] for tower in towers}
    for b, start in enumerate(range(0, len(items), BLOCK)):
        for k in range(len(towers)):
            tower = towers[(b + k) % len(towers)]  # each first in turn
            time.sleep(SWITCH_PAUSE_S)
            times[tower] += [measure(tower, item) for item in items[start:start + BLOCK]]
    return times


def time_text_encode(model: Path, queries: list[str], towers: list[str]) -> dict[str, list]:
    """Per text tower, seconds to encode each query alone, the towers taking turns."""
    encoders = {tower: search_load.text_encoder(model, tower) for tower in towers}
    for encoder in encoders.values():
        for q in queries[:5]:
            encoder.encode_texts([q])

    def encode(tower: str, q: str) -> float:
        t0 = time.perf_counter()
        encoders[tower].encode_texts([q])
        return time.perf_counter() - t0
    return take_turns(queries, towers, encode)


def time_store_search(data_dir: Path, dim: int, params: dict[str, list[dict]]) -> dict:
    """Store search alone, per filter, as the server runs a hybrid query (a query vector
    like the stored ones, and the text's words); and without a filter, a semantic one."""
    from catalogue.attributes import DEFAULT_SCHEMA
    from catalogue.keywords import Keywords
    from catalogue.search import store_filter
    from catalogue.settings import CatalogueSettings
    from catalogue.store.base import Query
    from catalogue.store.edge import EdgeStore

    settings = CatalogueSettings(data_dir=data_dir)
    store = EdgeStore(settings.shard_dir, dim, settings.optimize_threshold,
                      indexes=schema_indexes())
    keywords = Keywords.configured(DEFAULT_SCHEMA, settings)
    rng = np.random.default_rng(2)
    runs = {mode: (plist, True) for mode, plist in params.items()}
    runs["none, semantic"] = (params["none"], False)
    out = {}
    try:
        for name, (plist, hybrid) in runs.items():
            times = []
            for p in plist:
                v = rng.standard_normal(dim).astype(np.float32)
                v /= np.linalg.norm(v)
                f = store_filter(DEFAULT_SCHEMA.filter(
                    {k: [str(x)] for k, x in p.items() if k not in ("q", "limit")}))
                t0 = time.perf_counter()
                words = keywords.query(p["q"]) if hybrid else None
                store.search(Query(v, words, settings.fusion, settings.keyword_weight,
                                   settings.hybrid_candidates), f, limit=21)
                times.append(time.perf_counter() - t0)
            out[name] = latency_summary(times)
    finally:
        store.close()
    return out


def interleaved_filters(clients: dict, params: dict, deadline: float) -> dict:
    """Per server and filter, every request of `params`, the servers taking turns."""
    towers = list(clients)
    out: dict[str, dict] = {tower: {} for tower in towers}
    hits: dict[str, int] = {}

    def get(tower: str, p: dict) -> float:
        if time.time() > deadline:
            raise TimeoutError("--deadline reached in the filtered requests")
        seconds, n = search_load.timed_get(clients[tower], p)
        hits[tower] += n
        return seconds

    for mode in MODES:
        hits.update(dict.fromkeys(towers, 0))
        times = take_turns(params[mode], towers, get)
        for tower in towers:
            out[tower][mode] = {**latency_summary(times[tower]),
                                "mean_hits": hits[tower] / len(times[tower])}
            log.info("%s, %s: p50 %.1f ms, p99 %.1f ms", tower, mode,
                     out[tower][mode]["p50_ms"], out[tower][mode]["p99_ms"])
    return out


def measure_http(servers: dict[str, search_load.Server], args, params: dict, texts: dict,
                 deadline: float, workdir: Path) -> dict[str, dict]:
    """Everything measured against the running servers, one per text tower: the filters
    side by side; modes and the repeated query one server after the other; throughput
    taking turns level by level."""
    import httpx

    clients = {tower: httpx.Client(base_url=server.url, timeout=60)
               for tower, server in servers.items()}
    out: dict[str, dict] = {}
    try:
        for tower, client in clients.items():
            ready = servers[tower].wait_ready(client, timeout=max(30.0, deadline - time.time()))
            log.info("%s server ready: %s", tower, ready)
            for q in texts["warmup"]:
                client.get("/v1/search", params={"q": q, "limit": 20}).raise_for_status()
        http = interleaved_filters(clients, params, deadline)
        for tower, client in clients.items():
            run: dict = {"http": http[tower]}
            run["modes"] = search_load.compare_modes(
                client, {"hybrid": texts["hybrid"], "semantic": texts["semantic"]}, deadline)
            run["repeated"] = search_load.repeated(client, QUERIES[0], ("hybrid", "semantic"),
                                                   args.repeats, deadline)
            for q in QUERIES:  # the popular texts, cached before their throughput runs
                client.get("/v1/search", params={"q": q, "limit": 20}).raise_for_status()
            log.info("%s: modes %s", tower,
                     {k: round(v["p50_ms"], 1) for k, v in run["modes"].items()})
            out[tower] = run
        if args.clients:
            load = search_load.throughput(
                {tower: server.url for tower, server in servers.items()}, workdir,
                args.clients, args.load_seconds,
                {"cold": texts["load"], "popular": list(QUERIES)}, deadline)
            for tower, run in out.items():
                run["throughput"] = load[tower]
    finally:
        for client in clients.values():
            client.close()
    return out


def measure_towers(servers: dict[str, tuple[str, Path | None]], args, model: Path,
                   data_dir: Path, server_threads: int, params: dict, texts: dict,
                   deadline: float, workdir: Path) -> dict:
    """A fresh server per label (a text tower, served by this checkout's code or by the
    baseline's), each on its own copy of the store (the embedded engine holds its
    folder), all up at once; then each tower alone in this process."""
    running = {}
    try:
        for i, (label, (tower, code)) in enumerate(servers.items()):
            folder = workdir / f"data-{i}"
            shutil.copytree(data_dir, folder)
            running[label] = search_load.Server(model, folder, server_threads,
                                                workdir / f"server-{i}.log", tower, code)
        runs = measure_http(running, args, params, texts, deadline, workdir)
    finally:
        for server in running.values():
            server.stop()
    towers = list(dict.fromkeys(tower for tower, _ in servers.values()))
    encode = time_text_encode(model, [p["q"] for p in params["none"]], towers)
    alone: dict[str, dict] = {}
    for tower in towers:
        alone[tower] = {
            "text_encode": latency_summary(encode[tower]),
            "encode_batches": search_load.encode_batches(
                model, texts["load"][-200:], text_tower=tower) if args.clients else {},
            "texts_per_pass": search_load.texts_per_pass(
                model, texts["load"][:-200], args.clients, min(5.0, args.load_seconds),
                text_tower=tower)}
    for label, (tower, _) in servers.items():
        runs[label].update(alone[tower])
    return runs


def labelled(towers: list[str], baseline: Path | None) -> dict[str, tuple[str, Path | None]]:
    """A server per text tower, and with a baseline checkout, one more per tower serving
    that code (`<tower> @ <its commit>`)."""
    servers: dict[str, tuple[str, Path | None]] = {t: (t, None) for t in towers}
    if baseline is not None:
        rev = subprocess.run(["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        servers |= {f"{t} @ {rev}": (t, baseline.resolve()) for t in towers}
    return servers


def main(argv: list[str] | None = None) -> int:
    from embedding.runtime import configure_threads

    configure_threads()  # as a served process does (vitrine.wiring)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300,
                        help="per filter, and per mode in the hybrid/semantic comparison")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=300, help="requests of the repeated query")
    parser.add_argument("--clients", default="1,4,16",
                        help="concurrent clients per throughput level; empty: none")
    parser.add_argument("--load-seconds", type=float, default=20, help="per throughput level")
    parser.add_argument("--server-threads", type=int, default=None,
                        help="the server's torch threads (default: the usable cores)")
    parser.add_argument("--no-index", action="store_true", help="leave the store unindexed")
    parser.add_argument("--text-towers", default="float32,onnx-int8",
                        help="VITRINE_TEXT_TOWER of each server, measured back to back")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds for the whole run (default: 1200 per text tower)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of earlier code (git worktree add DIR REV) served "
                             "beside this one's, per tower, taking turns: before and after "
                             "in one run")
    parser.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    parser.add_argument("--out", default=None, help="results file stem under bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        args.products, args.requests, args.warmup, args.no_index = 500, 20, 3, True
        args.repeats, args.clients, args.load_seconds = 30, "1,4", 4
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    towers = [t.strip() for t in args.text_towers.split(",") if t.strip()]
    out = args.out or ("search_http_quick" if args.quick else "search_http")
    servers = labelled(towers, args.baseline)
    deadline = time.time() + (args.deadline or 1200 * len(servers))
    threads = len(os.sched_getaffinity(0))

    import torch

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    model = ensure_vit_b32()
    dim = json.loads((model / "config.json").read_text())["projection_dim"]
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-search-"))
    data_dir = workdir / "data"
    n, w = args.requests, args.warmup
    pool = iter(distinct_texts(w + 5 * n + LOAD_TEXTS * len(args.clients)))
    texts = {name: [next(pool) for _ in range(size)] for name, size in (
        ("warmup", w), ("filters", 3 * n), ("hybrid", n), ("semantic", n),
        ("load", LOAD_TEXTS * len(args.clients)))}
    params = request_params(texts["filters"], n)
    try:
        store = fill_store(data_dir, args.products, dim, not args.no_index, str(model))
        log.info("store: %s", store)
        store_search = time_store_search(data_dir, dim, params)
        server_threads = args.server_threads or threads
        runs = measure_towers(servers, args, model, data_dir, server_threads, params,
                              texts, deadline, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    notes = [
        "Vitrine caches query vectors (VITRINE_QUERY_CACHE_SIZE): every text above is sent "
        "once, except in the repeated-query and `popular` rows, which show the cache.",
        "Vectors are synthetic (the model's weights are random, so real image vectors "
        "would mean nothing either); the store's work per query depends on the count, "
        "the filters and the index, not on where the vectors came from.",
        "The load generator shares the machine's cores with the server, so throughput at "
        "16 clients is a floor of what the server alone would answer.",
    ]
    cores, load = threads, load_before[0]
    if load > cores:
        notes.append(f"The machine was shared (load average {load:.1f} on {cores} cores): "
                     "other processes took CPU time from both the server and the client, "
                     "which inflates the tail (p99) most.")
    res = {**run_record("bench.search_http", argv, load_before), "threads": threads,
           "store": store, "warmup": args.warmup, "requests_per_mode": args.requests,
           "store_search": store_search, "text_towers": runs, "targets": TARGETS,
           "repeated_text": QUERIES[0], "load_seconds": args.load_seconds,
           "popular_texts": len(QUERIES), "server_threads": server_threads, "notes": notes,
           "baseline": {label: str(code) for label, (_, code) in servers.items() if code}}
    md, text = report(res)
    write_results(out, res, md)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
