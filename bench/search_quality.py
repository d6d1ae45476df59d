"""Search quality on the demo catalogue: keyword, semantic and hybrid search, and hybrid's knobs.

    .venv/bin/python -m bench.search_quality            # about 300 queries per kind (a few minutes)
    .venv/bin/python -m bench.search_quality --quick    # 40 per kind, smoke run

The demo catalogue (data/demo/catalogue, 3,060 products) is imported into a temporary
data folder in this process with the demo model (data/models/demo, trained on it), as
`vitrine import` does (moderation and tagging off, so every product is visible), and
every query goes through `Search.ask` and `Search.search`, the calls the API's
`GET /v1/search` makes, one page of 10. The queries (names, names with a typo, brands,
"a red dress", "a striped shirt", a held-out product's photos with "floral"; sampled
with a fixed seed) and the metrics (R@1, R@10, MRR) are bench/search_queries.py's.
Configurations: keyword, semantic, and hybrid by reciprocal rank fusion at several
keyword weights and values of k (the engine's constant, a class attribute of `Query`,
set for the run) and by DBSF, words first (the
products the words find ranked above the rest, VITRINE_HYBRID_WORDS_FIRST) or in one
fused list; keyword and hybrid also without the spelling of unknown words. The settings
are set on the running `Search` between configurations, so the catalogue is imported once.
Each query's `Search.search` call is timed too (no page cache), and the report gives the
default configuration's median per kind.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import markdown_table, run_record, text_table, write_results
from bench.search_queries import KINDS, LIMIT, Case, build_cases, mixed_cases, score
from catalogue.store.base import Query, point_id

log = logging.getLogger("bench.search_quality")
ROOT = Path(__file__).resolve().parents[1]
@dataclass(frozen=True)
class Config:
    mode: str
    fusion: str = "rrf"
    keyword_weight: float | None = None
    rrf_k: int = 2  # Query.RRF_K, the engine's k
    words_first: bool = True  # VITRINE_HYBRID_WORDS_FIRST
    spelling: bool = True  # the keyword side also searches the spelling of unknown words

    @property
    def label(self) -> str:
        name = self.mode
        if self.mode == "hybrid":
            name = "hybrid dbsf" if self.fusion == "dbsf" else \
                f"hybrid rrf k={self.rrf_k} w={self.keyword_weight}"
            name += "" if self.words_first else ", one list"
        return name + ("" if self.spelling or self.mode == "semantic" else ", no spelling")


def run_config(search, cases: list[Case], config: Config, base_settings,
               split_of: dict[str, str]) -> dict:
    """Every case under `config`. The fusion is a setting and k a constant of `Query`, so
    both are set for the run and put back after it."""
    search.settings = base_settings.model_copy(update={
        "fusion": config.fusion, "hybrid_words_first": config.words_first})
    default_k, Query.RRF_K = Query.RRF_K, config.rrf_k
    spelling = search.spelling
    search.spelling = spelling if config.spelling else None
    per_kind: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    ms: dict[str, list[float]] = defaultdict(list)
    name_r1_by_split: dict[str, list[float]] = defaultdict(list)
    t0 = time.perf_counter()
    for case in cases:
        photo = case.product if case.kind == "mixed" else None
        ask = search.ask(case.text, product_id=photo, mode=config.mode,
                         keyword_weight=config.keyword_weight)
        started = time.perf_counter()
        page = search.search(ask, None, LIMIT, exclude_ids=[point_id(photo)] if photo else ())
        ms[case.kind].append((time.perf_counter() - started) * 1000)
        s = score(case, [r.product_id for r in page.results])
        per_kind[case.kind].append(s)
        if case.kind == "name":
            name_r1_by_split[split_of.get(case.product or "", "?")].append(s[0])
    seconds = time.perf_counter() - t0
    search.settings, Query.RRF_K, search.spelling = base_settings, default_k, spelling
    out = {kind: {"n": len(v), "r1": float(np.mean([x[0] for x in v])),
                  "r10": float(np.mean([x[1] for x in v])),
                  "mrr": float(np.mean([x[2] for x in v])),
                  "search_ms_p50": float(np.median(ms[kind]))} for kind, v in per_kind.items()}
    out["name"]["r1_by_split"] = {k: float(np.mean(v)) for k, v in name_r1_by_split.items()}
    return {"label": config.label, "seconds": seconds, "kinds": out}


def typo_suggested(suggester, cases: list[Case]) -> float:
    """The share of typo queries whose first typeahead suggestion is the intended name."""
    typos = [c for c in cases if c.kind == "typo"]
    found = 0
    for case in typos:
        first = suggester.suggest(case.text, limit=1)
        found += bool(first) and first[0].text.casefold() == (case.intended or "").casefold()
    return found / len(typos)


# -- the catalogue ------------------------------------------------------------------------------
def import_demo(data_dir: Path, catalogue: Path, model: Path):
    """The demo catalogue imported into `data_dir` as `vitrine import` does."""
    os.environ["VITRINE_MODERATION_ENABLED"] = "false"  # read by build_services's settings
    os.environ["VITRINE_TAGGING_ENABLED"] = "false"
    os.environ["VITRINE_PAGE_CACHE_SIZE"] = "0"  # every query timed is searched
    from catalogue.importer import import_catalogue
    from catalogue.settings import CatalogueSettings
    from embedding.encoder import Encoder
    from vitrine.wiring import build_services

    services = build_services(CatalogueSettings(data_dir=data_dir),
                              encoder=Encoder(model=str(model)), profile="local")
    job_id = import_catalogue(services.ingest, catalogue).job_id
    services.ingest.run_pending()
    if services.store.unindexed() >= 1000:  # as `vitrine import` does
        services.store.optimize()
    job = services.jobs.get(job_id)
    if job.failed:
        raise RuntimeError(f"{job.failed} products failed to import")
    return services


# -- report -------------------------------------------------------------------------------------
def verdicts(res: dict, hybrid_label: str) -> list[dict]:
    """Per kind: hybrid (`hybrid_label`) against the better of keyword and semantic."""
    by = {c["label"]: c["kinds"] for c in res["configs"]}
    out = []
    for kind in KINDS:
        best = {m: max(by["keyword"][kind][m], by["semantic"][kind][m])
                for m in ("r1", "r10", "mrr")}
        got = by[hybrid_label][kind]
        out.append({"kind": kind, "best_single": best,
                    "hybrid": {m: got[m] for m in best},
                    "meets": all(got[m] >= best[m] for m in best)})
    return out


def best_hybrid(res: dict) -> str:
    """The settings-only hybrid meeting the target on most kinds, then the best mean MRR."""
    hybrids = [c["label"] for c in res["configs"]
               if c["label"].startswith("hybrid") and "no spelling" not in c["label"]]

    def merit(label: str) -> tuple[int, bool, float]:
        kinds = next(c for c in res["configs"] if c["label"] == label)["kinds"]
        return (sum(v["meets"] for v in verdicts(res, label)), kinds["name"]["r1"] >= 0.9,
                float(np.mean([kinds[k]["mrr"] for k in KINDS])))

    return max(hybrids, key=merit)


def report(res: dict) -> tuple[str, str]:
    header = ["configuration", *(f"{k} (n={res['queries'][k]})" for k in KINDS)]
    rows = [[c["label"], *(f"{c['kinds'][k]['r1']:.3f} / {c['kinds'][k]['r10']:.3f} / "
                           f"{c['kinds'][k]['mrr']:.3f}" for k in KINDS)]
            for c in res["configs"]]
    target_rows = [[label, v["kind"], *(f"{v['hybrid'][m]:.3f} / {v['best_single'][m]:.3f}"
                                        for m in ("r1", "r10", "mrr")),
                    "yes" if v["meets"] else "**no**"]
                   for label, vs in res["targets"].items() for v in vs]
    names, m = res["names"], res["machine"]
    default_kinds = next(c for c in res["configs"] if c["label"] == res["default"])["kinds"]
    split = next(c for c in res["configs"] if c["label"] == "semantic")["kinds"]["name"]
    md = "\n\n".join([
        "# Search quality: keyword, semantic and hybrid on the demo catalogue",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores; {m['date']}. Load "
        f"average (1/5/15 min) before: {res['load_before']}, after: {res['load_after']}.",
        f"Command: `{res['command']}`",
        f"Catalogue: {res['catalogue']} ({res['points']:,} products imported in "
        f"{res['import_s']:.0f} s, moderation and tagging off); model {res['model']}. "
        f"Queries through `Search.ask` / `Search.search` (the API's path), limit {LIMIT}, "
        f"seed {res['seed']}. Names: {names['distinct_names']:,} distinct among "
        f"{names['products']:,} products, {names['unique_names']:,} of them unique (so "
        f"{names['products_with_unique_name']:,} products have a name of their own; the "
        f"largest group shares one name {names['largest_name_group']} times); a name "
        "query counts every product with that name as relevant.",
        "Each cell: R@1 / R@10 / MRR. R@10: name, typo and mixed queries, a relevant "
        "product in the top 10; brand, colour and pattern queries, the relevant share of "
        "the top 10 over min(10, relevant). MRR over the top 10. Hybrid is words first "
        "unless it says `one list`; keyword and hybrid search the spelling of unknown words "
        "too unless they say `no spelling`.",
        markdown_table(header, rows),
        "## Target: hybrid >= the better of keyword and semantic on every kind, name R@1 "
        ">= 0.9",
        "Each cell: hybrid / the better single mode.",
        markdown_table(["hybrid", "kind", "R@1", "R@10", "MRR", "meets"], target_rows),
        f"Semantic name R@1 by the queried product's split (training / held out): "
        f"{split['r1_by_split'].get('train', float('nan')):.3f} / "
        f"{split['r1_by_split'].get('validation', float('nan')):.3f}. Typo queries whose "
        f"first typeahead suggestion (`GET /v1/suggest`) is the intended name: "
        f"{res['typo_suggested']:.3f}.",
        "`Search.search` time per query, p50 ms (the query vector already made; one "
        "thread, no page cache), "
        f"{res['default']}: " + ", ".join(
            f"{k} {default_kinds[k]['search_ms_p50']:.1f}" for k in KINDS) + ".",
        f"Wall time: {res['wall_s']:.0f} s (import {res['import_s']:.0f} s).",
    ]) + "\n"
    return md, text_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--catalogue", type=Path, default=ROOT / "data/demo/catalogue")
    p.add_argument("--model", type=Path, default=ROOT / "data/models/demo")
    p.add_argument("--queries", type=int, default=300, help="name (and typo) queries")
    p.add_argument("--weights", default="0.3,0.5,0.7", help="rrf keyword weights to sweep")
    p.add_argument("--rrf-k", default="2,60", help="rrf k values to sweep (2: Vitrine's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="40 name queries")
    p.add_argument("--out", default=None, help="results file stem under bench/results")
    args = p.parse_args(argv)
    if args.quick:
        args.queries = 40
    load_before, started = os.getloadavg(), time.perf_counter()
    with (args.catalogue / "styles.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    split = json.loads((args.model / "split.json").read_text())
    cases, names = build_cases(rows, args.queries, args.seed)
    cases += mixed_cases(rows, set(split["validation"]))
    split_of = {i: s for s in ("train", "validation") for i in split[s]}
    workdir = Path(tempfile.mkdtemp(prefix="vitrine-bench-quality-"))
    services = None
    try:
        services = import_demo(workdir / "data", args.catalogue, args.model)
        import_s = time.perf_counter() - started
        base = services.search.settings
        weights = sorted({float(w) for w in args.weights.split(",")} | {base.keyword_weight})
        ks = list(dict.fromkeys([Query.RRF_K, *(int(k) for k in args.rrf_k.split(","))]))
        configs = [Config("keyword"), Config("keyword", spelling=False), Config("semantic"),
                   *(Config("hybrid", "rrf", w, k) for k in ks for w in weights),
                   Config("hybrid", "rrf", base.keyword_weight, Query.RRF_K, False),
                   Config("hybrid", "dbsf"), Config("hybrid", "dbsf", spelling=False),
                   Config("hybrid", "dbsf", words_first=False)]
        results = []
        for config in configs:
            results.append(run_config(services.search, cases, config, base, split_of))
            log.info("%s: %s", config.label, {k: round(v["r1"], 3) for k, v in
                                               results[-1]["kinds"].items()})
        points, suggested = services.store.count(), typo_suggested(services.suggester, cases)
    finally:
        if services is not None:
            services.close()
        shutil.rmtree(workdir, ignore_errors=True)
    default = Config("hybrid", base.fusion, base.keyword_weight, Query.RRF_K,
                     base.hybrid_words_first).label
    catalogue = args.catalogue.relative_to(ROOT) if args.catalogue.is_relative_to(ROOT) \
        else args.catalogue
    res = {**run_record("bench.search_quality", argv, load_before), "seed": args.seed,
           "catalogue": str(catalogue), "model": args.model.name, "points": points,
           "import_s": import_s, "names": names, "configs": results, "default": default,
           "queries": {k: sum(c.kind == k for c in cases) for k in KINDS},
           "typo_suggested": suggested}
    res["best"] = best_hybrid(res)
    res["targets"] = {label: verdicts(res, label) for label in dict.fromkeys(
        [default, res["best"], "hybrid dbsf, one list"])}
    res["wall_s"] = time.perf_counter() - started
    md, text = report(res)
    write_results("search_quality_quick" if args.quick and not args.out
                  else args.out or "search_quality", res, md)
    print(text)
    print(f"best hybrid: {res['best']}; wall {res['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
