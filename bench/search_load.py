"""`bench.search_http`'s server under test, and its measurements of modes, cache and concurrency.

* hybrid against semantic, cold: distinct texts (bench.search_catalogue.distinct_texts),
  so every request encodes its query; the two modes take turns, request by request, so
  a change in the machine's load falls on both alike;
* a repeated query: one text, answered from the query-vector cache after its first time;
* throughput: 1, 4 and 16 closed-loop clients (Locust, in a child process per level:
  bench.search_clients), cold texts and popular (cached) ones, a fixed time per level,
  the servers compared taking turns level by level.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from bench.common import latency_summary, markdown_table

ROOT = Path(__file__).resolve().parents[1]
REPEATED_TARGET_MS = 5.0


# -- the server under test -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`vitrine serve` in a subprocess on loopback; stopped (and waited for) on exit."""

    def __init__(self, model: Path, data_dir: Path, threads: int, log_path: Path,
                 text_tower: str | None = None, code: Path | None = None):
        """`code`: a checkout of other code (a git worktree of an earlier commit) to serve
        instead of this one's, for a side-by-side against it."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VITRINE_MODEL": str(model), "VITRINE_DATA_DIR": str(data_dir),
               "HF_HUB_OFFLINE": "1", "VITRINE_API_KEYS": "{}", "VITRINE_PROFILE": "local",
               "OMP_NUM_THREADS": str(threads)}  # torch's default: one thread per core
        if text_tower:
            env["VITRINE_TEXT_TOWER"] = text_tower
        if code:
            env["PYTHONPATH"] = str(code)  # ahead of this checkout's editable install
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


# -- measurements --------------------------------------------------------------------------------


def timed_get(client, params: dict) -> tuple[float, int]:
    """Seconds from sending to the parsed JSON, and the number of results."""
    t0 = time.perf_counter()
    response = client.get("/v1/search", params=params)
    body = response.json()
    seconds = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {body}")
    return seconds, len(body["results"])


def compare_modes(client, texts: dict[str, list[str]], deadline: float) -> dict:
    """Per mode, its own distinct texts, the modes taking turns request by request."""
    times: dict[str, list[float]] = {mode: [] for mode in texts}
    hits = dict.fromkeys(texts, 0)
    for row in tqdm(list(zip(*texts.values(), strict=True)), desc="modes", leave=False):
        if time.time() > deadline:
            break
        for mode, q in zip(texts, row, strict=True):
            seconds, n = timed_get(client, {"q": q, "limit": 20, "mode": mode})
            times[mode].append(seconds)
            hits[mode] += n
    if not all(times.values()):
        raise TimeoutError("--deadline reached before the mode comparison")
    return {mode: {**latency_summary(t), "mean_hits": hits[mode] / len(t)}
            for mode, t in times.items()}


def repeated(client, text: str, modes: tuple[str, ...], n: int, deadline: float) -> dict:
    """One text, `n` times per mode after a first request that fills the cache."""
    out = {}
    for mode in modes:
        params = {"q": text, "limit": 20, "mode": mode}
        timed_get(client, params)
        times = [timed_get(client, params)[0] for _ in range(n) if time.time() < deadline]
        if not times:
            raise TimeoutError("--deadline reached before the repeated query")
        out[mode] = latency_summary(times)
    return out


def throughput(urls: dict[str, str], workdir: Path, levels: list[int], seconds: float,
               texts: dict[str, list[str]], deadline: float) -> dict[str, dict]:
    """Per server (label: its URL), kind of texts (cold: distinct; popular: a few, already
    cached) and number of clients, requests answered per second over `seconds` (Locust,
    closed loop). The servers take turns level by level, each sent the same texts, so a
    change in the machine's speed falls on them alike."""
    out: dict[str, dict[str, dict]] = {label: {kind: {} for kind in texts} for label in urls}
    for kind, kind_texts in texts.items():
        for level in levels:
            share = len(kind_texts) // len(levels)  # each level its own cold texts
            mine = kind_texts[levels.index(level) * share:][:share] if kind == "cold" \
                else kind_texts
            texts_path = workdir / f"texts-{kind}-{level}.json"
            texts_path.write_text(json.dumps(mine))
            for i, (label, url) in enumerate(urls.items()):
                if time.time() + seconds + 30 > deadline:
                    raise TimeoutError("--deadline reached before the throughput runs")
                result_path = workdir / f"clients-{kind}-{level}-{i}.json"
                subprocess.run([sys.executable, "-m", "bench.search_clients", "--url", url,
                                "--clients", str(level), "--seconds", str(seconds),
                                "--texts", str(texts_path), "--params",
                                json.dumps({"limit": 20, "mode": "hybrid"}),
                                "--out", str(result_path)],
                               cwd=ROOT, check=True, timeout=seconds + 120)
                out[label][kind][str(level)] = json.loads(result_path.read_text())
    return out


def text_encoder(model: Path, text_tower: str | None = None):
    """The encoder a server would build, its text tower set where one is given."""
    from embedding.encoder import Encoder

    return Encoder(model=str(model), **({"text_tower": text_tower} if text_tower else {}))


def encode_batches(model: Path, texts: list[str], sizes: tuple[int, ...] = (1, 4, 16),
                   texts_per_size: int = 64, text_tower: str | None = None) -> dict[str, float]:
    """The text tower alone, in this process: median ms per text at each batch size (what
    the server's batched text passes can gain), each batch of texts not encoded before."""
    import numpy as np

    encoder = text_encoder(model, text_tower)
    encoder.encode_texts(texts[:4])
    out, i = {}, 4
    for size in sizes:
        per_text = []
        for _ in range(max(3, texts_per_size // size)):
            batch, i = texts[i:i + size], i + size
            t0 = time.perf_counter()
            encoder.encode_texts(batch)
            per_text.append((time.perf_counter() - t0) / len(batch))
        out[str(size)] = float(np.median(per_text)) * 1e3
    return out


def closed_loop(vector, texts: list[str], position, callers: int, seconds: float) -> int:
    """`callers` threads each asking `vector` for the next text, pausing 3-8 ms (the rest
    of a request) between texts, for `seconds`; returns the texts asked for."""
    import random
    import threading

    stop, done = time.monotonic() + seconds, []

    def caller(rng: random.Random) -> None:
        while time.monotonic() < stop:
            i = next(position)
            vector(texts[i % len(texts)])
            done.append(i)
            time.sleep(rng.uniform(0.003, 0.008))

    threads = [threading.Thread(target=caller, args=(random.Random(n),)) for n in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(done)


def texts_per_pass(model: Path, texts: list[str], levels: list[int],
                   seconds: float = 5.0, text_tower: str | None = None) -> dict[str, dict]:
    """`catalogue.queries.TextQueries` alone, in this process, under N closed-loop callers:
    distinct texts encoded, forward passes made, and so the texts one pass shares."""
    from itertools import count

    from catalogue.queries import TextQueries
    from catalogue.settings import CatalogueSettings

    settings, encoder = CatalogueSettings(), text_encoder(model, text_tower)
    encoder.encode_texts(texts[:2])
    position, out = count(2), {}
    for level in levels:
        queries = TextQueries(encoder, settings.query_cache_size,
                              settings.query_batch_window_ms / 1000)
        n = closed_loop(queries.vector, texts, position, level, seconds)
        out[str(level)] = {"texts": n, "passes": queries.passes,
                           "texts_per_pass": n / max(1, queries.passes),
                           "texts_per_s": n / seconds}
    return out


def report(res: dict) -> list[str]:
    """The markdown sections of these measurements."""
    blocks = []
    modes = res.get("modes")
    if modes:
        rows = [[mode, m["n"], f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}", f"{m['mean_ms']:.1f}",
                 f"{m['max_ms']:.1f}", f"{m['mean_hits']:.1f}"] for mode, m in modes.items()]
        extra = modes["hybrid"]["p50_ms"] - modes["semantic"]["p50_ms"]
        blocks += ["## Hybrid against semantic, cold queries",
                   "No filter, limit 20; every text distinct (so every request encodes its "
                   "query), the two modes taking turns request by request.",
                   markdown_table(["mode", "requests", "p50 ms", "p99 ms", "mean ms", "max ms",
                                   "mean results"], rows),
                   f"Hybrid adds {extra:+.1f} ms at p50 (the keyword side: BM25 of the "
                   "query in process, a sparse search and the engine's fusion). The store "
                   "search alone, no filter: hybrid p50 "
                   f"{res['store_search']['none']['p50_ms']:.2f} ms, semantic "
                   f"{res['store_search']['none, semantic']['p50_ms']:.2f} ms."]
    rep = res.get("repeated")
    if rep:
        rows = [[mode, m["n"], f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}",
                 "PASS" if m["p50_ms"] <= REPEATED_TARGET_MS else "FAIL"]
                for mode, m in rep.items()]
        blocks += ["## A repeated query",
                   f"\"{res['repeated_text']}\" again and again after its first request: its "
                   "vector comes from the cache. Target: p50 <= "
                   f"{REPEATED_TARGET_MS:.0f} ms.",
                   markdown_table(["mode", "requests", "p50 ms", "p99 ms", "p50 target"], rows)]
    load = res.get("throughput")
    if load:
        rows = [[kind, level, r["requests"], f"{r['rps']:.1f}", f"{r['p50_ms']:.1f}",
                 f"{r['p99_ms']:.1f}", r["errors"], r["wrapped"] if kind == "cold" else "-"]
                for kind, levels in load.items() for level, r in levels.items()]
        blocks += ["## Throughput with concurrent clients",
                   f"Locust (FastHttpUser) in a child process on the same machine, closed "
                   f"loop (each client sends its next request when the answer arrives), "
                   f"{res['load_seconds']:.0f} s per level, the first second left out; "
                   "hybrid, no filter, limit 20. `cold`: every text distinct; `popular`: "
                   f"{res['popular_texts']} phrases, cached before the run. `wrapped`: "
                   "cold texts sent a second time, after the list ran out.",
                   markdown_table(["texts", "clients", "requests", "req/s", "p50 ms",
                                   "p99 ms", "errors", "wrapped"], rows),
                   f"Server torch threads: {res['server_threads']}. The text tower alone "
                   "(in this process, server stopped), ms per text at batch "
                   + ", ".join(f"{b}: {ms:.1f}" for b, ms in res["encode_batches"].items())
                   + ". The query-text batching alone (`TextQueries`, in this process, N "
                   "callers each pausing 3-8 ms between texts), texts per forward pass: "
                   + ", ".join(f"{n} callers {r['texts_per_pass']:.2f} ({r['texts_per_s']:.0f} "
                               "texts/s)" for n, r in res["texts_per_pass"].items()) + "."]
    return blocks
