"""`vitrine train` and `vitrine finetune`: what to train on, from what, with which recipe.

`train` builds the demo architecture from scratch on a styles.csv. `finetune` starts from
the model in service (the live version's, else VITRINE_MODEL) and trains on the live
catalogue: its shopper-visible products and their stored originals (training.live), or
on a styles.csv given with --catalogue. Either way the recipe is chosen from the number
of products and the time budget (training.config.auto_config, VITRINE_TRAIN_MINUTES),
and the command's flags override it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from catalogue.datalock import DataFolderInUse, DataLock
from catalogue.settings import CatalogueSettings
from catalogue.versions import ModelVersion, Versions
from embedding.settings import EmbeddingSettings
from training.data import TrainingSet

IN_USE_HINT = ("the embedded store is one process's: stop it first, or give a styles.csv "
               "with --catalogue")


class NoCatalogue(LookupError):
    """No live catalogue to train on."""


def fail(message: str) -> int:
    print(f"vitrine: {message}", file=sys.stderr)
    return 2


def live_version(settings: CatalogueSettings) -> ModelVersion | None:
    """The live version, without making a job database where there is none."""
    if not settings.jobs_url and not settings.jobs_db.exists():
        return None
    versions = Versions(settings.jobs_url or settings.jobs_db)
    try:
        return versions.live()
    finally:
        versions.close()


def live_model() -> str:
    """The model in service: the live version's, or VITRINE_MODEL before any catalogue."""
    live = live_version(CatalogueSettings())
    return live.model if live else EmbeddingSettings().model


def live_training_data(progress: bool = True) -> tuple[TrainingSet, ModelVersion]:
    """The live catalogue's shopper-visible products as training data, and its version.

    The products are read at once (the embedded store is locked only meanwhile:
    DataFolderInUse while `vitrine serve` holds it); photos are read later, while
    training caches them, from the media store, which needs no lock (originals are
    stored by their digest and never change)."""
    from training.live import live_training_set
    from vitrine.wiring import open_media, open_store

    settings = CatalogueSettings()
    live = live_version(settings)
    if live is None:
        raise NoCatalogue(f"no live catalogue in {settings.data_dir} to train on: import one "
                          "first, or give a styles.csv with --catalogue")
    lock = DataLock.acquire(settings.data_dir) if settings.store == "edge" else None
    try:
        store = open_store(settings, live.dim, None, live)
        try:
            data = live_training_set(store, open_media(settings), settings,
                                     f"live catalogue ({live.id})", progress)
        finally:
            store.close()
    finally:
        if lock:
            lock.release()
    return data, live


def catalogue_or_live(csv_path: str | None) -> TrainingSet:
    """A styles.csv's products, or without one the live catalogue's (what `vitrine eval`
    and `vitrine promote` judge models on)."""
    if csv_path:
        return TrainingSet.from_csv(Path(csv_path))
    try:
        return live_training_data(progress=False)[0]
    except DataFolderInUse as exc:
        raise NoCatalogue(f"{exc}; {IN_USE_HINT}") from None


def train_flags(args) -> dict:
    """The training flags given on the command line (the recipe chooses the rest)."""
    return {k: v for k, v in {
        "loss": args.loss, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "freeze": args.freeze, "languages": tuple(args.languages) if args.languages else None,
        "bf16": args.bf16 or None, "attribute_loss": args.attribute_loss}.items() if v is not None}


def run_training(args, base: str | None, data: TrainingSet) -> int:
    """Train from scratch (`base` None) or fine-tune `base` on `data` with the automatic
    recipe, the flags overriding it."""
    from training.config import DEMO_RECIPE, auto_config, checkpoint_parameters
    from training.loop import train
    from training.settings import TrainingSettings

    products = len(data.products)
    left_out = f" (left out: {data.left_out})" if data.left_out else ""
    if products < 2:
        return fail(f"{data.source} has {products} products to train on; need 2 or more"
                    f"{left_out}")
    config = auto_config(products, args.max_minutes or TrainingSettings().train_minutes,
                         finetune=base is not None,
                         base_parameters=checkpoint_parameters(base) if base else None,
                         device=EmbeddingSettings().device, **train_flags(args))
    print(f"{'fine-tuning ' + base if base else 'training from scratch'} on {products} "
          f"products of {data.source}{left_out}\n"
          f"recipe: batch {config.batch_size}, lr {config.lr:g}, warm-up {config.warmup:g}, "
          f"up to {config.epochs} epochs within {config.max_minutes:g} minutes", flush=True)
    try:
        result = train(base, data, Path(args.out), config, None if base else DEMO_RECIPE.arch)
    except (OSError, ValueError) as exc:  # a photo or base model that can't be read
        return fail(str(exc))
    print(f"model saved to {args.out}; set VITRINE_MODEL={args.out} to serve it")
    print(json.dumps({k: v for k, v in vars(result).items() if not isinstance(v, list)},
                     default=str, indent=2))
    return 0


def train_command(args) -> int:
    try:
        data = TrainingSet.from_csv(Path(args.catalogue))
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    return run_training(args, None, data)


def finetune_command(args) -> int:
    try:
        if args.catalogue:
            data = TrainingSet.from_csv(Path(args.catalogue))
            base = args.model or live_model()
        else:
            data, live = live_training_data()
            base = args.model or live.model
    except DataFolderInUse as exc:
        return fail(f"{exc}; {IN_USE_HINT}")
    except (OSError, ValueError, NoCatalogue) as exc:
        return fail(str(exc))
    return run_training(args, base, data)
