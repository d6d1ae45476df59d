"""Contrastive training of CLIP-family models on a product catalogue.

`train(None, data, out)` builds a model from scratch (embedding.architecture.Architecture) and
`train("path/or/hub-id", data, out)` fine-tunes any loadable CLIP or SigLIP
checkpoint, where `data` is a styles.csv or a training.data.TrainingSet (the live
catalogue's: training.live). Either way:

* products are split by product (training.data); the held-out ids go to
  out/split.json so evaluation uses the same split (a fine-tune reuses its base
  model's split, so it never trains on the base's held-out products);
* each product contributes one caption per epoch, drawn from catalogue.captions;
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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from catalogue.captions import Caption, caption_corpus, labelled_captions
from embedding.architecture import Architecture, build_model, save_model, train_tokenizer
from embedding.encoder import Preprocessing, vector_size
from embedding.losses import ContrastiveHead
from training.attributes import AttributeHeads
from training.config import DEMO_RECIPE, Freeze, TrainConfig, TrainResult
from training.data import (
    Augment,
    Batcher,
    PhotoCache,
    TrainingSet,
    keep_held_out,
    kindred_order,
    read_split,
    split_products,
)

log = logging.getLogger(__name__)


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


def _embed(model, pixels: torch.Tensor, tokens: dict, bf16: bool):
    device = pixels.device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16 or device == "cuda"):
        image = model.get_image_features(pixel_values=pixels).pooler_output
        text = model.get_text_features(**tokens).pooler_output
    return F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)


def to_device(batch: tuple, device: torch.device) -> tuple:
    """A batch (pixels, tokens, positives) on `device`: through pinned memory to a GPU, so
    the copy overlaps the step before; as it is on the CPU."""
    if device.type == "cpu":
        return batch
    pixels, tokens, positives = batch
    def move(t: torch.Tensor) -> torch.Tensor:
        return t.pin_memory().to(device, non_blocking=True)

    return move(pixels), {k: move(v) for k, v in tokens.items()}, move(positives)


# ---------------------------------------------------------------- training


def train(model_dir: str | Path | None, data: Path | TrainingSet, out_dir: Path,
          config: TrainConfig | None = None, arch: Architecture | None = None) -> TrainResult:
    """Train contrastively on the catalogue (a styles.csv, or a TrainingSet) and save a
    loadable model to `out_dir`.

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
        if not isinstance(data, TrainingSet):
            data = TrainingSet.from_csv(Path(data))
        return _train(model_dir, data, Path(out_dir), config, arch)
    finally:
        torch.set_num_threads(threads)


def _train(model_dir: str | Path | None, data: TrainingSet, out_dir: Path,
           config: TrainConfig, arch: Architecture | None) -> TrainResult:
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + 60.0 * config.max_minutes if config.max_minutes else None
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    gen = torch.Generator().manual_seed(config.seed)

    rows = data.rows
    by_id = {r["id"]: r for r in rows}
    base_split = Path(model_dir) / "split.json" if model_dir else None
    if base_split is not None and base_split.exists():
        split = keep_held_out(read_split(base_split), rows, config.val_fraction, config.seed)
        log.info("keeping the split of %s (%d held out)", model_dir, len(split.validation))
    else:
        split = split_products(rows, config.val_fraction, config.seed)
    (out_dir / "split.json").write_text(json.dumps(split.to_json(
        catalogue=data.source, seed=config.seed, val_fraction=config.val_fraction)))
    train_rows = [by_id[i] for i in split.train]
    val_rows = [by_id[i] for i in split.validation]
    if len(train_rows) < 2:
        raise ValueError(f"{data.source} has {len(train_rows)} training products; need 2+")

    if model_dir is None:
        arch = arch or Architecture()
        tokenizer = train_tokenizer(caption_corpus(train_rows, ("en", "de"), config.seed),
                                    arch.vocab_size, arch.context_length, arch.family)
        model, processor = build_model(arch, tokenizer, config.seed)
    else:
        model, processor, tokenizer = _load_checkpoint(str(model_dir))
        arch = None  # a checkpoint has its own: `arch` shapes a model built from scratch only
    prep = Preprocessing.from_processor(processor)

    train_images = PhotoCache.load(data, train_rows, prep, config.progress)
    # the held-out loss, like evaluation, is on the main photos
    val_images = PhotoCache.load(data, val_rows, prep, config.progress, more=False) \
        if val_rows else None
    batcher = Batcher(model, tokenizer, train_rows, train_images,
                       Augment(prep, config.augment))
    val_batcher = Batcher(model, tokenizer, val_rows, val_images,
                          Augment(prep, enabled=False)) if val_images is not None else None

    head = ContrastiveHead(model, config.loss, fresh=model_dir is None)
    attributes = (AttributeHeads(train_rows, vector_size(model.config, str(model_dir)))
                  if config.attribute_loss else None)
    device = torch.device(config.device)
    model.to(device)
    head.to(device)
    apply_freeze(model, config.freeze)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    named += [(f"head.{n}", p) for n, p in head.named_parameters()]
    if attributes is not None:
        attributes.to(device)
        named += [(f"attributes.{n}", p) for n, p in attributes.named_parameters()]
    optimizer = torch.optim.AdamW(_param_groups(named, config.weight_decay), lr=config.lr,
                                  betas=(0.9, 0.98), eps=1e-6)

    n = len(train_rows)
    batch_size = min(config.batch_size, n)
    steps_per_epoch = n // batch_size  # drop the ragged last batch: contrast needs company
    total_steps = steps_per_epoch * config.epochs
    val_choices = [labelled_captions(r, config.languages, random.Random(config.seed + 1))
                   for r in val_rows]
    val_captions = [random.Random(i).choice(c) for i, c in enumerate(val_choices)]

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
        order = kindred_order(train_rows, config.hard_negatives, gen) \
            if config.hard_negatives > 1 else torch.randperm(n, generator=gen)
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
            pixels, tokens, positives = to_device(batcher(index, captions, gen), device)
            image_emb, text_emb = _embed(model, pixels, tokens, config.bf16)
            loss = head(image_emb, text_emb, positives)
            if attributes is not None:
                loss = loss + config.attribute_loss * attributes(image_emb, index)
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
    model.to("cpu")
    head.to("cpu")

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
                  arch=asdict(arch) if arch is not None else None,
                  catalogue=data.source, left_out=data.left_out,
                  photos=int(train_images.count.sum()),  # of the training products, all views
                  torch_threads=torch.get_num_threads(),
                  parameters=sum(p.numel() for p in model.parameters()),
                  trainable_parameters=sum(p.numel() for _, p in named))
    (out_dir / "training.json").write_text(json.dumps(record, indent=2))
    return result


@torch.no_grad()
def _validation_loss(model, head, batcher: Batcher, captions: list[Caption],
                     batch_size: int, bf16: bool) -> float:
    model.eval()
    losses, weights = [], []
    for start in range(0, len(captions), batch_size):
        index = torch.arange(start, min(start + batch_size, len(captions)))
        if len(index) < 2:
            break
        pixels, tokens, positives = to_device(
            batcher(index, captions[start:start + len(index)], None),
            next(model.parameters()).device)
        image_emb, text_emb = _embed(model, pixels, tokens, bf16)
        losses.append(float(head(image_emb, text_emb, positives)))
        weights.append(len(index))
    model.train()
    return float(np.average(losses, weights=weights)) if losses else float("nan")


# ---------------------------------------------------------------- the demo model


def train_demo_model(catalogue_csv: Path, out_dir: Path, languages: tuple[str, ...] = ("en",),
                     progress: bool = True) -> TrainResult:
    """Train the demo model (DEMO_RECIPE) from scratch into `out_dir`."""
    config = DEMO_RECIPE.config.model_copy(update={"languages": tuple(languages),
                                                   "progress": progress})
    return train(None, catalogue_csv, out_dir, config, DEMO_RECIPE.arch)
