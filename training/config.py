"""What a training run is told and what it reports: TrainConfig, Recipe, TrainResult,
the two recipes the project ships (the demo model and its German fine-tune), and the
rule that picks a recipe for any catalogue (`auto_config`).

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
    hard_negatives: int = Field(0, ge=0)
    """Runs of this many products of one article type and colour (differing in pattern
    where they can) make up each batch (training.data.kindred_order), so in-batch
    negatives differ only in pattern; 0 or 1: batches drawn at random."""
    attribute_loss: float = Field(0.0, ge=0)
    """Weight of an auxiliary loss that tells each training image's visible attributes
    (article type, colour, pattern) from its embedding (training.attributes); 0: off.
    The heads are not saved with the model."""
    threads: int | None = Field(None, ge=1)
    """Torch threads; None keeps torch's default (one per core). On a busy machine one
    thread can train a small model faster: see DEMO_RECIPE."""
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
    arch=Architecture(image_size=48, patch_size=8, vision_width=128, vision_layers=4,
                      vision_heads=4, text_width=128, text_layers=2, text_heads=4,
                      embed_dim=128, context_length=32, vocab_size=2000),
    config=TrainConfig(loss="infonce", epochs=120, batch_size=64, lr=7e-4, weight_decay=0.1,
                       warmup=0.05, languages=("en",), val_fraction=0.2, seed=0,
                       threads=None, max_minutes=9.5, hard_negatives=2, attribute_loss=3.0),
)
"""A small CLIP trained from scratch on the 3000-product demo catalogue in under
10 minutes on 2 CPU cores (bench/results/training.md has its figures).

Why these numbers, from runs on the demo catalogue (BENCHMARKS.md, "Patterns"):
* five photos a product: the demo catalogue draws each product four more times in other
  poses, backdrops and light (demo.generator.MORE_PHOTOS), and each time a product is
  batched one of its photos is drawn (training.data.PhotoCache). Over three seeds, one
  photo against three (on a machine fitting 77-91 epochs in the budget): pattern+article
  precision 0.841 -> 0.877, zero-shot accuracy 0.883 -> 0.897, colour+article 0.977 ->
  0.985, where stronger crops and turns of one photo did nothing; three against five (on
  one fitting all 120): pattern+article 0.936 -> 0.948 and zero-shot 0.934 -> 0.949, up
  on every seed (BENCHMARKS.md, "Seventh pass").
* 48 px images in 8 px patches (36 tokens). Patterns need small patches: a pattern
  classifier on this vision tower, trained alone for 3.5 minutes, told 0.90 of held-out
  patterns with 8 px patches at 64 px and at most 0.85 with 16 px ones, which had stopped
  improving. At 48 px every motif shows (checked by eye on downscaled renders, since
  the demo catalogue draws motifs at least about 3 px a period there and sandals with a
  broad band instead of thin straps: pattern+article 0.811 -> 0.862 in a paired run,
  0.846-0.901 over three quiet runs, BENCHMARKS.md "Fifth pass"), and a step
  costs 146 ms against 215 at 64 px, so the budget holds about 90 epochs instead of 60.
  With everything else below the same, 48/8 beat 64/8 on every figure but pattern-only
  precision, where both reached 0.975 (pattern+article 0.805 against 0.761, zero-shot
  0.895 against 0.837), and beat 64/16's pattern+article 0.68 (a run beside another, so
  with one core). At 32 px dots and flowers on a sock blur into a texture.
* attribute_loss=3.0: a linear head a visible attribute (article type, colour, pattern)
  on the image embedding, trained beside the contrastive loss (training.attributes),
  so every image gets its pattern every step, not only when its caption names it.
  At 64/16 it raised pattern+article precision from 0.53 to 0.57 at weight 1 and 0.68
  at 3; 10 gave 0.63. With 8 px patches, pattern-only precision went from 0.45 to 0.89.
* hard_negatives=2: batches made of pairs of products of one article type and colour,
  differing in pattern where they can (training.data.kindred_order), so a caption that
  names a pattern meets a negative that only the pattern tells apart. Runs of four
  cost colour+article and zero-shot accuracy without the attribute loss, and learnt
  patterns no better with it (0.59 against 0.68).
* captions that state the pattern: patterned products also get "a dress with flowers",
  "a red dress with flowers" and the pattern alone ("floral" or "with flowers",
  positive for every product with it) (catalogue.captions).
* the augmentation's small random crop stays: without it (flips and light only) the
  model overfits: pattern+article 0.62, zero-shot 0.78.
* A ViT from scratch needs epochs more than pixels: 30 epochs reached 0.7 zero-shot
  article accuracy, 100+ epochs 0.9. The text is templated, so two text layers do.
* lr: at 30 epochs 5e-4 beat 1e-3 and 2.5e-4; at 120 epochs 7e-4 edged out 5e-4
  (batch 64; 32 and 64 did about the same).
* threads: torch's default, one a core. On the 2-core development VM with nothing else
  running, two threads take 146 ms a step at 48/8 against 215 for one (77 against 118 at
  64/16). Under other load two threads were measured up to 5x slower than one (slow
  thread wake-ups), which is why earlier recipes used one; the budget below keeps a
  busy machine's run on time either way.
* max_minutes anneals the schedule by elapsed time, so a busier machine gets a
  shorter but complete run instead of overrunning the 10 minutes.
"""

GERMAN_FINETUNE = TrainConfig(loss="infonce", epochs=10, batch_size=64, lr=5e-4,
                              weight_decay=0.1, warmup=0.1, freeze="vision",
                              languages=("en", "de"), val_fraction=0.2, seed=0,
                              max_minutes=5, hard_negatives=2)
"""Teach a trained English model German: the image tower stays fixed (the images
are the same), the text tower learns German captions and descriptions while
still seeing English ones, so English does not fade. Batches of kindred pairs, as in
the demo recipe, so "gepunktet" must be told from "kariert" on the same dress."""


# ---------------------------------------------------------------- the automatic recipe

SMALL_MODEL = 50_000_000
"""Parameters below which a model counts as small (the demo architecture has about 2M;
a ViT-B/32 CLIP about 150M)."""


def auto_config(n_products: int, minutes: float, *, finetune: bool = False,
                base_parameters: int | None = None, device: str = "cpu",
                **overrides) -> TrainConfig:
    """The recipe `vitrine train` and `vitrine finetune` use: chosen from the number of
    products to train on and a time budget (VITRINE_TRAIN_MINUTES); `overrides` (the
    command's flags) win over every choice, and the lr follows an overridden batch size.

    Why, from DEMO_RECIPE's runs unless said otherwise:
    * time: `max_minutes` is the budget and the epochs are what the recipe would like;
      the loop anneals by elapsed time as well as by step, so a big catalogue or a slow
      machine ends at the budget with a fully decayed learning rate, a small one ends
      sooner. No steps need measuring first.
    * epochs: from scratch 120 (a ViT from scratch needs epochs more than pixels: 30
      reached 0.7 zero-shot accuracy, 100+ 0.9); a fine-tune 10 (GERMAN_FINETUNE; the
      usual few epochs of CLIP fine-tunes, which forget what they knew if run longer).
    * batch: the largest power of two that gives at least 8 steps an epoch, between 8
      and 64 on a CPU (batch 32 and 64 learnt alike, and a bigger one only costs time
      per step on few cores) or 256 on a GPU (more negatives per step, at no cost).
    * lr: from scratch 7e-4 at batch 64; a small fine-tuned model (under SMALL_MODEL
      parameters: a demo-size model) 1e-4, a large or unknown one 1e-5 (the range CLIP
      fine-tunes use: more undoes its pretraining); scaled by sqrt(batch / 64), Adam's
      usual rule, for other batch sizes. Warm-up 5 % from scratch, 10 % for a fine-tune
      (a pretrained model's first steps are the ones that can wreck it).
    * threads: torch's default (one a core): on a quiet 2-core machine two threads train
      the demo model 1.5x faster than one.
    * hard negatives and the attribute loss: from scratch as the demo recipe (pairs of
      kindred products in each batch, and each image's article type, colour and pattern
      told from its embedding, so patterns are learnt); a fine-tune draws batches at
      random and trains on captions alone (neither measured on a pretrained model).
    The fine-tune figures are starting points, not yet measured on a catalogue.
    """
    val_fraction = overrides.get("val_fraction", TrainConfig.model_fields["val_fraction"].default)
    n_train = max(2, n_products - int(round(val_fraction * n_products)))
    cap = 256 if device.startswith("cuda") else 64
    batch = overrides.get("batch_size") or max(8, min(cap, 1 << max(0, (n_train // 8)
                                                                     .bit_length() - 1)))
    small = not finetune or (base_parameters is not None and base_parameters < SMALL_MODEL)
    base_lr = 7e-4 if not finetune else 1e-4 if small else 1e-5
    chosen = {
        "epochs": 10 if finetune else 120, "batch_size": batch,
        "lr": float(f"{base_lr * (batch / 64) ** 0.5:.2g}"),
        "warmup": 0.1 if finetune else 0.05, "max_minutes": minutes, "device": device,
        "hard_negatives": 0 if finetune else DEMO_RECIPE.config.hard_negatives,
        "attribute_loss": 0.0 if finetune else DEMO_RECIPE.config.attribute_loss,
    }
    return TrainConfig(**{**chosen, **{k: v for k, v in overrides.items() if v is not None}})


def checkpoint_parameters(model_dir: str | Path) -> int | None:
    """How many parameters a local checkpoint has, read from its safetensors headers
    without loading a weight; None when that can't be told (a hub id, another format)."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    if not files:
        return None
    total = 0
    for path in files:
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                n = 1
                for side in f.get_slice(key).get_shape():
                    n *= side
                total += n
    return total
