"""A candidate model against the live one, on the same held-out products: the difference
per metric with a paired bootstrap confidence interval, so a model is promoted only
when it measurably helps.

Each metric is a mean over queries (or images) that both models answer: a product's
display name finding it (MRR, Recall@10), attribute queries ("a red dress",
precision@10 capped as `training.evaluate` has it), zero-shot article accuracy.
The bootstrap resamples those queries with replacement, the same sample for both
models, and takes the 2.5th and 97.5th percentiles of the difference of means; the
candidate is "better" on a metric when the whole interval is above zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catalogue.captions import article_name, attribute_query
from embedding import metrics
from embedding.encoder import Encoder
from embedding.zeroshot import DEFAULT_TEMPLATES, classify
from training.data import TrainingSet, held_out
from training.evaluate import catalogue, load_images

METRICS = ("name_mrr", "name_recall@10", "attribute_precision@10", "zeroshot_accuracy")
BOOTSTRAP = 2000


def per_query(encoder: Encoder, data: TrainingSet, rows: list[dict]) -> dict[str, np.ndarray]:
    """Each metric's value per query (or image) for one model."""
    images = encoder.encode_images(load_images(data, rows, encoder))
    names = encoder.encode_texts([r["productDisplayName"] for r in rows])
    ranked = metrics.ranked_relevance(names @ images.T, np.eye(len(rows), dtype=bool))
    first = ranked.argmax(axis=1)
    colours = np.array([r["baseColour"] for r in rows])
    articles = np.array([r["articleType"] for r in rows])
    pairs = sorted(set(zip(colours, articles, strict=True)))
    relevant = np.stack([(colours == c) & (articles == a) for c, a in pairs])
    queries = encoder.encode_texts([attribute_query(c, a, "en") for c, a in pairs])
    top = metrics.ranked_relevance(queries @ images.T, relevant, 10)
    capped = top.sum(1) / np.minimum(10, relevant.sum(1))
    candidates = sorted(set(articles))
    probs = classify(encoder, images, [article_name(t) for t in candidates], DEFAULT_TEMPLATES)
    return {"name_mrr": 1.0 / (first + 1), "name_recall@10": (first < 10).astype(float),
            "attribute_precision@10": capped,
            "zeroshot_accuracy": (np.asarray(candidates)[probs.argmax(1)] == articles
                                  ).astype(float)}


def compare(candidate: str, live: str, source: TrainingSet | Path,
            split_path: Path | None = None, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per metric: live, candidate, difference and its 95% interval, on the candidate's
    held-out products of `source` (a styles.csv or a TrainingSet such as the live
    catalogue's; the split is `split_path`, default the candidate folder's split.json;
    all products without one)."""
    data = catalogue(source)
    rows, _ = held_out(data, split_path or Path(candidate) / "split.json")
    if len(rows) < 2:
        raise ValueError(f"only {len(rows)} products of {data.source} to compare on")
    a = per_query(Encoder(model=live), data, rows)
    b = per_query(Encoder(model=candidate), data, rows)
    rng = np.random.default_rng(seed)
    out = {}
    for name in METRICS:
        diff = b[name] - a[name]
        samples = rng.integers(0, len(diff), size=(BOOTSTRAP, len(diff)))
        means = diff[samples].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        out[name] = {"live": float(a[name].mean()), "candidate": float(b[name].mean()),
                     "difference": float(diff.mean()), "low": float(low), "high": float(high),
                     "queries": int(len(diff))}
    return out


def better(report: dict[str, dict[str, float]], metric: str) -> bool:
    """The candidate measurably helps on `metric`: its whole interval is above zero."""
    return report[metric]["low"] > 0


def format_report(report: dict[str, dict[str, float]]) -> str:
    lines = ["| metric | live | candidate | difference (95% interval) | queries |",
             "|---|---|---|---|---|"]
    for name, m in report.items():
        lines.append(f"| {name} | {m['live']:.3f} | {m['candidate']:.3f} | "
                     f"{m['difference']:+.3f} ({m['low']:+.3f} to {m['high']:+.3f}) | "
                     f"{m['queries']} |")
    return "\n".join(lines)
