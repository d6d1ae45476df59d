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
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench import search_load
from bench.common import latency_summary, markdown_table, run_record, text_table, write_results
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

log = logging.getLogger("bench.search_http")
MODES = ("none", "colour", "category+price")  # the filters
LOAD_TEXTS = 4000  # cold texts per throughput level, more than one can send


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
def time_text_encode(model: Path, queries: list[str], repeats: int) -> list[float]:
    from embedding.encoder import Encoder

    encoder = Encoder(model=str(model))
    for q in queries[:5]:
        encoder.encode_texts([q])
    times = []
    for _ in range(repeats):
        for q in tqdm(queries, desc="text encode", leave=False):
            t0 = time.perf_counter()
            encoder.encode_texts([q])
            times.append(time.perf_counter() - t0)
    return times


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
    keywords = Keywords(DEFAULT_SCHEMA, settings.text_language)
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


# -- report ----------------------------------------------------------------------------------------
def report(res: dict) -> tuple[str, str]:
    m = res["machine"]
    encode_p50 = res["text_encode"]["p50_ms"]
    header = ["filter", "requests", "p50 ms", "p99 ms", "mean ms", "max ms",
              "store search p50 ms", "text encode share of p50"]
    rows = []
    for mode in MODES:
        lat = res["http"][mode]
        rows.append([mode, lat["n"], f"{lat['p50_ms']:.1f}", f"{lat['p99_ms']:.1f}",
                     f"{lat['mean_ms']:.1f}", f"{lat['max_ms']:.1f}",
                     f"{res['store_search'][mode]['p50_ms']:.2f}",
                     f"{encode_p50 / lat['p50_ms']:.0%}"])
    enc = res["text_encode"]
    md = "\n\n".join([
        "# Search over HTTP benchmark",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores ({m['logical_cores']} "
        f"logical), {m['memory_gib']} GiB RAM; Python {m['python']}; {m['date']}. Load "
        f"average (1/5/15 min) before: {res['load_before']}, after: {res['load_after']}.",
        f"Command: `{res['command']}`",
        f"Server: `vitrine serve` on 127.0.0.1 (uvicorn, local profile, embedded store), "
        f"torch threads {res['server_threads']} in the server, {res['threads']} (= usable "
        "cores) in this process. "
        f"Model: ViT-B/32-sized CLIP, random weights; text tower 12 layers x 512, up to 77 "
        f"tokens. Store: {res['store']['points']:,} products, synthetic 512-d CLIP-like "
        f"vectors and the products' words, "
        f"{'HNSW-indexed' if not res['store']['unindexed'] else 'not indexed'} "
        f"(index built in {res['store']['index_build_s']:.1f} s).",
        f"Client: one httpx connection, sequential, {res['warmup']} warm-up requests, then "
        f"{res['requests_per_mode']} per filter, in the default mode (hybrid); every query "
        "text distinct (\"vintage red jacket with pockets\"), so each request encodes its "
        "text; limit 20. Latency from sending the request to the parsed JSON. Filters: "
        "`colour` = one colour; `category+price` = a category and a price band around its "
        "typical price.",
        markdown_table(header, rows),
        f"Text encode alone (same queries, in process, server idle): p50 "
        f"{enc['p50_ms']:.1f} ms, p99 {enc['p99_ms']:.1f} ms over {enc['n']} encodes. "
        "Share = text-encode p50 / HTTP p50; the rest is the store search, FastAPI and "
        "pydantic (validating and serialising 20 products) and loopback HTTP. Store "
        "search alone, no filter, semantic: p50 "
        f"{res['store_search']['none, semantic']['p50_ms']:.2f} ms.",
        *search_load.report(res),
        "## Notes\n\n" + "\n".join(f"- {n}" for n in res["notes"]),
    ]) + "\n"
    return md, text_table(header, rows)


def measure_http(server: search_load.Server, args, params: dict, texts: dict, deadline: float,
                 workdir: Path) -> dict:
    """Everything measured against the running server."""
    import httpx

    out: dict = {"http": {}}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        ready = server.wait_ready(client, timeout=max(30.0, deadline - time.time()))
        log.info("server ready: %s", ready)
        for q in texts["warmup"]:
            client.get("/v1/search", params={"q": q, "limit": 20}).raise_for_status()
        for mode in MODES:
            times, hits = search_load.time_requests(client, params[mode], f"http {mode}", deadline)
            if not times:
                raise TimeoutError(f"--deadline reached before the {mode} requests")
            out["http"][mode] = {**latency_summary(times), "mean_hits": hits / len(times)}
            log.info("%s: p50 %.1f ms, p99 %.1f ms", mode, out["http"][mode]["p50_ms"],
                     out["http"][mode]["p99_ms"])
        out["modes"] = search_load.compare_modes(
            client, {"hybrid": texts["hybrid"], "semantic": texts["semantic"]}, deadline)
        log.info("modes: %s", {k: round(v["p50_ms"], 1) for k, v in out["modes"].items()})
        out["repeated"] = search_load.repeated(client, QUERIES[0], ("hybrid", "semantic"),
                                               args.repeats, deadline)
        log.info("repeated: %s", {k: round(v["p50_ms"], 2) for k, v in out["repeated"].items()})
        for q in QUERIES:  # the popular texts, cached before their throughput runs
            client.get("/v1/search", params={"q": q, "limit": 20}).raise_for_status()
    if args.clients:
        out["throughput"] = search_load.throughput(
            server.url, workdir, args.clients, args.load_seconds,
            {"cold": texts["load"], "popular": list(QUERIES)}, deadline)
        log.info("throughput: %s", {k: {c: round(r["rps"], 1) for c, r in v.items()}
                                    for k, v in out["throughput"].items()})
    return out


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
    parser.add_argument("--deadline", type=float, default=1200, help="seconds for the whole run")
    parser.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    parser.add_argument("--out", default=None, help="results file stem under bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        args.products, args.requests, args.warmup, args.no_index = 500, 20, 3, True
        args.repeats, args.clients, args.load_seconds = 30, "1,4", 4
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    out = args.out or ("search_http_quick" if args.quick else "search_http")
    deadline = time.time() + args.deadline
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
        server = search_load.Server(model, data_dir, server_threads, workdir / "server.log")
        try:
            measured = measure_http(server, args, params, texts, deadline, workdir)
        finally:
            server.stop()
        encode = latency_summary(time_text_encode(model, [p["q"] for p in params["none"]],
                                                  repeats=1))
        batches = search_load.encode_batches(model, texts["load"][-200:]) if args.clients \
            else {}
        passes = search_load.texts_per_pass(model, texts["load"][:-200], args.clients,
                                            min(5.0, args.load_seconds))
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
           **measured, "store_search": store_search, "text_encode": encode,
           "repeated_text": QUERIES[0], "load_seconds": args.load_seconds,
           "popular_texts": len(QUERIES), "server_threads": server_threads,
           "encode_batches": batches, "texts_per_pass": passes, "notes": notes}
    md, text = report(res)
    write_results(out, res, md)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
