"""Moderation and auto-tagging benchmark on the demo catalogue and a demo model.

    .venv/bin/python -m bench.moderation --model data/models/demo \
        --catalogue data/demo/catalogue/styles.csv

Moderation: the labelled images are every prohibited row (the `moderation` column)
plus the model's held-out products (split.json) as negatives. They are split in two
halves, stratified by label and seeded: thresholds (and the labelled examples) come
from the calibration half only, and precision and recall are reported on the other
half, at the calibrated thresholds. Prompts alone (no examples) are reported too.

Auto-tagging: held-out products with category and colour removed, classified against
the values the training products use (what the catalogue's facets would hold), with
the default prompt ensembles; accuracy of the top prediction, and coverage and
accuracy of the predictions confident enough to be applied. Also each field with the
other one known, which the templates use when they can.

Cost: per image, one ingest batch of 32: decode-free encode (preprocessing and the
forward pass) vs the moderation and tagging enrichers on the same embeddings, warm
(prompt embeddings cached; their one-off cost is reported apart).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.common import RESULTS_DIR, machine_info, markdown_table
from catalogue.moderation import (
    DEFAULT_POLICY,
    DecisionStore,
    ModerationPolicy,
    Moderator,
    calibrate_on,
    encode_files,
    evaluate,
)
from catalogue.styles import read_styles
from catalogue.tagging import Tagger, TaggingSettings
from embedding.encoder import Encoder

log = logging.getLogger("bench.moderation")
BATCH = 32


def halves(labels: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two halves, each label split evenly between them."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in sorted(set(labels)):
        idx = rng.permutation([i for i, x in enumerate(labels) if x == label])
        first += idx[: (len(idx) + 1) // 2].tolist()
        second += idx[(len(idx) + 1) // 2:].tolist()
    return np.array(sorted(first)), np.array(sorted(second))


def bench_moderation(encoder: Encoder, policy: ModerationPolicy, vectors: np.ndarray,
                     labels: list[str], precision: float, seed: int) -> dict:
    a, b = halves(labels, seed)
    la, lb = [labels[i] for i in a], [labels[i] for i in b]
    out = {"target_precision": precision, "calibration_half": len(a), "report_half": len(b),
           "labelled": {k: labels.count(k) for k in sorted(set(labels)) if k}}
    for name, use_examples in (("prompts_and_examples", True), ("prompts_only", False)):
        calibrated, examples, results = calibrate_on(encoder, policy, vectors[a], la,
                                                     precision, use_examples)
        moderator = Moderator(calibrated, encoder, examples=examples)
        verdicts = moderator.verdicts(vectors[b])
        out[name] = {
            "thresholds": {c: calibrated.categories[c].threshold for c in calibrated.categories},
            "calibration": {c: r.row() for c, r in results.items()},
            "held_out": evaluate([v.category if v else None for v in verdicts], lb,
                                 moderator.categories),
        }
    return out


def bench_tagging(encoder: Encoder, train_rows: list[dict], rows: list[dict],
                  vectors: np.ndarray) -> dict:
    truth = {"category": [r["articleType"] for r in rows],
             "colour": [r["baseColour"] for r in rows]}
    vocabulary = {"category": sorted({r["articleType"] for r in train_rows}),
                  "colour": sorted({r["baseColour"] for r in train_rows})}
    settings = TaggingSettings(vocabulary=vocabulary)
    tagger = Tagger(settings, encoder, store=None)
    out = {"products": len(rows), "classes": {k: len(v) for k, v in vocabulary.items()},
           "thresholds": {f: settings.threshold_for(f) for f in ("category", "colour")}}
    for field, other in (("category", "colour"), ("colour", "category")):
        for known in (False, True):
            payloads = [{other: t} if known else {} for t in truth[other]]
            guesses = tagger.predict(field, payloads, vectors)
            pred = np.array([g[0] for g in guesses])
            conf = np.array([g[1] for g in guesses])
            right = pred == np.array(truth[field])
            applied = conf >= settings.threshold_for(field)
            key = f"{field}{f'_given_{other}' if known else ''}"
            out[key] = {"accuracy": round(float(right.mean()), 4),
                        "applied_fraction": round(float(applied.mean()), 4),
                        "applied_accuracy": (round(float(right[applied].mean()), 4)
                                             if applied.any() else None),
                        "by_threshold": {str(t): [round(float((conf >= t).mean()), 4),
                                                  round(float(right[conf >= t].mean()), 4)
                                                  if (conf >= t).any() else None]
                                         for t in CURVE}}
    return out


CURVE = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def bench_cost(encoder: Encoder, moderator: Moderator, tagger: Tagger, images: list,
               repeats: int) -> dict:
    batches = [images[i:i + BATCH] for i in range(0, len(images) - BATCH + 1, BATCH)][:repeats]
    started = time.perf_counter()
    moderator.classes()  # the one-off cost: every prompt embedded once per model
    tagger.predict("colour", [{}], encoder.encode_images(batches[0][:1]))
    tagger.predict("category", [{}], encoder.encode_images(batches[0][:1]))
    cold = time.perf_counter() - started
    times = []  # per batch: encode, moderation, tagging
    for batch in batches:
        t0 = time.perf_counter()
        vectors = encoder.encode_images(batch)
        t1 = time.perf_counter()
        payloads = [{"image_sha256": f"{i:064x}", "moderation_status": "visible"}
                    for i in range(len(batch))]
        moderator(payloads, vectors)
        t2 = time.perf_counter()
        tagger(payloads, vectors)
        t3 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2))
    # Medians over batches: the machine is shared, and a stall in one batch says nothing.
    encode, moderate, tag = (float(np.median(col)) / BATCH for col in zip(*times, strict=True))
    per = {"encode_ms": 1e3 * encode, "moderation_ms": 1e3 * moderate,
           "tagging_ms": 1e3 * tag}
    per = {k: round(v, 4) for k, v in per.items()}
    per["added_fraction_of_encode"] = round((moderate + tag) / encode, 4)
    per["images"] = BATCH * len(batches)
    per["batch"] = BATCH
    per["cold_start_s"] = round(cold, 3)
    return per


def main(argv: list[str] | None = None) -> int:
    from embedding.runtime import configure_threads

    configure_threads()  # as a served process does (vitrine.wiring)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="data/models/demo")
    p.add_argument("--catalogue", default="data/demo/catalogue/styles.csv")
    p.add_argument("--policy", default=str(DEFAULT_POLICY))
    p.add_argument("--precision", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cost-batches", type=int, default=10)
    p.add_argument("--out", default=str(RESULTS_DIR / "moderation"))
    args = p.parse_args(argv)

    started = time.perf_counter()
    encoder = Encoder(model=args.model)
    catalogue = Path(args.catalogue)
    rows = read_styles(catalogue)
    split = json.loads((Path(args.model) / "split.json").read_text())
    held_out = set(split["validation"])
    products = [r for r in rows if r["id"] in held_out]
    train_rows = [r for r in rows if r["id"] in set(split["train"])]
    prohibited = [r for r in rows if r["moderation"]]
    labelled = products + prohibited
    images_dir = catalogue.parent / "images"
    log.info("encoding %d images", len(labelled))
    vectors = encode_files(encoder, [images_dir / f"{r['id']}.jpg" for r in labelled])
    labels = [r["moderation"] for r in labelled]
    policy = ModerationPolicy.load(Path(args.policy))

    moderation = bench_moderation(encoder, policy, vectors, labels, args.precision, args.seed)
    tagging = bench_tagging(encoder, train_rows, products, vectors[: len(products)])

    calibrated, examples, _ = calibrate_on(encoder, policy, vectors, labels, args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        moderator = Moderator(calibrated, encoder, DecisionStore(Path(tmp) / "d.sqlite3"),
                              examples)
        tagger = Tagger(TaggingSettings(vocabulary={
            "category": tagging_vocab(train_rows, "articleType"),
            "colour": tagging_vocab(train_rows, "baseColour")}), encoder)
        images = []
        for r in products[: BATCH * args.cost_batches]:
            with Image.open(images_dir / f"{r['id']}.jpg") as im:
                images.append(im.convert("RGB"))
        cost = bench_cost(encoder, moderator, tagger, images, args.cost_batches)
        moderator.close()

    result = {"model": args.model, "catalogue": str(catalogue), "policy": args.policy,
              "embedding_dim": encoder.dim, "logit_scale": round(encoder.logit_scale, 3),
              "torch_threads": torch.get_num_threads(), "machine": machine_info(),
              "moderation": moderation, "tagging": tagging, "cost": cost,
              "seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(report(result))
    print(report(result))
    return 0


def tagging_vocab(rows: list[dict], column: str) -> list[str]:
    return sorted({r[column] for r in rows})


def _fmt(x) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def report(r: dict) -> str:
    m, t, c = r["moderation"], r["tagging"], r["cost"]
    lines = [
        "# Moderation and auto-tagging",
        "",
        f"Model `{r['model']}` ({r['embedding_dim']}-d, logit scale {r['logit_scale']}), "
        f"catalogue `{r['catalogue']}`, policy `{r['policy']}`; "
        f"{r['machine']['usable_cores']} cores ({r['machine']['cpu_model']}), "
        f"{r['machine']['date']}. Generated by `python -m bench.moderation`.",
        "",
        "## Moderation",
        "",
        f"Labelled images: {m['labelled']} prohibited, plus the model's held-out products as "
        f"negatives; split in two halves stratified by label. Thresholds were calibrated for "
        f"precision {m['target_precision']} on one half ({m['calibration_half']} images) and "
        f"the figures below are on the other half ({m['report_half']} images), which took no "
        "part in calibration. `any`: flagged at all vs prohibited at all (what hides an "
        "item from shoppers).",
        "",
    ]
    for name, title in (("prompts_and_examples", "Prompts and labelled examples (default "
                                                  "after `vitrine calibrate-moderation`)"),
                        ("prompts_only", "Prompts only (zero-shot)")):
        block = m[name]
        lines += [f"### {title}", "", markdown_table(
            ["category", "threshold", "labelled (held-out half)", "flagged", "precision",
             "recall"],
            [[c, _fmt(block["thresholds"].get(c)), v["positives"], v["flagged"],
              _fmt(v["precision"]), _fmt(v["recall"])]
             for c, v in block["held_out"].items()]), ""]
    lines += [
        "## Auto-tagging",
        "",
        f"{t['products']} held-out products, the field removed, classified zero-shot against "
        f"the training products' values ({t['classes']['category']} article types, "
        f"{t['classes']['colour']} colours). Applied = confidence at or above the field's "
        f"default threshold ({', '.join(f'{k} {v}' for k, v in t['thresholds'].items())}), "
        "so the value is written into the field.",
        "",
        markdown_table(["field", "accuracy", "applied", "accuracy when applied"],
                       [[k, _fmt(v["accuracy"]), _fmt(v["applied_fraction"]),
                         _fmt(v["applied_accuracy"])]
                        for k, v in t.items() if isinstance(v, dict) and "accuracy" in v]),
        "",
        "Applied fraction / accuracy when applied, by threshold (the setting is "
        "`VITRINE_TAGGING_THRESHOLDS`, per field):",
        "",
        markdown_table(["field", *(f">= {x}" for x in CURVE)],
                       [[k, *(f"{_fmt(a)} / {_fmt(b)}" for a, b in v["by_threshold"].values())]
                        for k, v in t.items() if isinstance(v, dict) and "by_threshold" in v]),
        "",
        "## Added ingest cost",
        "",
        f"Per image, median over batches of {c['batch']} ({c['images']} images): the "
        "enrichers run on the batch's embeddings (no second encode). Encode excludes JPEG "
        "decoding, which the ingest also pays, so the real share is smaller.",
        "",
        markdown_table(["encode (preprocess + forward)", "moderation", "tagging",
                        "added / encode"],
                       [[f"{c['encode_ms']:.3f} ms", f"{c['moderation_ms']:.3f} ms",
                         f"{c['tagging_ms']:.3f} ms",
                         f"{100 * c['added_fraction_of_encode']:.1f} %"]]),
        "",
        f"One-off per model: embedding every policy and tagging prompt, "
        f"{c['cold_start_s']:.2f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
