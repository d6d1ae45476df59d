"""The `vitrine` command: serve, demo, import, train, fine-tune, evaluate, promote, back
up, restore."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from catalogue.logs import configure_logging
from catalogue.tracing import configure_tracing, tracer
from vitrine import backup_cli, models

DEMO_PRODUCTS = 3000


def fail(message: str) -> int:
    print(f"vitrine: {message}", file=sys.stderr)
    return 2


def build_services():
    from vitrine.wiring import build_services

    return build_services()


def run_import(services, path: Path, prune: bool = False) -> str:
    """Import a catalogue in this process, with progress bars; returns the job id."""
    from catalogue.importer import import_catalogue

    accepted = import_catalogue(services.ingest, path, progress=True, prune=prune)
    with tqdm(total=accepted.accepted + accepted.rejected, initial=accepted.rejected,
              desc="indexing", unit="product") as bar:
        services.ingest.run_pending(on_batch=bar.update)
    if services.store.unindexed() >= 1000:  # fewer are searched exactly, at no real cost
        print("building the search index...", flush=True)
        services.store.optimize()
    return accepted.job_id


def print_job(job) -> None:
    print(f"job {job.id}: {job.state}, {job.succeeded} indexed ({job.added} added, "
          f"{job.updated} updated, {job.unchanged} unchanged), {job.removed} removed, "
          f"{job.failed} failed")
    for warning in job.warnings[:20]:
        print(f"  item {warning.index} ({warning.product_id}), indexed: {warning.error}")
    for error in job.errors[:20]:
        print(f"  item {error.index} ({error.product_id}): {error.error}")
    if len(job.errors) > 20:
        print(f"  ... and {len(job.errors) - 20} more (GET /v1/jobs/{job.id})")


def serve(services, host: str | None, port: int | None) -> int:
    import uvicorn

    from api.settings import ApiSettings
    from vitrine.wiring import create_api

    settings = ApiSettings()
    host, port = host or settings.host, port or settings.port
    app = create_api(settings, services)
    print(f"Vitrine on http://{host}:{port}  (shop: /, catalogue managers: /admin, "
          f"API docs: /docs)", flush=True)
    # log_config=None: uvicorn's lines go to the root logger, in VITRINE_LOG_FORMAT.
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None)
    return 0


IN_USE_HINT = "stop it first, or set VITRINE_DATA_DIR to another folder"


def cmd_serve(args) -> int:
    from catalogue.datalock import DataFolderInUse
    from catalogue.versions import ModelMismatch
    from embedding.encoder import ModelLoadError

    try:
        services = build_services()
    except DataFolderInUse as exc:
        return fail(f"{exc}; {IN_USE_HINT}")
    except (ModelLoadError, ModelMismatch) as exc:
        return fail(str(exc))
    return serve(services, args.host, args.port)


def cmd_demo_catalogue(args) -> int:
    from demo.generator import generate

    csv_path = generate(Path(args.out), n_products=args.products, seed=args.seed)
    print(f"demo catalogue written to {csv_path.parent}")
    return 0


def demo_paths(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "demo" / "catalogue", data_dir / "models" / "demo"


def cmd_demo(args) -> int:
    """Generate the demo catalogue and train the demo model if needed, import, serve."""
    from catalogue.settings import CatalogueSettings
    from demo.generator import generate

    data_dir = CatalogueSettings().data_dir
    catalogue, model = demo_paths(data_dir)
    if not (catalogue / "styles.csv").exists():
        print(f"generating the demo catalogue ({DEMO_PRODUCTS} products) in {catalogue}")
        generate(catalogue, n_products=DEMO_PRODUCTS, seed=0)
    if not (model / "config.json").exists():
        from training.loop import train_demo_model

        print(f"training the demo model into {model} (about 10 minutes on 2 cores, once)")
        train_demo_model(catalogue / "styles.csv", model)
    os.environ.setdefault("VITRINE_MODEL", str(model))
    from catalogue.datalock import DataFolderInUse
    from catalogue.moderation import POLICY_FILENAME, calibrate_policy_file
    from embedding.encoder import Encoder
    from vitrine.wiring import build_services

    encoder = Encoder().load()
    if not (data_dir / POLICY_FILENAME).exists():
        # Prompts alone can't moderate on a model that never saw a weapon: calibrate on
        # the demo catalogue's labelled items, which also keeps them as examples.
        print("calibrating moderation on the demo catalogue's labelled items")
        print(calibrate_policy_file(catalogue / "styles.csv", encoder=encoder, data_dir=data_dir))
    from catalogue.versions import ModelMismatch

    try:
        services = build_services(encoder=encoder)
    except DataFolderInUse as exc:
        return fail(f"{exc}; {IN_USE_HINT}")
    except ModelMismatch as exc:
        return fail(str(exc))
    if services.store.count() == 0:
        print_job(services.jobs.get(run_import(services, catalogue)))
    return serve(services, args.host, args.port)


def cmd_import(args) -> int:
    from catalogue.datalock import DataFolderInUse
    from catalogue.importer import CatalogueFormatError

    try:
        services = build_services()
    except DataFolderInUse as exc:
        return fail(f"{exc}; upload the catalogue as a zip to POST /v1/imports instead, "
                    "or stop it first")
    except Exception as exc:  # the model
        return fail(f"{exc}\n(if `vitrine serve` is running on this data folder, upload the "
                    "catalogue as a zip to POST /v1/imports instead)")
    try:
        print_job(services.jobs.get(run_import(services, Path(args.path), args.prune)))
    except (CatalogueFormatError, FileNotFoundError) as exc:
        return fail(str(exc))
    finally:
        services.close()
    return 0


def cmd_train(args) -> int:
    from vitrine import train

    return train.train_command(args)


def cmd_finetune(args) -> int:
    from vitrine import train

    return train.finetune_command(args)


def cmd_eval(args) -> int:
    from vitrine.train import catalogue_or_live

    try:
        data = catalogue_or_live(args.catalogue)
    except (OSError, ValueError, LookupError) as exc:
        return fail(str(exc))
    split = Path(args.split) if args.split else None
    if args.against:
        from training.compare import compare, format_report
        from vitrine.train import live_model

        against = live_model() if args.against == "live" else args.against
        report = compare(args.model, against, data, split)
        print(f"{args.model} against {against} on {data.source}\n{format_report(report)}")
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        return 0
    from training.evaluate import evaluate, format_table

    results = evaluate(args.model, data, split, tuple(args.languages))
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"written to {args.json}")
    return 0


def cmd_calibrate_moderation(args) -> int:
    from catalogue.moderation import calibrate_policy_file

    print(calibrate_policy_file(Path(args.catalogue), args.precision, args.policy,
                                args.max_negatives))
    return 0


def cmd_hash_key(args) -> int:
    from api.auth import hash_key

    print(hash_key(args.key))
    return 0


def cmd_models(args) -> int:
    if args.action == "list":
        return models.list_versions()
    if not args.version:
        return fail(f"vitrine models {args.action} needs a version id (see `vitrine models`)")
    return (models.use if args.action == "use" else models.remove)(args.version)


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder to save the model in (HF format)")
    p.add_argument("--loss", choices=["infonce", "sigmoid"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--freeze", choices=["none", "vision", "text", "towers"])
    p.add_argument("--languages", nargs="+", choices=["en", "de"])
    p.add_argument("--max-minutes", type=float,
                   help="time budget (default: VITRINE_TRAIN_MINUTES)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--attribute-loss", type=float,
                   help="weight of the auxiliary attribute loss (0: off; training.attributes)")


CATALOGUE_HELP = ("styles.csv of a catalogue (default: the live catalogue's products and "
                  "stored photos)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vitrine", description="Fashion product search.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the local profile: API, web pages, ingest, store")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("demo", help="demo catalogue + demo model (made once), import, serve")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("demo-catalogue", help="render the synthetic demo catalogue")
    s.add_argument("--out", default="data/demo/catalogue")
    s.add_argument("--products", type=int, default=DEMO_PRODUCTS)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_demo_catalogue)

    s = sub.add_parser("import", help="import a catalogue (styles.csv folder, .jsonl, or a "
                       "Google Merchant Center / Shopify product feed)")
    s.add_argument("path")
    s.add_argument("--prune", action="store_true",
                   help="remove products the catalogue no longer lists (feed sync)")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("train", help="train a CLIP model from scratch on a catalogue (the "
                       "recipe chosen from its size and VITRINE_TRAIN_MINUTES; flags override)")
    s.add_argument("--catalogue", required=True, help="styles.csv of the catalogue")
    add_train_options(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("finetune", help="fine-tune the live model on the live catalogue's "
                       "products and photos (or --model, --catalogue)")
    s.add_argument("--model", help="hub id or folder to start from (default: the live "
                   "version's model, else VITRINE_MODEL)")
    s.add_argument("--catalogue", help="styles.csv to train on instead of the live catalogue")
    add_train_options(s)
    s.set_defaults(func=cmd_finetune)

    s = sub.add_parser("eval", help="retrieval and zero-shot metrics on the held-out split")
    s.add_argument("--model", required=True)
    s.add_argument("--catalogue", help=CATALOGUE_HELP)
    s.add_argument("--split", help="split.json (default: the model folder's)")
    s.add_argument("--languages", nargs="+", default=["en"], choices=["en", "de"])
    s.add_argument("--json", help="also write the results to this file")
    s.add_argument("--against", nargs="?", const="live", help="another model (alone: the "
                   "live one): the difference per metric on the same products, with a "
                   "bootstrap 95%% interval")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("calibrate-moderation",
                       help="per-category moderation thresholds from labelled images")
    s.add_argument("--catalogue", required=True,
                   help="styles.csv with a `moderation` column (images/<id>.jpg beside it)")
    s.add_argument("--precision", type=float, default=0.9, help="target precision (0.9)")
    s.add_argument("--policy", help="policy file to write (default: VITRINE_MODERATION_POLICY, "
                                    "else <data dir>/moderation_policy.json)")
    s.add_argument("--max-negatives", type=int, default=2000,
                   help="normal products scored as negatives, at most (2000)")
    s.set_defaults(func=cmd_calibrate_moderation)

    s = sub.add_parser("reindex", help="re-encode the catalogue with another model into its "
                       "own version, and make that live once complete and checked")
    s.add_argument("--model", required=True, help="hub id or local folder")
    s.set_defaults(func=lambda a: models.reindex(a.model))

    s = sub.add_parser("promote", help="compare a model with the live one on a catalogue's "
                       "held-out products; reindex into it only if it is measurably better")
    s.add_argument("--model", required=True)
    s.add_argument("--catalogue", help=CATALOGUE_HELP)
    s.add_argument("--metric", default="attribute_precision@10",
                   choices=["name_mrr", "name_recall@10", "attribute_precision@10",
                            "zeroshot_accuracy"])
    s.add_argument("--force", action="store_true", help="promote even if not better")
    s.set_defaults(func=lambda a: models.promote(a.model, a.catalogue, a.metric, a.force))

    s = sub.add_parser("models", help="model versions: list, use (roll back), remove")
    s.add_argument("action", nargs="?", choices=["list", "use", "remove"], default="list")
    s.add_argument("version", nargs="?")
    s.set_defaults(func=cmd_models)

    backup_cli.add_commands(sub)

    s = sub.add_parser("hash-key", help="SHA-256 digest of an API key, for VITRINE_API_KEYS")
    s.add_argument("key")
    s.set_defaults(func=cmd_hash_key)
    return p


SERVING = ("serve", "demo")  # commands that end by serving the API


def main(argv: list[str] | None = None) -> int:
    configure_logging()  # VITRINE_LOG_FORMAT, VITRINE_LOG_LEVEL
    traced = configure_tracing()  # VITRINE_TRACING_ENABLED
    args = parser().parse_args(argv)
    from embedding.runtime import configure_threads

    configure_threads()  # once, before any command builds an encoder
    if not traced or args.command in SERVING:
        return args.func(args)  # a server's requests are traces of their own
    # One trace a command, its store and encoder calls under it.
    with tracer().start_as_current_span(f"vitrine {args.command}"):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
