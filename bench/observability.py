"""What metrics and JSON logs cost a search: two servers side by side, one plain, one observed.

    .venv/bin/python -m bench.observability            # 5,000 products, 300 requests each
    .venv/bin/python -m bench.observability --quick    # smoke run

One data folder (bench.search_catalogue's synthetic catalogue, HNSW-indexed) is served
by two `vitrine serve` processes on loopback, on the ViT-B/32-sized random model:
`plain` with `VITRINE_METRICS_ENABLED=false` and text logs, `observed` with metrics on
and `VITRINE_LOG_FORMAT=json` (every request counted, timed by stage and logged as one
JSON line with its request id). A sequential client sends each request to both in turn,
so that a slower minute of the machine falls on both alike: cold queries (each text
new, so the text tower runs), then one repeated query (answered from the page cache,
where a request's fixed costs show most). Latency is measured at the client.

The embedded store is one process's, so the two servers open copies of the folder.
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

import httpx

from bench import search_load
from bench.common import latency_summary, markdown_table, run_record, text_table, write_results
from bench.ingest.workload import ensure_vit_b32
from bench.search_catalogue import distinct_texts, fill_store

log = logging.getLogger("bench.observability")
CONFIGS = {"plain": {"VITRINE_METRICS_ENABLED": "false", "VITRINE_LOG_FORMAT": "text"},
           "observed": {"VITRINE_METRICS_ENABLED": "true", "VITRINE_LOG_FORMAT": "json"}}
REPEATED = "red summer dress"


def start(name: str, model: Path, data_dir: Path, workdir: Path, threads: int):
    saved = {k: os.environ.get(k) for k in CONFIGS[name]}
    os.environ.update(CONFIGS[name])
    try:
        return search_load.Server(model, data_dir, threads, workdir / f"{name}.log")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def timed(client: httpx.Client, params: dict) -> float:
    t0 = time.perf_counter()
    response = client.get("/v1/search", params=params)
    response.raise_for_status()
    response.json()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300, help="cold and repeated, each")
    parser.add_argument("--quick", action="store_true", help="500 products, 30 requests")
    args = parser.parse_args(argv)
    if args.quick:
        args.products, args.requests = 500, 30
    load_before, started = os.getloadavg(), time.perf_counter()
    threads = len(os.sched_getaffinity(0))
    model = ensure_vit_b32()
    dim = json.loads((model / "config.json").read_text())["projection_dim"]
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-observability-"))
    texts = distinct_texts(args.requests + 10)
    times: dict[str, dict[str, list[float]]] = {n: {"cold": [], "repeated": []} for n in CONFIGS}
    servers = {}
    try:
        fill_store(workdir / "plain", args.products, dim, True, str(model))
        shutil.copytree(workdir / "plain", workdir / "observed")
        servers = {n: start(n, model, workdir / n, workdir, threads) for n in CONFIGS}
        clients = {n: httpx.Client(base_url=s.url, timeout=60) for n, s in servers.items()}
        for name, server in servers.items():
            server.wait_ready(clients[name], timeout=300)
            for text in texts[:10]:  # warm-up: model, store, page cache of the repeated query
                timed(clients[name], {"q": text})
            timed(clients[name], {"q": REPEATED})
        for text in texts[10:]:
            for name in CONFIGS:
                times[name]["cold"].append(timed(clients[name], {"q": text}))
        for _ in range(args.requests):
            for name in CONFIGS:
                times[name]["repeated"].append(timed(clients[name], {"q": REPEATED}))
        scraped = clients["observed"].get("/metrics").text.count("\n")
        lines = sum(1 for _ in (workdir / "observed.log").open())
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {n: {kind: latency_summary(v) for kind, v in t.items()}
               for n, t in times.items()}
    res = {**run_record("bench.observability", argv, load_before), "products": args.products,
           "requests": args.requests, "summary": summary, "metrics_lines": scraped,
           "observed_log_lines": lines, "wall_s": time.perf_counter() - started}
    header = ["requests", "server", "p50 ms", "p99 ms", "mean ms"]
    rows = [[kind, n, f"{s[kind]['p50_ms']:.2f}", f"{s[kind]['p99_ms']:.2f}",
             f"{s[kind]['mean_ms']:.2f}"] for kind in ("cold", "repeated")
            for n, s in summary.items()]
    m = res["machine"]
    md = "\n\n".join([
        "# What metrics and JSON logs cost a search",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores; {m['date']}. Load "
        f"average before: {res['load_before']}.",
        f"Command: `{res['command']}`",
        f"{args.products:,} products (ViT-B/32-sized random model, 512-d, HNSW), two "
        "`vitrine serve` processes on copies of one folder, requests alternating between "
        f"them, {args.requests} each: `plain` (VITRINE_METRICS_ENABLED=false, text logs) "
        "and `observed` (metrics on, VITRINE_LOG_FORMAT=json). Cold: each text new. "
        f"Repeated: \"{REPEATED}\" from the page cache.",
        markdown_table(header, rows),
        f"The observed server's /metrics had {scraped:,} lines at the end; its log "
        f"{lines:,} lines. Wall time {res['wall_s']:.0f} s.",
    ]) + "\n"
    write_results("observability_quick" if args.quick else "observability", res, md)
    print(text_table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
