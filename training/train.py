"""Contrastive training of CLIP-family models on a product catalogue.

`train(None, csv, out)` builds a model from scratch (factory.Architecture) and
`train("path/or/hub-id", csv, out)` fine-tunes any loadable CLIP or SigLIP
checkpoint. Either way:

* products are split into training and validation BY PRODUCT, deterministically
  from the seed; the held-out ids go to out/split.json so evaluation uses the
  same split (a fine-tune reuses its base model's split, so it never trains on
  the base's held-out products); rows flagged for moderation are left out;
* every image is preprocessed ONCE, exactly as the Encoder will see it, into a
  uint8 tensor; each batch gets a cheap augmentation in torch (crop, flip and a
  little brightness and contrast, never hue: colour is a label here);
* each product contributes one caption per epoch, drawn from embedding.captions;
* the result is saved in Hugging Face format, so `Encoder(model=out)` loads it,
  with out/training.json recording the config, losses, time and peak memory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from catalogue.captions import Caption, caption_corpus, labelled_captions, visible_attributes
from embedding.architecture import Architecture, build_model, save_model, train_tokenizer
from embedding.encoder import Preprocessing
from embedding.losses import ContrastiveHead

log = logging.getLogger(__name__)

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
    """bfloat16 autocast. Off by default: on small CPU models it rarely pays."""
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


# ---------------------------------------------------------------- split


@dataclass(frozen=True)
class Split:
    train: list[str]
    validation: list[str]
    excluded: list[str]  # moderation rows: not products, never trained on

    def to_json(self, **extra) -> dict:
        return {**extra, "train": self.train, "validation": self.validation,
                "excluded": self.excluded}


def split_products(rows: list[dict], val_fraction: float, seed: int) -> Split:
    """Hold out a seeded random fraction of the products; the same input gives the same split."""
    excluded = sorted(r["id"] for r in rows if r.get("moderation"))
    ids = sorted({r["id"] for r in rows if not r.get("moderation")}, key=_id_key)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    val = sorted((ids[i] for i in order[:n_val]), key=_id_key)
    train = sorted((ids[i] for i in order[n_val:]), key=_id_key)
    return Split(train, val, excluded)


def _id_key(product_id: str):
    return (0, int(product_id), "") if product_id.isdigit() else (1, 0, product_id)


def read_split(path: Path) -> Split:
    data = json.loads(Path(path).read_text())
    return Split(data["train"], data["validation"], data.get("excluded", []))


# ---------------------------------------------------------------- images


def load_image_cache(rows: list[dict], image_dir: Path, prep: Preprocessing,
                     progress: bool = False) -> torch.Tensor:
    """(n, 3, H, W) uint8: every image resized and cropped once, as the Encoder does."""
    arrays = []
    for row in tqdm(rows, desc="images", unit="img", disable=not progress, leave=False):
        with Image.open(Path(image_dir) / f"{row['id']}.jpg") as image:
            arrays.append(prep.to_array(image))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


class Augment:
    """Batched, mild augmentation of a uint8 batch, then the model's normalisation.

    Random resized crop (85-100 % of the side, aspect 0.9-1.1) and horizontal flip
    through one affine grid, and +-8 % brightness and contrast. No hue or
    saturation change: "red" must stay red.
    """

    def __init__(self, prep: Preprocessing, enabled: bool = True):
        self.mean = torch.from_numpy(prep.mean)
        self.std = torch.from_numpy(prep.std)
        self.enabled = enabled

    def __call__(self, batch: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = batch.float() / 255.0
        if self.enabled:
            n = x.shape[0]

            def uniform(lo: float, hi: float) -> torch.Tensor:
                return lo + (hi - lo) * torch.rand(n, generator=gen)

            side = uniform(0.85, 1.0)
            aspect = uniform(0.9, 1.1).sqrt()
            sx, sy = (side * aspect).clamp(max=1.0), (side / aspect).clamp(max=1.0)
            tx, ty = (1 - sx) * uniform(-1, 1), (1 - sy) * uniform(-1, 1)
            flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
            theta = torch.zeros(n, 2, 3)
            theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
            theta[:, 1, 1], theta[:, 1, 2] = sy, ty
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                              align_corners=False)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            contrast = uniform(0.92, 1.08).view(n, 1, 1, 1)
            brightness = uniform(0.92, 1.08).view(n, 1, 1, 1)
            x = ((x - mean) * contrast + mean) * brightness
            x = x.clamp(0.0, 1.0)
        return (x - self.mean) / self.std


# ---------------------------------------------------------------- model


def _load_checkpoint(model_dir: str):
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32)
    if not hasattr(model, "get_image_features"):
        raise ValueError(f"{model_dir!r} is not a CLIP-family model with two towers")
    return model, AutoImageProcessor.from_pretrained(model_dir), \
        AutoTokenizer.from_pretrained(model_dir)


def _is_vision(name: str) -> bool:
    return name.startswith(("vision_model.", "visual_projection"))


def _is_text(name: str) -> bool:
    return name.startswith(("text_model.", "text_projection"))


def apply_freeze(model: torch.nn.Module, freeze: Freeze) -> None:
    """Set requires_grad by the freeze mode (see TrainConfig.freeze)."""
    for name, param in model.named_parameters():
        if freeze == "vision":
            param.requires_grad = not _is_vision(name)
        elif freeze == "text":
            param.requires_grad = not _is_text(name)
        elif freeze == "towers":
            tower = name.startswith(("vision_model.", "text_model."))
            param.requires_grad = not tower or ".head." in name  # SigLIP's pooling heads
        else:
            param.requires_grad = True


def _param_groups(params: list[tuple[str, torch.nn.Parameter]], weight_decay: float):
    # No decay on gains, biases, embeddings and logit parameters, as in CLIP.
    def exempt(name: str, p: torch.Tensor) -> bool:
        return p.ndim < 2 or "embedding" in name or "logit" in name

    decay = [p for n, p in params if not exempt(n, p)]
    rest = [p for n, p in params if exempt(n, p)]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


def _lr_factor(progress: float, warmup: float) -> float:
    if warmup > 0 and progress < warmup:
        return progress / warmup
    rest = (progress - warmup) / max(1e-8, 1.0 - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, rest)))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def positives_mask(captions: list[Caption], shown: list[frozenset]) -> torch.Tensor:
    """positives[i, j]: caption i truly describes product j (all it states, j shows).

    "a red dress" is a positive for every red dress of the batch: treating those as
    negatives would teach the model to tell apart what the caption cannot.
    """
    n = len(captions)
    mask = torch.eye(n, dtype=torch.bool)
    for i, caption in enumerate(captions):
        for j in range(n):
            if caption.attributes is not None:
                mask[i, j] |= caption.attributes <= shown[j]
            else:
                mask[i, j] |= caption.text.lower() == captions[j].text.lower()
    return mask


class _Batcher:
    """Turns product indices and their captions into (pixels, tokens, positives)."""

    def __init__(self, model, tokenizer, rows: list[dict], images: torch.Tensor,
                 augment: Augment):
        self.family = model.config.model_type
        self.tokenizer = tokenizer
        self.context_length = model.config.text_config.max_position_embeddings
        self.shown = [visible_attributes(r) for r in rows]
        self.images = images
        self.augment = augment

    def tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        padding = "max_length" if self.family == "siglip" else True
        tokens = self.tokenizer(texts, padding=padding, truncation=True,
                                max_length=self.context_length, return_tensors="pt")
        keep = ("input_ids",) if self.family == "siglip" else ("input_ids", "attention_mask")
        return {k: tokens[k] for k in keep}

    def __call__(self, index: torch.Tensor, captions: list[Caption],
                 gen: torch.Generator | None):
        pixels = self.augment(self.images[index], gen)
        # rows are products, columns captions: positives[i, j] = caption j describes image i
        positives = positives_mask(captions, [self.shown[i] for i in index.tolist()]).T
        return pixels, self.tokens([c.text for c in captions]), positives


def _embed(model, pixels: torch.Tensor, tokens: dict, bf16: bool):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        image = model.get_image_features(pixel_values=pixels).pooler_output
        text = model.get_text_features(**tokens).pooler_output
    return F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)


# ---------------------------------------------------------------- training


def train(model_dir: str | Path | None, catalogue_csv: Path, out_dir: Path,
          config: TrainConfig | None = None, arch: Architecture | None = None) -> TrainResult:
    """Train contrastively on the catalogue and save a loadable model to `out_dir`.

    `model_dir` None builds `arch` (default Architecture()) from scratch, with a
    tokenizer trained on the training products' captions and descriptions in
    English and German, so both languages are in the vocabulary whatever
    `config.languages` says. Otherwise `model_dir` is fine-tuned.
    """
    config = config or TrainConfig()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(model_dir, Path(catalogue_csv), Path(out_dir), config, arch)
    finally:
        torch.set_num_threads(threads)


def _train(model_dir: str | Path | None, catalogue_csv: Path, out_dir: Path,
           config: TrainConfig, arch: Architecture | None) -> TrainResult:
    from catalogue.styles import read_styles

    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + 60.0 * config.max_minutes if config.max_minutes else None
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    gen = torch.Generator().manual_seed(config.seed)

    rows = read_styles(catalogue_csv)
    by_id = {r["id"]: r for r in rows}
    base_split = Path(model_dir) / "split.json" if model_dir else None
    if base_split is not None and base_split.exists() and \
            set(read_split(base_split).validation) <= by_id.keys():
        # The base model's held-out products must stay held out in the fine-tune.
        split = read_split(base_split)
        log.info("reusing the split of %s (%d held out)", model_dir, len(split.validation))
    else:
        split = split_products(rows, config.val_fraction, config.seed)
    (out_dir / "split.json").write_text(json.dumps(split.to_json(
        catalogue=str(catalogue_csv), seed=config.seed, val_fraction=config.val_fraction)))
    train_rows = [by_id[i] for i in split.train]
    val_rows = [by_id[i] for i in split.validation]
    if len(train_rows) < 2:
        raise ValueError(f"{catalogue_csv} has {len(train_rows)} training products; need 2+")

    if model_dir is None:
        arch = arch or Architecture()
        tokenizer = train_tokenizer(caption_corpus(train_rows, ("en", "de"), config.seed),
                                    arch.vocab_size, arch.context_length, arch.family)
        model, processor = build_model(arch, tokenizer, config.seed)
    else:
        model, processor, tokenizer = _load_checkpoint(str(model_dir))
    prep = Preprocessing.from_processor(processor)

    image_dir = catalogue_csv.parent / "images"
    train_images = load_image_cache(train_rows, image_dir, prep, config.progress)
    val_images = load_image_cache(val_rows, image_dir, prep, config.progress) \
        if val_rows else None
    batcher = _Batcher(model, tokenizer, train_rows, train_images,
                       Augment(prep, config.augment))
    val_batcher = _Batcher(model, tokenizer, val_rows, val_images,
                           Augment(prep, enabled=False)) if val_rows else None

    head = ContrastiveHead(model, config.loss, fresh=model_dir is None)
    apply_freeze(model, config.freeze)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    named += [(f"head.{n}", p) for n, p in head.named_parameters()]
    optimizer = torch.optim.AdamW(_param_groups(named, config.weight_decay), lr=config.lr,
                                  betas=(0.9, 0.98), eps=1e-6)

    n = len(train_rows)
    batch_size = min(config.batch_size, n)
    steps_per_epoch = n // batch_size  # drop the ragged last batch: contrast needs company
    total_steps = steps_per_epoch * config.epochs
    val_captions = [labelled_captions(r, config.languages, random.Random(config.seed + 1))
                    for r in val_rows]
    val_captions = [random.Random(i).choice(c) for i, c in enumerate(val_captions)]

    loop_start = time.perf_counter()
    budget = (deadline - loop_start - 10.0) if deadline else None  # keep time to save
    if budget is not None and budget <= 0:
        raise ValueError(f"max_minutes={config.max_minutes} leaves no time to train")
    step, stopped, train_losses, val_losses = 0, False, [], []
    val_every = max(1, config.epochs // 10)
    bar = tqdm(total=total_steps, desc="train", unit="step", disable=not config.progress)
    model.train()
    for epoch in range(config.epochs):
        epoch_losses = []
        order = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            elapsed = time.perf_counter() - loop_start
            progress = step / total_steps
            if budget is not None:
                progress = max(progress, elapsed / budget)
            if progress >= 1.0:
                stopped = True
                break
            for group in optimizer.param_groups:
                group["lr"] = config.lr * _lr_factor(progress, config.warmup)
            index = order[b * batch_size:(b + 1) * batch_size]
            captions = [rng.choice(labelled_captions(train_rows[i], config.languages, rng))
                        for i in index.tolist()]
            pixels, tokens, positives = batcher(index, captions, gen)
            image_emb, text_emb = _embed(model, pixels, tokens, config.bf16)
            loss = head(image_emb, text_emb, positives)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            epoch_losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(epoch_losses[-20:]):.3f}")
        if epoch_losses:
            train_losses.append(float(np.mean(epoch_losses)))
            message = f"epoch {epoch + 1}: train loss {train_losses[-1]:.4f}"
            # about ten validation points a run: each costs a forward pass over the held out
            last = stopped or epoch + 1 == config.epochs
            if val_batcher is not None and ((epoch + 1) % val_every == 0 or last):
                loss = _validation_loss(model, head, val_batcher, val_captions, batch_size,
                                        config.bf16)
                val_losses.append([epoch + 1, loss])
                message += f", validation loss {loss:.4f}"
            log.info(message)
        if stopped:
            break
    bar.close()
    train_seconds = time.perf_counter() - loop_start
    model.eval()

    save_model(out_dir, model, processor, tokenizer)
    result = TrainResult(
        out_dir=out_dir, epochs=len(train_losses), steps=step, train_losses=train_losses,
        val_losses=val_losses, seconds=time.perf_counter() - started,
        train_seconds=train_seconds, cpu_seconds=time.process_time() - cpu_started,
        peak_rss_mb=_peak_rss_mb(), stopped_by_budget=stopped,
        n_train=len(train_rows), n_val=len(val_rows), logit=head.extra_state())
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
    record.update(config=config.model_dump(mode="json"),
                  base_model=str(model_dir) if model_dir else None,
                  arch=asdict(arch) if model_dir is None else None,
                  catalogue=str(catalogue_csv), torch_threads=torch.get_num_threads(),
                  parameters=sum(p.numel() for p in model.parameters()),
                  trainable_parameters=sum(p.numel() for _, p in named))
    (out_dir / "training.json").write_text(json.dumps(record, indent=2))
    return result


@torch.no_grad()
def _validation_loss(model, head, batcher: _Batcher, captions: list[Caption],
                     batch_size: int, bf16: bool) -> float:
    model.eval()
    losses, weights = [], []
    for start in range(0, len(captions), batch_size):
        index = torch.arange(start, min(start + batch_size, len(captions)))
        if len(index) < 2:
            break
        pixels, tokens, positives = batcher(index, captions[start:start + len(index)], None)
        image_emb, text_emb = _embed(model, pixels, tokens, bf16)
        losses.append(float(head(image_emb, text_emb, positives)))
        weights.append(len(index))
    model.train()
    return float(np.average(losses, weights=weights)) if losses else float("nan")


# ---------------------------------------------------------------- the demo model

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


def train_demo_model(catalogue_csv: Path, out_dir: Path, languages: tuple[str, ...] = ("en",),
                     progress: bool = True) -> TrainResult:
    """Train the demo model (DEMO_RECIPE) from scratch into `out_dir`."""
    config = DEMO_RECIPE.config.model_copy(update={"languages": tuple(languages),
                                                   "progress": progress})
    return train(None, catalogue_csv, out_dir, config, DEMO_RECIPE.arch)
