"""Moderation: every ingested image is scored against a policy of prohibited categories.

The policy (a JSON file: categories with prompts and thresholds, plus prompts of a
normal product photo) is read from settings. Each category's prompts form one
prompt ensemble (embedding.zeroshot); an image's score for a category is its
share of a softmax over the model's logit scale times the cosine to each
category ensemble and to each safe prompt. At or above its category's threshold
an image is stored but flagged: hidden from shoppers (catalogue.search.store_filter)
and listed in the moderation queue until a manager decides.

Decisions are kept by image SHA-256 in their own small SQLite file, so they
outlive the product: an approved image is not flagged again and a rejected one is
not indexed again, under any product id.

`vitrine calibrate-moderation` picks each category's threshold for a target
precision from labelled images (`calibrate`) and keeps those images' embeddings as
examples beside the policy: a category's share of an image's nearest labelled
examples then joins its prompt score. Prompts alone need a model that knows the
words ("a pistol"); the examples also serve a model trained only on the catalogue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalogue.db import open_database
from catalogue.ingest import REFUSED
from catalogue.schemas import ModerationStatus
from catalogue.store.base import Filter, VectorStore
from embedding.encoder import Encoder, l2_normalise
from embedding.zeroshot import class_embeddings

log = logging.getLogger(__name__)

DEFAULT_POLICY = Path(__file__).with_name("moderation_policy.json")
POLICY_FILENAME = "moderation_policy.json"
REJECTED_REASON = "rejected by moderation"
# Calibration: a category nobody labelled gets a threshold at least this far above the
# highest score of a normal product, so it flags none of the known-good images.
NO_LABEL_MARGIN = 0.01
# A single prompt is its own ensemble: zeroshot's template that leaves the text as it is.
VERBATIM = ("{}",)


# ---------------------------------------------------------------- policy and settings


class CategoryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[str] = Field(min_length=1)
    threshold: float = Field(0.5, ge=0, le=1)
    """Flag at or above this score (the category's softmax share)."""


class ModerationPolicy(BaseModel):
    """Prohibited categories with their prompts and thresholds, and prompts of a fine photo."""

    model_config = ConfigDict(extra="forbid")

    safe: list[str] = Field(min_length=1)
    categories: dict[str, CategoryPolicy] = Field(min_length=1)
    examples_weight: float = Field(0.5, ge=0, le=1)
    """Weight of the labelled examples' score in a score, where the policy has examples."""
    examples_temperature: float = Field(0.01, gt=0)
    """Softmax temperature over the cosine of the nearest example of each class."""
    calibrated_for: str | None = None
    """The model the thresholds (and examples) were calibrated with."""

    @classmethod
    def load(cls, path: Path) -> ModerationPolicy:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.model_dump(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def with_thresholds(self, thresholds: dict[str, float], model: str | None = None
                        ) -> ModerationPolicy:
        categories = {name: c.model_copy(update={"threshold": thresholds[name]})
                      if name in thresholds else c for name, c in self.categories.items()}
        update: dict[str, Any] = {"categories": categories}
        if model is not None:
            update["calibrated_for"] = model
        return self.model_copy(update=update)


class ModerationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_MODERATION_", extra="ignore")

    enabled: bool = True
    policy: Path | None = None
    """Policy file. Default: <data_dir>/moderation_policy.json when it exists (what
    `vitrine calibrate-moderation` writes), else the policy shipped in the package."""
    thresholds: dict[str, float] = {}
    """Per-category overrides of the policy's thresholds, as JSON."""
    max_matched_prompts: int = Field(3, ge=1)

    def policy_path(self, data_dir: Path) -> Path:
        if self.policy is not None:
            return self.policy
        override = Path(data_dir) / POLICY_FILENAME
        return override if override.exists() else DEFAULT_POLICY

    def load_policy(self, data_dir: Path) -> ModerationPolicy:
        policy = ModerationPolicy.load(self.policy_path(data_dir))
        unknown = set(self.thresholds) - set(policy.categories)
        if unknown:
            raise ValueError(f"thresholds given for categories the policy lacks: {sorted(unknown)}")
        return policy.with_thresholds(self.thresholds)


def examples_path(policy_path: Path) -> Path:
    """Where a policy's labelled examples live: beside it, e.g. moderation_policy.examples.npz."""
    policy_path = Path(policy_path)
    return policy_path.with_name(policy_path.stem + ".examples.npz")


class Examples:
    """Embeddings of labelled images ("" for a normal product), for one model."""

    def __init__(self, model_id: str, vectors: np.ndarray, labels: Sequence[str]):
        self.model_id = model_id
        self.vectors = np.asarray(vectors, np.float32)
        self.labels = np.asarray(labels, dtype=str)
        if len(self.vectors) != len(self.labels):
            raise ValueError("one label per example vector")

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, vectors=self.vectors.astype(np.float16), labels=self.labels,
                            model=np.array(self.model_id))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Examples:
        with np.load(path, allow_pickle=False) as data:
            return cls(str(data["model"]), l2_normalise(data["vectors"].astype(np.float32)),
                       data["labels"])

    def scores(self, vectors: np.ndarray, categories: Sequence[str], temperature: float,
               leave_out: bool = False) -> np.ndarray:
        """(images, categories): a softmax over the classes (normal products and each
        category) of the cosine to each class's nearest example. Nearest, not a vote of
        the k nearest: a category has a few examples and normal products have thousands.
        `leave_out`: the images are the examples themselves, in order; none sees itself."""
        sims = np.asarray(vectors, np.float32) @ self.vectors.T
        if leave_out:
            np.fill_diagonal(sims, -np.inf)
        classes = ["", *categories]
        nearest = np.full((len(sims), len(classes)), -np.inf, np.float32)
        for j, name in enumerate(classes):
            members = self.labels == name
            if members.any():
                nearest[:, j] = sims[:, members].max(1)
        logits = nearest / temperature
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        return probs[:, 1:]


# ---------------------------------------------------------------- decisions


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


DECISIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    image_sha256 TEXT NOT NULL, product_id TEXT NOT NULL, decision TEXT NOT NULL,
    category TEXT, score DOUBLE PRECISION, decided_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (image_sha256, product_id)
);
CREATE INDEX IF NOT EXISTS decisions_image ON decisions(image_sha256, decided_at);
"""


class DecisionStore:
    """Managers' decisions by image SHA-256 and product id: in a SQLite file of their own
    (local profile), or in the cluster's PostgreSQL, shared by every replica and worker."""

    def __init__(self, location: str | Path):
        """`location`: a SQLite file path, `sqlite:///path` or `postgresql://...`."""
        self._db = open_database(location, DECISIONS_SCHEMA, "moderation decisions store")

    def record(self, image_sha256: str, product_id: str, decision: Decision,
               category: str | None = None, score: float | None = None) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (image_sha256, product_id) DO UPDATE SET "
                "decision = excluded.decision, category = excluded.category, "
                "score = excluded.score, decided_at = excluded.decided_at",
                (image_sha256, product_id, Decision(decision).value, category, score,
                 time.time()))

    def lookup(self, digests: Sequence[str]) -> dict[str, Decision]:
        """The latest decision on each image that has one, whichever product it came with."""
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        with self._db.transaction() as db:
            rows = db.execute(
                f"SELECT image_sha256, decision FROM decisions WHERE image_sha256 IN ({marks}) "
                "ORDER BY decided_at", list(digests)).fetchall()
        return {digest: Decision(decision) for digest, decision in rows}  # latest wins

    def close(self) -> None:
        self._db.close()


# ---------------------------------------------------------------- scoring


@dataclass
class Verdict:
    category: str
    score: float
    prompts: list[str]  # the category's prompts nearest the image
    evidence: dict[str, float]  # the score's parts: prompts, and examples where used

    def payload(self, decision: Decision | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category, "score": round(self.score, 4),
                               "prompts": self.prompts, "evidence": self.evidence}
        if decision is not None:
            out["decision"] = decision.value
        return out


class _Classes:
    """The policy's prompt embeddings for one model: computed once, reused per batch."""

    def __init__(self, policy: ModerationPolicy, encoder: Encoder):
        self.names = list(policy.categories)
        self.prompts = [policy.categories[c].prompts for c in self.names]
        self.per_prompt = [class_embeddings(encoder, p, VERBATIM) for p in self.prompts]
        ensembles = np.stack([l2_normalise(e.mean(0)) for e in self.per_prompt])
        self.safe = class_embeddings(encoder, policy.safe, VERBATIM)
        # Each safe prompt competes on its own: a dress and a boot photo share little.
        self.matrix = np.concatenate([self.safe, ensembles]).astype(np.float32)
        self.n_safe = len(self.safe)
        self.model_id = encoder.model_id


class Moderator:
    """Scores images against the policy; as an ingest enricher, flags, approves or refuses."""

    def __init__(self, policy: ModerationPolicy, encoder: Encoder,
                 decisions: DecisionStore | None = None, examples: Examples | None = None,
                 max_matched_prompts: int = 3):
        self.policy, self.encoder, self.decisions = policy, encoder, decisions
        self.examples = examples
        self.max_matched_prompts = max_matched_prompts
        self.thresholds = np.array([policy.categories[c].threshold for c in policy.categories],
                                   np.float32)
        self._classes: _Classes | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(cls, settings: ModerationSettings, data_dir: Path, encoder: Encoder,
              decisions: str | Path | None = None) -> Moderator:
        """`decisions`: where managers' decisions are kept (default: a file in data_dir)."""
        path = settings.policy_path(data_dir)
        policy = settings.load_policy(data_dir)
        if policy.calibrated_for and policy.calibrated_for != encoder.model_id:
            log.warning("moderation thresholds in %s were calibrated for %s, not %s: run "
                        "`vitrine calibrate-moderation`", path, policy.calibrated_for,
                        encoder.model_id)
        examples = None
        if examples_path(path).exists():
            examples = Examples.load(examples_path(path))
            if examples.model_id != encoder.model_id:
                log.warning("moderation examples in %s are for %s, not %s: prompts only",
                            examples_path(path), examples.model_id, encoder.model_id)
                examples = None
        return cls(policy, encoder, DecisionStore(decisions or decisions_path(data_dir)), examples,
                   settings.max_matched_prompts)

    @property
    def categories(self) -> list[str]:
        return list(self.policy.categories)

    def classes(self) -> _Classes:
        with self._lock:
            if self._classes is None or self._classes.model_id != self.encoder.model_id:
                self._classes = _Classes(self.policy, self.encoder)
            return self._classes

    def prompt_scores(self, vectors: np.ndarray) -> np.ndarray:
        """(images, categories): each category's share of the softmax over all prompt classes."""
        c = self.classes()
        logits = self.encoder.logit_scale * np.asarray(vectors, np.float32) @ c.matrix.T
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        return probs[:, c.n_safe:]

    def score_parts(self, vectors: np.ndarray, leave_out: bool = False
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The prompt scores, and the labelled examples' scores where there are examples."""
        examples = (self.examples.scores(vectors, self.categories,
                                        self.policy.examples_temperature, leave_out)
                    if self.examples is not None else None)
        return self.prompt_scores(vectors), examples

    def scores(self, vectors: np.ndarray, leave_out: bool = False) -> np.ndarray:
        """(images, categories) in [0, 1]: the prompt score, blended with the labelled
        examples' score where the policy has examples."""
        return self.blend(*self.score_parts(vectors, leave_out))

    def blend(self, prompts: np.ndarray, examples: np.ndarray | None) -> np.ndarray:
        if examples is None:
            return prompts
        w = self.policy.examples_weight
        return (1 - w) * prompts + w * examples

    def verdicts(self, vectors: np.ndarray) -> list[Verdict | None]:
        """The flagged category of each image (highest score among those over threshold)."""
        vectors = np.asarray(vectors, np.float32)
        prompts, examples = self.score_parts(vectors)
        scores = self.blend(prompts, examples)
        over = scores >= self.thresholds
        c = self.classes()
        out: list[Verdict | None] = []
        for row, vector in enumerate(vectors):
            if not over[row].any():
                out.append(None)
                continue
            j = int(np.argmax(np.where(over[row], scores[row], -1.0)))
            evidence = {"prompts": round(float(prompts[row, j]), 4)}
            if examples is not None:
                evidence["examples"] = round(float(examples[row, j]), 4)
            out.append(Verdict(c.names[j], float(scores[row, j]), self.matched(vector, j),
                               evidence))
        return out

    def matched(self, vector: np.ndarray, j: int) -> list[str]:
        """The category's prompts nearer the image than any safe prompt, nearest first
        (at least the nearest one)."""
        c = self.classes()
        sims = c.per_prompt[j] @ vector
        order = np.argsort(-sims)
        safe_best = float((c.safe @ vector).max())
        chosen = [c.prompts[j][i] for i in order if sims[i] > safe_best]
        return (chosen or [c.prompts[j][int(order[0])]])[: self.max_matched_prompts]

    def __call__(self, payloads: Sequence[dict[str, Any]], vectors: np.ndarray) -> None:
        """Ingest enricher: judge each freshly encoded image, then apply kept decisions."""
        decided = (self.decisions.lookup([p["image_sha256"] for p in payloads])
                   if self.decisions else {})
        for payload, verdict in zip(payloads, self.verdicts(vectors), strict=True):
            decision = decided.get(payload["image_sha256"])
            if decision is Decision.reject:
                payload["moderation_status"] = ModerationStatus.rejected.value
                payload["moderation"] = {**(verdict.payload() if verdict else {}),
                                         "decision": decision.value}
                payload[REFUSED] = REJECTED_REASON
            elif decision is Decision.approve:
                payload["moderation_status"] = ModerationStatus.approved.value
                payload["moderation"] = {**(verdict.payload() if verdict else {}),
                                         "decision": decision.value}
            elif verdict is not None:
                payload["moderation_status"] = ModerationStatus.flagged.value
                payload["moderation"] = verdict.payload()

    def close(self) -> None:
        if self.decisions is not None:
            self.decisions.close()


def decisions_path(data_dir: Path) -> Path:
    return Path(data_dir) / "moderation.sqlite3"


# ---------------------------------------------------------------- the queue and decisions


class ModerationItem(BaseModel):
    product_id: str
    title: str
    category: str | None
    score: float | None
    prompts: list[str] = Field(description="The category's prompts nearest the image")
    evidence: dict[str, float] = Field(default_factory=dict, description=(
        "The score's parts: the prompts' share, and the labelled examples' score"))
    image_sha256: str
    moderation_status: ModerationStatus


class ModerationQueue(BaseModel):
    items: list[ModerationItem]
    next_offset: str | None = Field(None, description="Pass as offset for the next page")


def queue_item(payload: dict[str, Any]) -> ModerationItem:
    judged = payload.get("moderation") or {}
    return ModerationItem(product_id=payload["product_id"], title=payload.get("title", ""),
                          category=judged.get("category"), score=judged.get("score"),
                          prompts=judged.get("prompts", []),
                          evidence=judged.get("evidence", {}),
                          image_sha256=payload["image_sha256"],
                          moderation_status=payload["moderation_status"])


def read_queue(store: VectorStore, category: str | None = None, limit: int = 50,
               offset: str | None = None) -> ModerationQueue:
    """Flagged products, in point-id order so pages are stable while decisions land."""
    f = Filter(match={"moderation_status": ModerationStatus.flagged.value})
    if category:
        f.match["moderation.category"] = category
    points, next_offset = store.scroll(f, limit=limit, offset=offset)
    return ModerationQueue(items=[queue_item(p.payload) for p in points],
                           next_offset=next_offset)


def decide(store: VectorStore, decisions: DecisionStore, point: Any, decision: Decision
           ) -> ModerationStatus:
    """Record a manager's decision and apply it: approve -> searchable, reject -> removed."""
    payload = point.payload
    judged = payload.get("moderation") or {}
    decisions.record(payload["image_sha256"], payload["product_id"], decision,
                     judged.get("category"), judged.get("score"))
    if decision is Decision.reject:
        store.delete([point.id])
        return ModerationStatus.rejected
    store.set_payload([point.id], {"moderation_status": ModerationStatus.approved.value,
                                   "moderation": {**judged, "decision": decision.value}})
    return ModerationStatus.approved


# ---------------------------------------------------------------- calibration


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
              precision: float = 0.9, current: Sequence[float] | None = None
              ) -> dict[str, CategoryCalibration]:
    """Per category: positives are the items labelled with it, negatives everything else
    (normal products and the other categories). A category with no labelled items keeps
    its `current` threshold, raised if need be above every normal product's score."""
    labels = np.asarray(labels)
    out = {}
    for j, name in enumerate(categories):
        positive = labels == name
        if not positive.any():
            normal = scores[labels == "", j]
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
    labels = np.asarray(labels)
    out = {}
    for name in [*categories, "any"]:
        if name == "any":
            p_mask, l_mask = pred != "", labels != ""
        else:
            p_mask, l_mask = pred == name, labels == name
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
