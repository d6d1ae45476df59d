"""End-to-end text search latency over real HTTP: `GET /v1/search` on a served catalogue.

    .venv/bin/python -m bench.search_http            # 5,000 products, 300 requests per filter mode
    .venv/bin/python -m bench.search_http --quick    # smoke run, under a minute

A few thousand products with synthetic, CLIP-like image vectors and realistic payloads
are written straight into an EdgeStore in a temporary data folder (and indexed), which
is then closed. `vitrine serve` starts on 127.0.0.1 over that folder with the
ViT-B/32-sized random model (bench/ingest/workload.py builds it once into
data/models/vit-b32-random): every query goes through its 12-layer, 512-wide text
tower. A sequential httpx client sends fashion phrases, without filters and with
them, after a warm-up; latency is measured at the client, request to parsed JSON.

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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.common import latency_summary, markdown_table, run_record, text_table, write_results
from bench.ingest.workload import FASHION_PHRASES, ensure_vit_b32

log = logging.getLogger("bench.search_http")

CATEGORIES = ("Dresses", "Tops", "Trousers", "Jeans", "Skirts", "Jackets", "Coats", "Knitwear",
              "Shirts", "Shoes", "Boots", "Bags", "Accessories", "Swimwear")
MEDIAN_PRICE = (59, 25, 45, 55, 39, 89, 140, 49, 39, 79, 120, 95, 19, 35)
COLOURS = ("black", "white", "blue", "grey", "red", "green", "beige", "brown", "pink", "navy",
           "yellow", "multi")
BRANDS = ("Acme", "Alder & Finch", "Urban Fable", "Northwind", "Maison Lume", "Kestrel",
          "Blue Harbour", "Zeta")
GENDERS = ("Women", "Men", "Unisex")
MODES = ("none", "colour", "category+price")
QUERIES = FASHION_PHRASES + [
    "little black dress for a party", "waterproof hiking boots", "linen trousers for summer",
    "men's navy suit jacket", "kids denim dungarees", "chunky knit turtleneck",
    "white shirt with button-down collar", "leopard print midi skirt", "red satin slip dress",
    "quilted crossbody bag", "light blue ripped jeans", "merino wool socks",
]


# -- the catalogue -------------------------------------------------------------------------------
def synthetic_products(n: int, dim: int, seed: int = 0):
    """Unit vectors in clusters inside a narrow cone (as CLIP image embeddings sit), and
    payloads whose category and colour follow the cluster, as real products' do."""
    rng = np.random.default_rng(seed)
    clusters = 120
    mean = rng.standard_normal(dim)
    centres = mean / np.linalg.norm(mean) * 1.2 + rng.standard_normal((clusters, dim)) / np.sqrt(
        dim)
    which = rng.integers(0, clusters, n)
    vectors = centres[which] + rng.standard_normal((n, dim)) * (0.6 / np.sqrt(dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    cluster_cat = rng.integers(0, len(CATEGORIES), clusters)
    cluster_colour = rng.integers(0, len(COLOURS), clusters)
    payloads = []
    for i in range(n):
        cat = cluster_cat[which[i]] if rng.random() < 0.85 else rng.integers(len(CATEGORIES))
        colour = (cluster_colour[which[i]] if rng.random() < 0.5
                  else rng.integers(len(COLOURS)))
        brand = BRANDS[rng.integers(len(BRANDS))]
        gender = GENDERS[rng.choice(3, p=[0.55, 0.35, 0.10])]
        price = round(float(MEDIAN_PRICE[cat] * np.exp(rng.normal(0, 0.5))), 2)
        title = f"{brand} {gender} {COLOURS[colour].title()} {CATEGORIES[cat].rstrip('s')}"
        payloads.append({
            "product_id": f"sku-{i:06d}", "title": title,
            "description": f"{title}, {QUERIES[i % len(QUERIES)]}.",
            "category": CATEGORIES[cat], "colour": COLOURS[colour], "gender": gender,
            "brand": brand, "price": price, "tags": [], "image_sha256": f"{i:064x}",
            "model": "vit-b32-random", "updated_at": 1.7e9, "moderation_status": "visible",
            "predicted": {}})
    return vectors, payloads


def fill_store(data_dir: Path, n: int, dim: int, optimize: bool) -> dict:
    from catalogue.settings import CatalogueSettings
    from catalogue.store.base import StoredPoint, point_id
    from catalogue.store.edge import EdgeStore

    settings = CatalogueSettings(data_dir=data_dir)
    store = EdgeStore(settings.shard_dir, dim, settings.optimize_threshold)
    vectors, payloads = synthetic_products(n, dim)
    t0 = time.perf_counter()
    for start in tqdm(range(0, n, 500), desc="store", leave=False):
        store.upsert([StoredPoint(point_id(p["product_id"]), p, v) for p, v in
                      zip(payloads[start:start + 500], vectors[start:start + 500], strict=True)])
    load_s = time.perf_counter() - t0
    build_s = 0.0
    if optimize:
        t0 = time.perf_counter()
        store.optimize()
        build_s = time.perf_counter() - t0
    info = {"points": store.count(), "unindexed": store.unindexed(), "load_s": load_s,
            "index_build_s": build_s}
    store.close()
    return info


# -- requests --------------------------------------------------------------------------------------
def request_params(n: int, seed: int = 1) -> dict[str, list[dict]]:
    """Per mode, n query-string dicts: a phrase, plus a colour, or a category and price band."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(n):
        q = QUERIES[rng.integers(len(QUERIES))]
        out["none"].append({"q": q, "limit": 20})
        out["colour"].append({"q": q, "limit": 20, "colour": COLOURS[rng.integers(len(COLOURS))]})
        cat = int(rng.integers(len(CATEGORIES)))
        lo, hi = MEDIAN_PRICE[cat] * rng.uniform(0.4, 0.9), MEDIAN_PRICE[cat] * rng.uniform(1.1, 2)
        out["category+price"].append({"q": q, "limit": 20, "category": CATEGORIES[cat],
                                      "price_min": round(lo, 2), "price_max": round(hi, 2)})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`vitrine serve` in a subprocess on loopback; stopped (and waited for) on exit."""

    def __init__(self, model: Path, data_dir: Path, threads: int, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VITRINE_MODEL": str(model), "VITRINE_DATA_DIR": str(data_dir),
               "HF_HUB_OFFLINE": "1", "VITRINE_API_KEYS": "{}", "VITRINE_PROFILE": "local",
               "OMP_NUM_THREADS": str(threads)}  # torch's default: one thread per core
        self.log = log_path.open("w")
        vitrine = Path(sys.executable).parent / "vitrine"
        self.proc = subprocess.Popen([str(vitrine), "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, client, timeout: float) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see "
                                   f"{self.log.name}")
            try:
                response = client.get("/readyz")
                if response.status_code == 200:
                    return response.json()
            except Exception:  # not listening yet
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the server was not ready within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def time_requests(client, params: list[dict], desc: str, deadline: float) -> tuple[list, int]:
    times, hits = [], 0
    for p in tqdm(params, desc=desc, leave=False):
        if time.time() > deadline:
            break
        t0 = time.perf_counter()
        response = client.get("/v1/search", params=p)
        body = response.json()
        times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {body}")
        hits += len(body["results"])
    return times, hits


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
    """Store search alone, per mode, with query vectors like the stored ones."""
    from catalogue.schemas import ProductFilters
    from catalogue.search import store_filter
    from catalogue.settings import CatalogueSettings
    from catalogue.store.edge import EdgeStore

    settings = CatalogueSettings(data_dir=data_dir)
    store = EdgeStore(settings.shard_dir, dim, settings.optimize_threshold)
    rng = np.random.default_rng(2)
    out = {}
    try:
        for mode, plist in params.items():
            times = []
            for p in plist:
                v = rng.standard_normal(dim).astype(np.float32)
                v /= np.linalg.norm(v)
                filters = ProductFilters.model_validate(
                    {k: ([v2] if k in ("colour", "category") else v2) for k, v2 in p.items()
                     if k not in ("q", "limit")})
                t0 = time.perf_counter()
                store.search(v, store_filter(filters), limit=21)
                times.append(time.perf_counter() - t0)
            out[mode] = latency_summary(times)
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
        f"torch threads {res['threads']} (= usable cores) in the server and in this process. "
        f"Model: ViT-B/32-sized CLIP, random weights; text tower 12 layers x 512, up to 77 "
        f"tokens. Store: {res['store']['points']:,} products, synthetic 512-d CLIP-like "
        f"vectors, {'HNSW-indexed' if not res['store']['unindexed'] else 'not indexed'} "
        f"(index built in {res['store']['index_build_s']:.1f} s).",
        f"Client: one httpx connection, sequential, {res['warmup']} warm-up requests, then "
        f"{res['requests_per_mode']} per filter mode; fashion phrases ({len(QUERIES)} "
        "distinct), limit 20. Latency from sending the request to the parsed JSON. Filters: "
        "`colour` = one colour; `category+price` = a category and a price band around its "
        "typical price.",
        markdown_table(header, rows),
        f"Text encode alone (same queries, in process, server idle): p50 "
        f"{enc['p50_ms']:.1f} ms, p99 {enc['p99_ms']:.1f} ms over {enc['n']} encodes. "
        "Share = text-encode p50 / HTTP p50; the rest is the store search, FastAPI and "
        "pydantic (validating and serialising 20 products) and loopback HTTP.",
        "## Notes\n\n" + "\n".join(f"- {n}" for n in res["notes"]),
    ]) + "\n"
    return md, text_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    from embedding.runtime import configure_threads

    configure_threads()  # as a served process does (vitrine.wiring)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300, help="per filter mode")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-index", action="store_true", help="leave the store unindexed")
    parser.add_argument("--deadline", type=float, default=1200, help="seconds for the whole run")
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--out", default=None, help="results file stem under bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        args.products, args.requests, args.warmup, args.no_index = 500, 20, 3, True
    out = args.out or ("search_http_quick" if args.quick else "search_http")
    deadline = time.time() + args.deadline
    threads = len(os.sched_getaffinity(0))

    import httpx
    import torch

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    model = ensure_vit_b32()
    dim = json.loads((model / "config.json").read_text())["projection_dim"]
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-search-"))
    data_dir = workdir / "data"
    params = request_params(args.requests + args.warmup)
    try:
        store = fill_store(data_dir, args.products, dim, optimize=not args.no_index)
        log.info("store: %s", store)
        store_search = time_store_search(data_dir, dim, {m: p[:args.requests]
                                                         for m, p in params.items()})
        server = Server(model, data_dir, threads, workdir / "server.log")
        http: dict = {}
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                ready = server.wait_ready(client, timeout=max(30.0, deadline - time.time()))
                log.info("server ready: %s", ready)
                for p in params["none"][:args.warmup]:
                    client.get("/v1/search", params=p).raise_for_status()
                for mode in MODES:
                    times, hits = time_requests(client, params[mode][args.warmup:],
                                                f"http {mode}", deadline)
                    if not times:
                        raise TimeoutError(f"--deadline reached before the {mode} requests")
                    http[mode] = {**latency_summary(times), "mean_hits": hits / len(times)}
                    log.info("%s: p50 %.1f ms, p99 %.1f ms", mode, http[mode]["p50_ms"],
                             http[mode]["p99_ms"])
        finally:
            server.stop()
        queries = [p["q"] for p in params["none"][args.warmup:]]
        encode = latency_summary(time_text_encode(model, queries, repeats=1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    notes = [
        "Every request encodes its query: Vitrine keeps no query-vector cache, so a "
        "repeated phrase costs the same as a new one.",
        "Vectors are synthetic (the model's weights are random, so real image vectors "
        "would mean nothing either); the store's work per query depends on the count, "
        "the filters and the index, not on where the vectors came from.",
    ]
    cores, load = threads, load_before[0]
    if load > cores:
        notes.append(f"The machine was shared (load average {load:.1f} on {cores} cores): "
                     "other processes took CPU time from both the server and the client, "
                     "which inflates the tail (p99) most.")
    res = {**run_record("bench.search_http", argv, load_before), "threads": threads,
           "store": store, "warmup": args.warmup, "requests_per_mode": args.requests,
           "http": http, "store_search": store_search, "text_encode": encode, "notes": notes}
    md, text = report(res)
    write_results(out, res, md)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
