"""Soak: mixed search, facets and uploads from several clients against one served catalogue.

    .venv/bin/python -m bench.soak                 # 10 minutes mixed, after 2 minutes search alone
    .venv/bin/python -m bench.soak --quick         # smoke run, about 2 minutes

A demo catalogue (rendered here, `--products` of them) is imported into a temporary
data folder with `vitrine import`, then `vitrine serve` runs the local profile over it
on 127.0.0.1. Locust (the load generator, in this process) drives it in two phases:
  1. search alone: `--clients` shoppers sending text searches, facets and photo searches;
  2. mixed: the same clients, each also uploading products, some of them with a huge
     one-bit PNG in a tiny file (accepted, decoded small within the budget), some hostile
     (one over the decoded-size cap, refused from its header; a 1x1 image).
Every `--sample` seconds the server's RSS (with its children: the index builder) is read,
and each window's latency percentiles and error counts are kept. An error is a 5xx, a
refused connection, or an answer other than the ones each request expects.

Loopback only; the run is bounded by its phases' durations and a per-request timeout.
Locust is used as a library (not its web UI), so one command gives one report.
"""

# ruff: noqa: I001 - locust's import must stay first (below)
from __future__ import annotations

# Locust runs on gevent, whose monkey-patching must come before anything imports ssl,
# threading or sockets, or the run hangs: so locust is imported first.
import locust  # noqa: F401

import argparse
import io
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil

from bench.common import markdown_table, run_record, text_table, write_results

log = logging.getLogger("bench.soak")
ROOT = Path(__file__).resolve().parents[1]
QUERIES = ("red dress", "black trousers", "white sneakers", "blue striped shirt", "floral skirt",
           "green jacket", "dotted dress", "brown boots", "grey sweater", "pink top")
SEARCHES = ("search", "facets", "photo search")  # the requests compared across phases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(size: tuple[int, int], mode: str = "RGB", colour: object = "red") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def prepare(workdir: Path, products: int, model: str | None) -> tuple[dict[str, str], list[bytes]]:
    """A rendered catalogue imported into a data folder; the server's environment and some
    catalogue photos to search and upload with."""
    from demo.generator import generate
    from embedding.architecture import Architecture
    from testkit.models import CORPUS, make_random_model

    if model is None:
        model = str(make_random_model(workdir / "model", Architecture.tiny("clip"), CORPUS))
    csv_path = generate(workdir / "catalogue", n_products=products, seed=0, image_size=128,
                        n_prohibited=0, progress=False)
    env = {**os.environ, "VITRINE_DATA_DIR": str(workdir / "data"), "VITRINE_MODEL": model,
           "VITRINE_MODERATION_ENABLED": "false", "VITRINE_TAGGING_ENABLED": "false"}
    subprocess.run([sys.executable, "-m", "vitrine.cli", "import", str(csv_path.parent)],
                   env=env, cwd=ROOT, check=True, capture_output=True)
    photos = [p.read_bytes() for p in sorted((csv_path.parent / "images").glob("*.jpg"))[:40]]
    return env, photos


class Samples:
    """Latencies and outcomes with their time, per request name, from Locust's hook."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str, float, bool]] = []  # (t, name, ms, ok)
        self.first_failure: dict[str, str] = {}  # name -> what went wrong, the first time

    def on_request(self, request_type, name, response_time, response_length, exception=None,
                   context=None, response=None, **_) -> None:
        self.rows.append((time.monotonic(), name, float(response_time), exception is None))
        if exception is not None:
            self.first_failure.setdefault(name, str(exception)[:300])

    def window(self, start: float, end: float) -> dict:
        by_name: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        for t, name, ms, ok in self.rows:
            if start <= t < end:
                by_name[name].append(ms)
                errors[name] += not ok
        return {name: {"n": len(v), "errors": errors[name],
                       "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))}
                for name, v in by_name.items()}


def user_classes(photos: list[bytes], uploads: bool):
    from locust import HttpUser, between, task

    # A few KB each. 6300x6300 one-bit pixels (39.7 MB decoded) fit the decode cap and are
    # decoded small, within the budget: accepted. 12000x12000 (144 MB) is over the cap.
    big_pixels = png((6300, 6300), "1", 1)
    hostile = (png((12000, 12000), "1", 1), png((1, 1)))

    def expect(response, codes: tuple[int, ...]) -> None:
        if response.status_code not in codes:
            response.failure(f"answered {response.status_code}: {response.text[:200]}")
        else:
            response.success()

    class Shopper(HttpUser):
        wait_time = between(0.05, 0.2)

        @task(6)
        def search(self) -> None:
            q = random.choice(QUERIES)
            with self.client.get("/v1/search", params={"q": q, "limit": 20}, name="search",
                                 catch_response=True, timeout=30) as r:
                expect(r, (200,))

        @task(2)
        def facets(self) -> None:
            with self.client.get("/v1/facets", params={"colour": random.choice(
                    ("Red", "Black", "Blue"))}, name="facets", catch_response=True,
                    timeout=30) as r:
                expect(r, (200,))

        @task(2)
        def photo_search(self) -> None:
            files = {"image": ("p.jpg", random.choice(photos), "image/jpeg")}
            with self.client.post("/v1/search", files=files, data={"limit": "20"},
                                  name="photo search", catch_response=True, timeout=30) as r:
                expect(r, (200, 503))  # 503: the decode budget is busy, try again

        @task(3 if uploads else 0)
        def upload(self) -> None:
            n = random.randrange(10**9)
            files = {"image": ("p.jpg", random.choice(photos), "image/jpeg")}
            meta = json.dumps({"id": f"soak-{n}", "title": f"soak product {n}"})
            with self.client.post("/v1/products", files=files, data={"metadata": meta},
                                  name="upload", catch_response=True, timeout=60) as r:
                expect(r, (202, 503))

        @task(1 if uploads else 0)
        def big_pixel_upload(self) -> None:
            meta = json.dumps({"id": f"big-{random.randrange(10**9)}", "title": "big"})
            with self.client.post("/v1/products", data={"metadata": meta},
                                  files={"image": ("x.png", big_pixels, "image/png")},
                                  name="big-pixel upload", catch_response=True, timeout=60) as r:
                expect(r, (202, 503))

        @task(1 if uploads else 0)
        def hostile_upload(self) -> None:
            image = random.choice(hostile)
            meta = json.dumps({"id": f"bad-{random.randrange(10**9)}", "title": "bad"})
            with self.client.post("/v1/products", files={"image": ("x.png", image, "image/png")},
                                  data={"metadata": meta}, name="hostile upload",
                                  catch_response=True, timeout=60) as r:
                expect(r, (413, 422, 503))

    return [Shopper]


def run_phase(url: str, users: list, clients: int, seconds: float, samples: Samples,
              server: psutil.Process, sample_every: float, label: str) -> list[dict]:
    from locust.env import Environment

    env = Environment(user_classes=users, host=url)
    env.events.request.add_listener(samples.on_request)
    runner = env.create_local_runner()
    runner.start(clients, spawn_rate=clients)
    windows, start = [], time.monotonic()
    end = start + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(sample_every, end - now))
        t = time.monotonic()
        windows.append({"phase": label, "t_s": round(t - start, 1), "rss_mb": server_rss(server),
                        "requests": samples.window(t - sample_every, t)})
        log.info("%s %5.0fs  rss %6.0f MB  %s", label, t - start, windows[-1]["rss_mb"],
                 {k: (v["n"], round(v["p99_ms"])) for k, v in windows[-1]["requests"].items()})
    runner.quit()
    env.events.request.remove_listener(samples.on_request)
    return windows


def server_rss(server: psutil.Process) -> float:
    total = server.memory_info().rss
    for child in server.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def summarise(samples: Samples, phases: dict[str, tuple[float, float]]) -> dict:
    return {label: samples.window(start, end) for label, (start, end) in phases.items()}


def report(result: dict) -> str:
    s = result["summary"]
    names = sorted({n for phase in s.values() for n in phase})
    rows = [[phase, n, s[phase][n]["n"], s[phase][n]["errors"], f"{s[phase][n]['p50_ms']:.0f}",
             f"{s[phase][n]['p99_ms']:.0f}"] for phase in s for n in names if n in s[phase]]
    ratio = result["search_p99_ratio"]
    lines = [
        f"# Soak: {result['clients']} clients, {result['minutes']} min mixed after "
        f"{result['baseline_minutes']} min search alone", "",
        f"Machine: {result['machine']['cpu_model']}, {result['machine']['usable_cores']} cores; "
        f"{result['products']} products; model {result['model']}; {result['machine']['date']}.",
        "", markdown_table(["phase", "request", "n", "errors", "p50 ms", "p99 ms"], rows), "",
        f"Server RSS (with children): start {result['rss_start_mb']:.0f} MB, peak "
        f"{result['rss_peak_mb']:.0f} MB, end {result['rss_end_mb']:.0f} MB; limit "
        f"{result['rss_limit_mb']:.0f} MB: **{'PASS' if result['rss_ok'] else 'FAIL'}**.",
        f"Search p99 under uploads / alone: {ratio:.2f}x (target <= 3x): "
        f"**{'PASS' if ratio <= 3 else 'FAIL'}**.",
        f"5xx and other unexpected answers: {result['errors']}.", ""]
    lines += [f"- first unexpected `{name}`: {why}" for name, why in
              result["first_failures"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--baseline-minutes", type=float, default=2)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--products", type=int, default=600)
    p.add_argument("--model", help="model folder (default: a tiny random CLIP made here)")
    p.add_argument("--sample", type=float, default=10, help="seconds between samples")
    p.add_argument("--rss-limit-mb", type=float, default=1500,
                   help="the server's memory budget the soak checks against")
    p.add_argument("--quick", action="store_true", help="1 minute mixed, 30 s alone")
    p.add_argument("--out", type=Path, help="write results here instead of bench/results")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.baseline_minutes, args.products, args.sample = 1, 0.5, 200, 5
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vitrine-soak-") as tmp:
        env, photos = prepare(Path(tmp), args.products, args.model)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "vitrine.cli", "serve", "--port",
                                 str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=open(Path(tmp) / "server.log", "w"))  # noqa: SIM115
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc)
            server = psutil.Process(proc.pid)
            rss_start = server_rss(server)
            samples = Samples()
            t0 = time.monotonic()
            windows = run_phase(url, user_classes(photos, uploads=False), args.clients,
                                args.baseline_minutes * 60, samples, server, args.sample,
                                "alone")
            t1 = time.monotonic()
            windows += run_phase(url, user_classes(photos, uploads=True), args.clients,
                                 args.minutes * 60, samples, server, args.sample, "mixed")
            t2 = time.monotonic()
            rss_end = server_rss(server)
        finally:
            proc.terminate()
            proc.wait(30)
    summary = summarise(samples, {"alone": (t0, t1), "mixed": (t1, t2)})
    peak = max([rss_start, rss_end] + [w["rss_mb"] for w in windows])
    ratio = summary["mixed"]["search"]["p99_ms"] / summary["alone"]["search"]["p99_ms"]
    result = {**run_record("bench.soak", argv, load_before), "clients": args.clients,
              "minutes": args.minutes, "baseline_minutes": args.baseline_minutes,
              "products": args.products, "model": args.model or "tiny random CLIP",
              "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_peak_mb": peak,
              "rss_limit_mb": args.rss_limit_mb, "rss_ok": peak <= args.rss_limit_mb,
              "search_p99_ratio": ratio,
              "errors": sum(v["errors"] for phase in summary.values() for v in phase.values()),
              "first_failures": samples.first_failure, "summary": summary, "windows": windows}
    markdown = report(result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "soak.md").write_text(markdown)
    else:
        write_results("soak", result, markdown)
    print(text_table(["window", "rss MB"], [[f"{w['phase']} {w['t_s']}", f"{w['rss_mb']:.0f}"]
                                            for w in windows]))
    print(markdown)
    return 0 if result["rss_ok"] and ratio <= 3 and not result["errors"] else 1


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


if __name__ == "__main__":
    sys.exit(main())
