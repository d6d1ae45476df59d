"""What a training run is told and what it reports: TrainConfig, Recipe, TrainResult,
and the two recipes the project ships (the demo model and its German fine-tune).

Kept apart from the loop so that a recipe and the reasons for its numbers can be read,
and a config built (the CLI, tests, benchmarks), without wading through the training
code. (Importing it still loads torch: Architecture lives beside the model builder.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from embedding.architecture import Architecture

Freeze = Literal["none", "vision", "text", "towers"]


class TrainConfig(BaseModel):
    """How to train; saved verbatim in training.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loss: Literal["infonce", "sigmoid"] = "infonce"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup: float = Field(0.05, ge=0, lt=1)
    """Fraction of the run spent warming the learning rate up; cosine decay follows."""
    freeze: Freeze = "none"
    """"vision"/"text": freeze that tower and its projection; "towers": train only the
    projections (SigLIP: the pooling heads) and the logit parameters."""
    languages: tuple[str, ...] = ("en",)
    val_fraction: float = Field(0.2, ge=0, lt=1)
    seed: int = 0
    bf16: bool = False
    """bfloat16 autocast. Off by default: on small CPU models it rarely pays (on a GPU
    training is always in bfloat16 mixed precision)."""
    device: str = "cpu"
    """torch device to train on: `cuda` moves the model and each batch there (pinned
    memory, copies overlapping compute) and trains in bfloat16 mixed precision; images
    are decoded and augmented on the CPU. The CLI takes VITRINE_DEVICE."""
    max_minutes: float | None = Field(None, gt=0)
    """Time budget for the whole call. The schedule anneals by elapsed time as well as
    by step, so a slow machine ends with a fully decayed learning rate, not a cut-off."""
    augment: bool = True
    threads: int | None = Field(None, ge=1)
    """Torch threads; None keeps torch's default (one per core). Small models on few
    cores can train faster on one: see DEMO_RECIPE."""
    progress: bool = True


@dataclass(frozen=True)
class Recipe:
    """An architecture and a training config that belong together."""

    arch: Architecture
    config: TrainConfig


@dataclass
class TrainResult:
    out_dir: Path
    epochs: int
    steps: int
    train_losses: list[float]
    val_losses: list[list]  # [epoch, loss] pairs
    seconds: float
    train_seconds: float
    cpu_seconds: float  # process CPU time over all threads: wall time if nothing else ran
    peak_rss_mb: float
    stopped_by_budget: bool
    n_train: int
    n_val: int
    logit: dict = field(default_factory=dict)


# ---------------------------------------------------------------- the recipes

DEMO_RECIPE = Recipe(
    arch=Architecture(image_size=32, patch_size=8, vision_width=128, vision_layers=4,
                      vision_heads=4, text_width=128, text_layers=2, text_heads=4,
                      embed_dim=128, context_length=32, vocab_size=2000),
    config=TrainConfig(loss="infonce", epochs=120, batch_size=64, lr=7e-4, weight_decay=0.1,
                       warmup=0.05, languages=("en",), val_fraction=0.2, seed=0,
                       threads=1, max_minutes=9.5),
)
"""A small CLIP trained from scratch on the 3000-product demo catalogue in under
10 minutes on 2 CPU cores (bench/results/training.md has its figures).

Why these numbers, from runs on the demo catalogue:
* 32 px images in 8 px patches (16 tokens) cost 1.6 ms a pair for a training step;
  48 px (36 tokens) cost 3 ms and learnt no better in the same time. Silhouettes,
  colours and patterns all survive 32 px; what suffers is jeans vs trousers.
* A ViT from scratch needs epochs more than pixels: 30 epochs reached 0.7 zero-shot
  article accuracy, 100+ epochs 0.9. The text is templated, so two text layers do.
* lr: at 30 epochs 5e-4 beat 1e-3 and 2.5e-4; at 120 epochs 7e-4 edged out 5e-4
  (batch 64; 32 and 64 did about the same).
* One thread: on the 2-core development VM, two torch threads were never faster
  and up to 5x slower (slow thread wake-ups, and other work sharing the cores).
* max_minutes anneals the schedule by elapsed time, so a busier machine gets a
  shorter but complete run instead of overrunning the 10 minutes.
"""

GERMAN_FINETUNE = TrainConfig(loss="infonce", epochs=10, batch_size=64, lr=5e-4,
                              weight_decay=0.1, warmup=0.1, freeze="vision",
                              languages=("en", "de"), val_fraction=0.2, seed=0, threads=1,
                              max_minutes=5)
"""Teach a trained English model German: the image tower stays fixed (the images
are the same), the text tower learns German captions and descriptions while
still seeing English ones, so English does not fade."""
