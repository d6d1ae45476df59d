"""The query text tower, every way it can run on the CPU, side by side (VITRINE_TEXT_TOWER).

    .venv/bin/python -m bench.text_tower            # the demo model and the ViT-B/32-size one
    .venv/bin/python -m bench.text_tower --quick    # smoke run

For each model and each variant of `embedding.fast_text` (float32, int8, bfloat16, compile,
onnx, onnx-int8), one `Encoder` with `text_tower` set to it:

* build: seconds to load the model and build the variant (export, quantisation, compile);
* latency: one query at a time through `Encoder.encode_texts` (tokenising included) at the
  serving thread count (torch threads = usable cores), p50/p99 over distinct catalogue
  queries after a warm-up; the variants take turns query by query, so a change in the
  machine's load falls on all of them alike;
* fidelity: the cosine of each query's vector to float32's, over every catalogue query
  (the demo catalogue's product names, and its attribute queries "a red dress" and "ein
  rotes Kleid" for each colour and article type), encoded in batches as a burst of
  queries would be: minimum, 0.1th percentile and mean, against the bound 0.995.

Models: the demo CLIP trained on the demo catalogue (data/models/demo: `vitrine demo`),
whose weights mean something, and the ViT-B/32-size random one (bench/ingest/workload.py)
whose text tower has the size of FashionCLIP's, for the timing that matters.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from bench.common import latency_summary, markdown_table, run_record, text_table, write_results

log = logging.getLogger("bench.text_tower")
ROOT = Path(__file__).resolve().parents[1]
BOUND = 0.995
DEMO_MODEL = ROOT / "data" / "models" / "demo"
STYLES = ROOT / "data" / "demo" / "catalogue" / "styles.csv"


def catalogue_queries(styles: Path) -> list[str]:
    """Distinct product names and attribute queries (English and German) of a catalogue."""
    from catalogue.captions import attribute_query
    from catalogue.styles import read_styles

    rows = read_styles(styles)
    names = [r["productDisplayName"] for r in rows if r.get("productDisplayName")]
    pairs = sorted({(r["baseColour"], r["articleType"]) for r in rows
                    if r.get("baseColour") and r.get("articleType")})
    attributes = [attribute_query(c, a, lang) for c, a in pairs for lang in ("en", "de")]
    return list(dict.fromkeys(names + attributes))


def measure_model(model: Path, kinds: list[str], queries: list[str], timed: int,
                  warmup: int) -> dict:
    from embedding.encoder import Encoder

    encoders, built = {}, {}
    for kind in kinds:
        t0 = time.perf_counter()
        encoders[kind] = Encoder(model=str(model), text_tower=kind).load()
        built[kind] = time.perf_counter() - t0
        assert encoders[kind].text_tower == kind, encoders[kind].text_tower
        log.info("%s: %s built in %.1f s", model.name, kind, built[kind])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(queries))
    warm = [queries[i] for i in order[:warmup]]
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind in kinds:
        t0 = time.perf_counter()
        for q in warm:  # compile compiles here, on the first shapes it sees
            encoders[kind].encode_texts([q])
        log.info("%s: %s warm-up %.1f s", model.name, kind, time.perf_counter() - t0)
    for i, j in enumerate(order[warmup:warmup + timed]):
        q = queries[j]
        for k in range(len(kinds)):  # each variant first in turn
            kind = kinds[(i + k) % len(kinds)]
            t0 = time.perf_counter()
            encoders[kind].encode_texts([q])
            times[kind].append(time.perf_counter() - t0)
    reference = encoders["float32"].encode_texts(queries)
    out = {}
    for kind in kinds:
        vectors = reference if kind == "float32" else encoders[kind].encode_texts(queries)
        cos = (vectors * reference).sum(axis=1)
        out[kind] = {"build_s": built[kind], **latency_summary(times[kind]),
                     "cos_min": float(cos.min()), "cos_p0.1": float(np.percentile(cos, 0.1)),
                     "cos_mean": float(cos.mean()), "queries": len(queries),
                     "within_bound": bool(cos.min() >= BOUND)}
        log.info("%s %s: p50 %.2f ms, cos min %.5f", model.name, kind, out[kind]["p50_ms"],
                 out[kind]["cos_min"])
    return out


def choose(models: dict[str, dict]) -> str:
    """The fastest variant on the largest model whose vectors stay within the bound on all."""
    big = models[list(models)[-1]]
    passing = [k for k in big if all(m[k]["within_bound"] for m in models.values())]
    return min(passing, key=lambda k: big[k]["p50_ms"])


def report(res: dict) -> tuple[str, str]:
    m = res["machine"]
    header = ["model", "text tower", "build s", "p50 ms", "p99 ms", "x float32 p50",
              "cos min", "cos p0.1", "cos mean", f">= {BOUND}"]
    rows = []
    for name, variants in res["models"].items():
        base = variants["float32"]["p50_ms"]
        for kind, v in variants.items():
            rows.append([name, kind, f"{v['build_s']:.1f}", f"{v['p50_ms']:.2f}",
                         f"{v['p99_ms']:.2f}", f"{base / v['p50_ms']:.1f}x",
                         f"{v['cos_min']:.5f}", f"{v['cos_p0.1']:.5f}", f"{v['cos_mean']:.5f}",
                         "yes" if v["within_bound"] else "NO"])
    md = "\n\n".join([
        "# Query text tower benchmark",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores ({m['logical_cores']} "
        f"logical), {m['memory_gib']} GiB RAM; bf16 instructions: {res['bf16']}; Python "
        f"{m['python']}, torch {res['torch']}, onnxruntime {res['onnxruntime']}; {m['date']}. "
        f"Load average (1/5/15 min) before: {res['load_before']}, after: {res['load_after']}.",
        f"Command: `{res['command']}`",
        f"Latency: one query per call of `Encoder.encode_texts` (tokenising included), torch "
        f"and ONNX Runtime threads {res['threads']}, {res['warmup']} warm-up queries per "
        f"variant, then {res['timed']} distinct catalogue queries, the variants taking turns. "
        f"Cosine: every variant's vector of each of the {res['queries']} catalogue queries "
        "(product names; \"a red dress\" and \"ein rotes Kleid\" for each colour and article "
        "type) against float32's, encoded 32 at a time. `build s`: loading the model and "
        "building the variant (ONNX export and quantisation in memory, torch.compile's "
        "first compile happens in the warm-up instead).",
        markdown_table(header, rows),
        f"Chosen (fastest on the ViT-B/32-size tower within cosine {BOUND} on every model): "
        f"**{res['chosen']}**.",
        "Models: `demo` is the CLIP `vitrine demo` trains on the demo catalogue (text "
        "tower " + res["sizes"].get("demo", "?") + "); `vit-b32-random` has the sizes of "
        "OpenAI's ViT-B/32 and FashionCLIP (text tower " + res["sizes"].get(
            "vit-b32-random", "?") + ") with random weights, for the timing.",
    ]) + "\n"
    return md, text_table(header, rows)


def tower_size(model: Path) -> str:
    import json

    text = json.loads((model / "config.json").read_text())["text_config"]
    return f"{text['num_hidden_layers']} layers x {text['hidden_size']}"


def main(argv: list[str] | None = None) -> int:
    from embedding.runtime import configure_threads

    configure_threads()  # as a served process does
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=None, help="comma list (default: every variant)")
    parser.add_argument("--timed", type=int, default=300, help="queries timed per variant")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--queries", type=int, default=None, help="cosine over at most this many")
    parser.add_argument("--demo-model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--styles", type=Path, default=STYLES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="results file stem under bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        args.timed, args.warmup, args.queries = 20, 5, 300
    import onnxruntime
    import torch

    from bench.ingest.workload import ensure_vit_b32
    from embedding.fast_text import TEXT_TOWERS, bf16_supported

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    kinds = args.kinds.split(",") if args.kinds else list(TEXT_TOWERS)
    kinds = ["float32", *[k for k in kinds if k != "float32"]]
    load_before = os.getloadavg()
    queries = catalogue_queries(args.styles)[:args.queries]
    models = {}
    sizes = {}
    for name, folder in (("demo", args.demo_model), ("vit-b32-random", ensure_vit_b32())):
        if not (folder / "config.json").exists():
            log.warning("no model in %s: skipped (vitrine demo trains it)", folder)
            continue
        sizes[name] = tower_size(folder)
        models[name] = measure_model(folder, kinds, queries, args.timed, args.warmup)
    res = {**run_record("bench.text_tower", argv, load_before), "threads": threads,
           "bf16": bf16_supported(), "torch": torch.__version__,
           "onnxruntime": onnxruntime.__version__, "warmup": args.warmup, "timed": args.timed,
           "queries": len(queries), "bound": BOUND, "sizes": sizes, "models": models,
           "chosen": choose(models)}
    md, text = report(res)
    write_results(args.out or ("text_tower_quick" if args.quick else "text_tower"), res, md)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
