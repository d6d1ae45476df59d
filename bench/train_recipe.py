"""`vitrine train`'s automatic recipe against the tuned demo recipe (and the fixed defaults
it replaced), on the demo catalogue; write bench/results/train_recipe.{json,md}.

    nice .venv/bin/python -m bench.train_recipe            # the full run (about 25 minutes)
    nice .venv/bin/python -m bench.train_recipe --quick --out /tmp/r   # a smoke check

Three trainings of the demo architecture from scratch, on the same split (seed 0):
1. auto: what `vitrine train --catalogue X --out Y` now does with no flags,
   training.config.auto_config for the catalogue's size and VITRINE_TRAIN_MINUTES;
2. demo: training.config.DEMO_RECIPE, tuned by hand on this catalogue;
3. previous defaults: TrainConfig() as it stood (10 epochs, batch 128, lr 5e-4, torch's
   threads), what `vitrine train` did before the automatic recipe.
Each runs in a fresh process (its peak RSS its own); each model is then evaluated on the
held-out products with training.evaluate (the metrics of `vitrine eval`). The machine's
load is recorded beside the times: other work on the cores stretches wall time.
`--quick` renders a 120-product catalogue at 32 px into the work folder and gives each
run 20 seconds: it proves the script works, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS_DIR, machine_info, markdown_table, run_record

log = logging.getLogger("bench.train_recipe")
RUNS = ("auto", "demo", "previous defaults")
QUICK_PRODUCTS, QUICK_MINUTES = 120, 20 / 60


def configs(n_products: int, minutes: float, quick: bool) -> dict:
    """Each run's TrainConfig (as JSON): the automatic one as `vitrine train` builds it."""
    from training.config import DEMO_RECIPE, TrainConfig, auto_config

    demo = DEMO_RECIPE.config
    previous = TrainConfig()
    if quick:  # the same recipes, cut to the smoke check's budget
        demo = demo.model_copy(update={"max_minutes": minutes})
        previous = previous.model_copy(update={"max_minutes": minutes})
    return {"auto": auto_config(n_products, minutes).model_dump(mode="json"),
            "demo": demo.model_dump(mode="json"),
            "previous defaults": previous.model_dump(mode="json")}


def _train_in_child(config: dict, catalogue_csv: str, out_dir: str) -> dict:
    from training.config import DEMO_RECIPE, TrainConfig
    from training.loop import train

    load_before = os.getloadavg()
    started = time.perf_counter()
    config = TrainConfig(**{**config, "progress": False})
    train(None, Path(catalogue_csv), Path(out_dir), config, DEMO_RECIPE.arch)
    record = json.loads((Path(out_dir) / "training.json").read_text())
    record.update(wall_seconds=time.perf_counter() - started,
                  load_average_before=load_before, load_average_after=os.getloadavg())
    return record


def run_training(config: dict, catalogue_csv: Path, out_dir: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_train_in_child, (config, str(catalogue_csv), str(out_dir)))


def summary(name: str, config: dict, training: dict, evaluation: dict) -> dict:
    name_t2i = evaluation["text_to_image"]["productDisplayName"]
    return {
        "run": name, "batch_size": config["batch_size"], "lr": config["lr"],
        "warmup": config["warmup"], "epochs_asked": config["epochs"],
        "max_minutes": config["max_minutes"], "threads": config["threads"],
        "epochs": training["epochs"], "steps": training["steps"],
        "stopped_by_budget": training["stopped_by_budget"],
        "train_wall_s": training["wall_seconds"], "train_cpu_s": training["cpu_seconds"],
        "peak_rss_mb": training["peak_rss_mb"],
        "load_1min": f"{training['load_average_before'][0]:.1f} / "
                     f"{training['load_average_after'][0]:.1f}",
        "name_recall@1": name_t2i["recall@1"], "name_recall@10": name_t2i["recall@10"],
        "name_mrr": name_t2i["mrr"],
        "attribute_precision@10": evaluation["attribute"]["en"]["precision@10"],
        "image_to_image_precision@10": evaluation["image_to_image_precision@10"],
        "zeroshot_article_accuracy": evaluation["zeroshot_article_accuracy"],
        "eval_s": evaluation["seconds"],
    }


def report(results: dict) -> str:
    m = results["machine"]
    quick = " (a smoke check with --quick: the figures mean nothing)" if results["quick"] else ""
    out = [f"# Training recipe: `vitrine train`'s automatic recipe vs the demo recipe{quick}",
           "", f"{m['cpu_model']}, {m['usable_cores']} usable cores, {m['date']}; load "
           f"{results['load_before']} -> {results['load_after']}. `{results['command']}`", "",
           f"Catalogue: {results['catalogue']} ({results['products']} products, "
           f"{results['held_out']} held out; the same split for every run). Demo "
           "architecture from scratch; quality on the held-out products "
           "(training.evaluate, as `vitrine eval`).", ""]
    rows = results["runs"]
    out += [markdown_table(
        ["run", "batch", "lr", "warm-up", "epochs (asked)", "budget min", "threads", "steps",
         "stopped by budget", "train wall s", "train CPU s", "peak RSS MiB",
         "load before / after"],
        [[r["run"], r["batch_size"], f"{r['lr']:g}", r["warmup"],
          f"{r['epochs']} ({r['epochs_asked']})",
          "none" if r["max_minutes"] is None else f"{r['max_minutes']:.3g}", r["threads"],
          r["steps"],
          r["stopped_by_budget"], f"{r['train_wall_s']:.0f}", f"{r['train_cpu_s']:.0f}",
          f"{r['peak_rss_mb']:.0f}", r["load_1min"]] for r in rows]), "",
        markdown_table(
            ["run", "name R@1", "name R@10", "name MRR", "attribute P@10",
             "img->img P@10", "zero-shot acc.", "eval s"],
            [[r["run"], *(f"{r[k]:.3f}" for k in (
                "name_recall@1", "name_recall@10", "name_mrr", "attribute_precision@10",
                "image_to_image_precision@10", "zeroshot_article_accuracy")),
              f"{r['eval_s']:.0f}"] for r in rows]), "",
        "Attribute precision@10 is capped (divided by min(10, matching held-out products)), "
        "as training.evaluate has it. Wall time includes tokenizer training, image caching "
        "and saving; each run's budget covers all of it.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalogue", type=Path, default=Path("data/demo/catalogue/styles.csv"))
    p.add_argument("--minutes", type=float,
                   help="the automatic recipe's budget (default: VITRINE_TRAIN_MINUTES)")
    p.add_argument("--work", type=Path, help="where the models go (default: a temporary "
                   "folder, removed after)")
    p.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    p.add_argument("--quick", action="store_true", help="a tiny smoke configuration")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    load_before = os.getloadavg()

    from training.data import TrainingSet, split_products
    from training.evaluate import evaluate
    from training.settings import TrainingSettings

    work = args.work or Path(tempfile.mkdtemp(prefix="train-recipe-"))
    try:
        csv_path = args.catalogue
        if args.quick:
            from demo.generator import generate

            csv_path = generate(work / "catalogue", n_products=QUICK_PRODUCTS, seed=0,
                                image_size=32, n_prohibited=4, progress=False)
        elif not csv_path.exists():
            p.error(f"no catalogue at {csv_path}: `vitrine demo-catalogue` makes one")
        products = TrainingSet.from_csv(csv_path).products
        minutes = QUICK_MINUTES if args.quick else args.minutes or \
            TrainingSettings().train_minutes
        chosen = configs(len(products), minutes, args.quick)
        runs = []
        for name in args.runs:
            folder = work / name.replace(" ", "-")
            log.info("training %s into %s: %s", name, folder, chosen[name])
            training = run_training(chosen[name], csv_path, folder)
            evaluation = evaluate(folder, csv_path)
            runs.append(summary(name, chosen[name], training, evaluation))
            log.info("%s", runs[-1])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    results = {**run_record("bench.train_recipe", argv, load_before),
               "machine": machine_info(), "quick": args.quick, "catalogue": str(csv_path),
               "products": len(products),
               "held_out": len(split_products(products, 0.2, 0).validation),
               "configs": chosen, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_recipe.json").write_text(json.dumps(results, indent=2, default=str))
    (args.out / "train_recipe.md").write_text(report(results))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
