"""What moderation looks for: the policy file, its settings, and its labelled examples.

Kept apart from scoring so that reading, overriding and saving a policy (the CLI,
the services' wiring, calibration) needs no moderator. The policy shipped in the
package lives beside this module; `vitrine calibrate-moderation` writes its own
copy into the data folder, which then takes precedence, so the packaged one is
never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embedding.encoder import l2_normalise

DEFAULT_POLICY = Path(__file__).with_name("moderation_policy.json")
POLICY_FILENAME = "moderation_policy.json"


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
