"""Calibration: per-category thresholds, and examples, from labelled images.

`vitrine calibrate-moderation` picks each category's threshold for a target
precision from labelled images (`calibrate`) and keeps those images' embeddings as
examples beside the policy, for the moderator to blend with its prompt scores.
The benchmark (bench.moderation) and the tests use the same pieces on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.moderation.moderator import Moderator
from catalogue.moderation.policy import (
    POLICY_FILENAME,
    Examples,
    ModerationPolicy,
    ModerationSettings,
    examples_path,
)
from embedding.encoder import Encoder

# A category nobody labelled gets a threshold at least this far above the highest score
# of a normal product, so it flags none of the known-good images.
NO_LABEL_MARGIN = 0.01


@dataclass
class CategoryCalibration:
    category: str
    threshold: float | None  # None: no labelled positives, the policy's value stays
    precision: float | None
    recall: float | None
    positives: int
    flagged: int
    met: bool  # the target precision is reached at this threshold

    def row(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


def precision_recall(scores: np.ndarray, positive: np.ndarray, threshold: float
                     ) -> tuple[float | None, float | None, int]:
    flagged = scores >= threshold
    n_flagged, n_pos = int(flagged.sum()), int(positive.sum())
    tp = int((flagged & positive).sum())
    return (tp / n_flagged if n_flagged else None, tp / n_pos if n_pos else None, n_flagged)


def calibrate_threshold(scores: np.ndarray, positive: np.ndarray, precision: float
                        ) -> tuple[float, bool]:
    """The lowest threshold whose precision reaches `precision` (so the highest recall).
    When none does: the best F1 among thresholds with at least half that precision, or,
    if none has, 1.0: the category flags nothing rather than flood the queue (the best
    precision alone is often the lowest threshold: flag everything). Returns
    (threshold, target met)."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    if not positive.any():
        raise ValueError("calibration needs at least one positive")
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], positive[order]
    tp, flagged = np.cumsum(pos), np.arange(1, len(s) + 1)
    # Only the last of equal scores is a threshold one can set: ties are flagged together.
    last = np.r_[s[1:] != s[:-1], True]
    prec = np.where(last, tp / flagged, -1.0)
    ok = np.flatnonzero(prec >= precision)
    met = bool(ok.size)
    if met:
        k = int(ok[-1])
    else:
        f1 = np.where(prec >= precision / 2, 2 * tp / (flagged + pos.sum()), -1.0)
        if f1.max() < 0:
            return 1.0, False
        k = int(np.flatnonzero(f1 == f1.max())[0])  # ties: the higher threshold
    # Halfway to the next lower score: the same items flagged, with a margin for new ones.
    return (float((s[k] + s[k + 1]) / 2) if k + 1 < len(s) else float(s[k])), met


def calibrate(scores: np.ndarray, labels: Sequence[str], categories: Sequence[str],
              precision: float = 0.9, current: Sequence[float] | np.ndarray | None = None
              ) -> dict[str, CategoryCalibration]:
    """Per category: positives are the items labelled with it, negatives everything else
    (normal products and the other categories). A category with no labelled items keeps
    its `current` threshold, raised if need be above every normal product's score."""
    label_array = np.asarray(labels)
    out = {}
    for j, name in enumerate(categories):
        positive = label_array == name
        if not positive.any():
            normal = scores[label_array == "", j]
            threshold = None
            if current is not None and normal.size and normal.max() >= current[j]:
                threshold = min(1.0, float(normal.max()) + NO_LABEL_MARGIN)
            out[name] = CategoryCalibration(name, threshold, None, None, 0, 0, False)
            continue
        threshold, met = calibrate_threshold(scores[:, j], positive, precision)
        p, r, n = precision_recall(scores[:, j], positive, threshold)
        out[name] = CategoryCalibration(name, threshold, p, r, int(positive.sum()), n, met)
    return out


def evaluate(verdict_categories: Sequence[str | None], labels: Sequence[str],
             categories: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision and recall of the verdicts per category and for "any" (flagged at all vs
    labelled prohibited at all)."""
    pred = np.array([v or "" for v in verdict_categories])
    label_array = np.asarray(labels)
    out = {}
    for name in [*categories, "any"]:
        if name == "any":
            p_mask, l_mask = pred != "", label_array != ""
        else:
            p_mask, l_mask = pred == name, label_array == name
        tp = int((p_mask & l_mask).sum())
        out[name] = {"positives": int(l_mask.sum()), "flagged": int(p_mask.sum()),
                     "precision": round(tp / p_mask.sum(), 4) if p_mask.any() else None,
                     "recall": round(tp / l_mask.sum(), 4) if l_mask.any() else None}
    return out


def format_calibration(results: dict[str, CategoryCalibration], target: float) -> str:
    lines = [f"target precision {target:.2f}",
             f"{'category':<16}{'threshold':>10}{'precision':>10}{'recall':>8}{'labelled':>9}"
             f"{'flagged':>8}"]
    for c in results.values():
        if c.positives == 0:
            raised = f"{c.threshold:>10.4f}" if c.threshold is not None else f"{'-':>10}"
            lines.append(f"{c.category:<16}{raised}{'-':>10}{'-':>8}{0:>9}{'-':>8}  no labelled "
                         f"items: {'raised above normal products' if c.threshold else 'kept'}")
            continue
        assert c.threshold is not None  # a category with labelled items always gets one
        note = "" if c.met else ("  target not reached: flags nothing" if c.threshold >= 1
                                 else "  target not reached: best F1 at half the precision")
        lines.append(f"{c.category:<16}{c.threshold:>10.4f}{c.precision or 0:>10.3f}"
                     f"{c.recall or 0:>8.3f}{c.positives:>9}{c.flagged:>8}{note}")
    return "\n".join(lines)


def labelled_catalogue(catalogue_csv: Path, max_negatives: int | None = None, seed: int = 0
                       ) -> tuple[list[Path], list[str]]:
    """Image paths and labels ("" for a normal product) from a styles.csv with a
    `moderation` column; normal products subsampled to `max_negatives`."""
    from catalogue.styles import read_styles

    rows = read_styles(catalogue_csv)
    if rows and "moderation" not in rows[0]:
        raise ValueError(f"{catalogue_csv} has no `moderation` column to calibrate on")
    images = Path(catalogue_csv).parent / "images"
    positives = [r for r in rows if r["moderation"]]
    negatives = [r for r in rows if not r["moderation"]]
    if max_negatives is not None and len(negatives) > max_negatives:
        keep = np.random.default_rng(seed).choice(len(negatives), max_negatives, replace=False)
        negatives = [negatives[i] for i in sorted(keep)]
    chosen = negatives + positives
    return [images / f"{r['id']}.jpg" for r in chosen], [r["moderation"] for r in chosen]


def encode_files(encoder: Encoder, paths: Sequence[Path], batch: int = 256) -> np.ndarray:
    from PIL import Image

    out = []
    for start in range(0, len(paths), batch):
        images = []
        for path in paths[start:start + batch]:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        out.append(encoder.encode_images(images))
    return np.concatenate(out) if out else np.zeros((0, encoder.dim), np.float32)


def calibrate_on(encoder: Encoder, policy: ModerationPolicy, vectors: np.ndarray,
                 labels: Sequence[str], precision: float = 0.9, use_examples: bool = True
                 ) -> tuple[ModerationPolicy, Examples | None, dict[str, CategoryCalibration]]:
    """Thresholds (and examples) from labelled image embeddings. Each image is scored
    without itself among the examples, as a new upload would be."""
    unknown = sorted({label for label in labels if label} - set(policy.categories))
    if unknown:
        raise ValueError(f"labels the policy has no category for: {unknown}")
    examples = Examples(encoder.model_id, vectors, labels) if use_examples else None
    moderator = Moderator(policy, encoder, examples=examples)
    scores = moderator.scores(vectors, leave_out=True)
    results = calibrate(scores, labels, moderator.categories, precision, moderator.thresholds)
    thresholds = {c.category: c.threshold for c in results.values() if c.threshold is not None}
    return policy.with_thresholds(thresholds, encoder.model_id), examples, results


def run_calibration(encoder: Encoder, policy: ModerationPolicy, catalogue_csv: Path,
                    precision: float = 0.9, max_negatives: int | None = 2000,
                    use_examples: bool = True
                    ) -> tuple[ModerationPolicy, Examples | None, dict[str, CategoryCalibration]]:
    """Score the labelled catalogue; the policy with calibrated thresholds, and examples."""
    paths, labels = labelled_catalogue(catalogue_csv, max_negatives)
    return calibrate_on(encoder, policy, encode_files(encoder, paths), labels, precision,
                        use_examples)


def calibrate_policy_file(catalogue_csv: Path, precision: float = 0.9,
                          policy_out: Path | None = None, max_negatives: int | None = 2000,
                          use_examples: bool = True, encoder: Encoder | None = None,
                          data_dir: Path | None = None) -> str:
    """`vitrine calibrate-moderation`: calibrate the policy in `policy_out` (default the
    policy file the services read, never the packaged one), starting from the policy in
    force, and write it back with its examples beside it; returns the report."""
    from catalogue.settings import CatalogueSettings
    from embedding.settings import EmbeddingSettings

    data_dir = Path(data_dir or CatalogueSettings().data_dir)
    settings = ModerationSettings()
    # By default where the services will read it: VITRINE_MODERATION_POLICY, else the
    # data folder's override (the packaged policy is never written to).
    target = Path(policy_out or settings.policy or data_dir / POLICY_FILENAME)
    source = target if target.exists() else settings.policy_path(data_dir)
    encoder = encoder or Encoder(EmbeddingSettings())
    policy, examples, results = run_calibration(
        encoder, ModerationPolicy.load(source), Path(catalogue_csv), precision, max_negatives,
        use_examples)
    policy.save(target)
    if examples is not None:
        examples.save(examples_path(target))
    elif examples_path(target).exists():
        examples_path(target).unlink()  # thresholds for prompts alone: old examples would skew
    return (f"model {encoder.model_id}, {len(results)} categories, labelled images from "
            f"{catalogue_csv}{'' if use_examples else ' (prompts only)'}\n"
            f"{format_calibration(results, precision)}\nthresholds written to {target}")
