"""Scoring images against the policy, and the ingest enricher that acts on the scores.

Each category's prompts form one prompt ensemble (embedding.zeroshot); an image's
score for a category is its share of a softmax over the model's logit scale times
the cosine to each category ensemble and to each safe prompt. Where the policy has
labelled examples, a category's share of an image's nearest examples joins that
prompt score: prompts alone need a model that knows the words ("a pistol"), the
examples also serve a model trained only on the catalogue. At or above its
category's threshold an image is stored but flagged; a manager's kept decision on
the same image overrides the verdict.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalogue import metrics
from catalogue.ingest import REFUSED
from catalogue.moderation.decisions import Decision, DecisionStore, decisions_path
from catalogue.moderation.policy import (
    Examples,
    ModerationPolicy,
    ModerationSettings,
    examples_path,
)
from catalogue.schemas import ModerationStatus
from embedding.encoder import Encoder, l2_normalise
from embedding.zeroshot import class_embeddings

log = logging.getLogger(__name__)

REJECTED_REASON = "rejected by moderation"
# A single prompt is its own ensemble: zeroshot's template that leaves the text as it is.
VERBATIM = ("{}",)


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
            if verdict is not None:
                metrics.count_flag(verdict.category)
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

