"""Retrieval and zero-shot evaluation of a model on the held-out products of a catalogue.

The protocols follow the fashion-CLIP model cards:

* text-to-image: a product's own text (its display name, its description) must
  retrieve the product among the held-out images: Recall@k, NDCG@k and MRR with
  exactly one relevant image per query;
* attribute precision@10: for every (colour, article type) present in the held-out
  set, the shopper query "a red dress" (German "ein rotes Kleid"); the fraction of
  the top 10 matching both. The held-out set has only a few products per pair, so
  the headline figure divides by min(10, matching products) ("capped"): 1.0 means
  every matching product is in the top 10, or the top 10 are all matches; the plain
  fraction of 10 is reported beside it;
* image-to-image: the fraction of an image's 10 nearest other images with its
  article type;
* zero-shot article-type accuracy with prompt ensembles (embedding.zeroshot);
* patterns (training.patterns): pattern+article and pattern-only precision@10, and the
  mixed query "this product, but {pattern}", where the catalogue has patterns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from catalogue.captions import article_name, attribute_query
from embedding import metrics
from embedding.encoder import Encoder
from embedding.zeroshot import DEFAULT_TEMPLATES, classify
from training.data import TrainingSet, held_out
from training.patterns import format_rows, has_patterns, pattern_metrics

KS = (1, 5, 10, 50)
QUERY_FIELDS = {"en": ("productDisplayName", "description"), "de": ("description_de",)}


def load_images(data: TrainingSet, rows: list[dict], encoder: Encoder) -> list[Image.Image]:
    """The rows' photos as `data` opens them for training (a styles.csv's images/, the
    live catalogue's stored originals), in RGB."""
    prep = encoder.load().preprocess
    images = []
    for row in rows:
        with data.open_image(row, prep) as image:
            images.append(image.convert("RGB"))
    return images


def catalogue(source: TrainingSet | Path) -> TrainingSet:
    """A TrainingSet as given, or a styles.csv's."""
    return source if isinstance(source, TrainingSet) else TrainingSet.from_csv(Path(source))


def product_retrieval(text_emb: np.ndarray, image_emb: np.ndarray) -> dict[str, float]:
    """Query i must retrieve image i: Recall@k, NDCG@k for KS, and MRR."""
    relevance = metrics.ranked_relevance(text_emb @ image_emb.T, np.eye(len(text_emb), dtype=bool))
    out = {f"recall@{k}": metrics.recall_at_k(relevance, k) for k in KS}
    out |= {f"ndcg@{k}": metrics.ndcg_at_k(relevance, k) for k in KS}
    out["mrr"] = metrics.mrr(relevance)
    return out


def attribute_precision(encoder: Encoder, rows: list[dict], image_emb: np.ndarray,
                        language: str, k: int = 10) -> dict[str, float | str]:
    """Precision@k of "a {colour} {article}" queries over the images of `rows`."""
    colours = np.array([r["baseColour"] for r in rows])
    articles = np.array([r["articleType"] for r in rows])
    pairs = sorted({(c, a) for c, a in zip(colours, articles, strict=True)})
    queries = [attribute_query(c, a, language) for c, a in pairs]
    relevant = np.stack([(colours == c) & (articles == a) for c, a in pairs])
    relevance = metrics.ranked_relevance(encoder.encode_texts(queries) @ image_emb.T, relevant)
    n_relevant = relevant.sum(1)
    return {
        f"precision@{k}": metrics.precision_at_k(relevance, k, n_relevant, capped=True),
        f"raw_precision@{k}": metrics.precision_at_k(relevance, k),
        "queries": len(pairs),
        "example": queries[0] if queries else "",
    }


def image_to_image_precision(image_emb: np.ndarray, labels: Sequence[str], k: int = 10) -> float:
    """Fraction of each image's k nearest other images that share its label."""
    label_array = np.asarray(labels)
    scores = image_emb @ image_emb.T
    np.fill_diagonal(scores, -np.inf)  # an image is not its own neighbour
    relevant = label_array[:, None] == label_array[None, :]
    np.fill_diagonal(relevant, False)
    return metrics.precision_at_k(metrics.ranked_relevance(scores, relevant, k), k)


def zeroshot_accuracy(encoder: Encoder, image_emb: np.ndarray, article_types: Sequence[str],
                      candidates: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
                      ) -> float:
    """Accuracy of zero-shot article-type classification among `candidates`."""
    labels = [article_name(t) for t in candidates]
    probs = classify(encoder, image_emb, labels, templates)
    predicted = np.asarray(candidates)[probs.argmax(1)]
    return float(np.mean(predicted == np.asarray(article_types)))


def evaluate(model_dir: str | Path, source: TrainingSet | Path, split_path: Path | None = None,
             languages: Sequence[str] = ("en",), batch_size: int = 128,
             alphas: Sequence[float] = ()) -> dict:
    """Every metric of the module docstring on the held-out split, as a nested dict.

    `source` is a styles.csv or a TrainingSet (the live catalogue's: training.live).
    `split_path` defaults to model_dir/split.json (written by training); without
    one, every product of the catalogue is used (right for a model that never saw
    the catalogue, such as a hub checkpoint). `alphas`: the mixed pattern query at these
    image weights too (training.patterns.pattern_metrics).
    """
    started = time.perf_counter()
    data = catalogue(source)
    rows, split = held_out(data, split_path or Path(model_dir) / "split.json")
    if len(rows) < 2:
        raise ValueError(f"only {len(rows)} products of {data.source} to evaluate on")

    encoder = Encoder(model=str(model_dir), batch_size=batch_size)
    image_emb = encoder.encode_images(load_images(data, rows, encoder))
    article_types = [r["articleType"] for r in rows]

    results: dict = {"model": str(model_dir), "catalogue": data.source, "split": split,
                     "products": len(rows), "text_to_image": {}, "attribute": {}}
    for language in languages:
        for field in QUERY_FIELDS[language]:
            texts = [r.get(field, "") or r["productDisplayName"] for r in rows]
            results["text_to_image"][field] = product_retrieval(encoder.encode_texts(texts),
                                                                image_emb)
        results["attribute"][language] = attribute_precision(encoder, rows, image_emb, language)
        if has_patterns(rows):
            results.setdefault("pattern", {})[language] = pattern_metrics(
                encoder, rows, image_emb, language, alphas=alphas)
    results["image_to_image_precision@10"] = image_to_image_precision(image_emb, article_types)
    candidates = sorted(set(article_types))
    results["zeroshot_article_accuracy"] = zeroshot_accuracy(encoder, image_emb, article_types,
                                                             candidates)
    results["zeroshot_classes"] = len(candidates)
    results["seconds"] = time.perf_counter() - started
    return results


def format_table(results: dict) -> str:
    """A Markdown summary of `evaluate`'s results, for the console and reports."""
    lines = [f"Model {results['model']} on {results['products']} {results['split']} products",
             "", "| text -> image | " + " | ".join(
                 [f"R@{k}" for k in KS] + [f"NDCG@{k}" for k in KS] + ["MRR"]) + " |",
             "|---" * (2 * len(KS) + 2) + "|"]
    for field, m in results["text_to_image"].items():
        cells = [m[f"recall@{k}"] for k in KS] + [m[f"ndcg@{k}"] for k in KS] + [m["mrr"]]
        lines.append(f"| {field} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    lines += ["", "| metric | value |", "|---|---|"]
    for language, m in results["attribute"].items():
        lines.append(f"| attribute precision@10 ({language}, \"{m['example']}\", "
                     f"{m['queries']} queries) | {m['precision@10']:.3f} "
                     f"(plain fraction of 10: {m['raw_precision@10']:.3f}) |")
    lines += format_rows(results.get("pattern", {}))
    lines.append(f"| image -> image same-article precision@10 | "
                 f"{results['image_to_image_precision@10']:.3f} |")
    lines.append(f"| zero-shot article-type accuracy ({results['zeroshot_classes']} classes) | "
                 f"{results['zeroshot_article_accuracy']:.3f} |")
    return "\n".join(lines)
