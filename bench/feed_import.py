"""Import throughput of a Merchant Center feed whose photos are URLs, served on loopback.

    .venv/bin/python -m bench.feed_import                  # 1,000 products, the demo model
    .venv/bin/python -m bench.feed_import --model data/models/vit-b32-random  # bench.ingest's
    .venv/bin/python -m bench.feed_import --quick          # 60 products, smoke test

Renders demo-catalogue products (demo.photo, `--size` px JPEGs), 1-4 photos each (each a
view of its own: pose, backdrop and light from a stream per photo), serves them from a
threaded HTTP server on 127.0.0.1 in a process of its own (so it holds no lock of the
importer's), and writes a Google Merchant Center TSV feed: a product per item, or several
items sharing an item_group_id (colour and size variants, each with its photo as
image_link, the others as additional_image_link). Then, in this process, the real path
a `vitrine import` takes: `vitrine.wiring.build_services` (fetch from private addresses
allowed, a temporary data folder, the demo model unless `--model`), then
`catalogue.importer.import_catalogue` and `Ingest.run_pending`, timed as:
- the feed, end to end: accept (read the feed, record the job) and indexing;
- the same feed again, unchanged: nothing should be fetched or encoded;
- the same photos as local files in the Kaggle layout (styles.csv + images/, one photo
  per product, so one product per photo), into a fresh data folder.
Stages are timed by wrapping what the pipeline calls (as bench.ingest does); the search
index build that `vitrine import` starts past 1,000 unindexed products is timed apart.
Results: bench/results/feed_import.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import markdown_table, run_record, text_table, write_results
from bench.feed_catalogue import render, serve, write_feed, write_kaggle
from bench.ingest.pipelines import StageTimer

log = logging.getLogger("bench.feed_import")


def instrument(services) -> StageTimer:
    import catalogue.ingest
    import catalogue.photos

    probe, ingest = StageTimer(), services.ingest
    probe.wrap(catalogue.photos, "fetch_all", "fetch (HTTP)", lambda a: len(a[1]))
    probe.wrap(catalogue.photos, "display_with", "display copy")  # while fetching
    probe.wrap(catalogue.ingest, "display_with", "display copy")  # while accepting files
    probe.wrap(services.media, "put", "store originals")
    probe.wrap(catalogue.photos.Photos, "decode", "decode", lambda a: len(a[1]))
    probe.wrap(services.encoder, "encode_images", "encode", lambda a: len(a[0]))
    ingest.enrichers = [probe.timed(e, "moderation + tagging") for e in ingest.enrichers]
    probe.wrap(services.store, "upsert", "upsert")
    probe.wrap(services.store, "retrieve", "retrieve indexed")
    for name in ("create_job", "claim", "finish_many"):
        probe.wrap(services.jobs, name, "job bookkeeping")
    return probe


def timed_import(services, probe: StageTimer, source: Path, served) -> dict:
    from catalogue.importer import import_catalogue

    served_before, (s0, n0) = served.value, probe.snapshot()
    t0 = time.perf_counter()
    accepted = import_catalogue(services.ingest, source)
    t1 = time.perf_counter()
    s1, _ = probe.snapshot()
    services.ingest.run_pending()
    t2 = time.perf_counter()
    s2, n2 = probe.snapshot()
    job = services.jobs.get(accepted.job_id)
    accept = {k: v - s0.get(k, 0) for k, v in s1.items() if v - s0.get(k, 0) > 1e-4}
    accept["other (read, parse, validate)"] = (t1 - t0) - sum(accept.values())
    index = {k: v - s1.get(k, 0) for k, v in s2.items() if v - s1.get(k, 0) > 1e-4}
    index["other"] = (t2 - t1) - sum(index.values())
    points = list(_all_points(services.store))
    photos = sum(len(p.payload.get("images", [])) for p in points)
    predicted = defaultdict(int)
    for p in points:
        for key, guess in (p.payload.get("predicted") or {}).items():
            predicted[f"{key} {'applied' if guess.get('applied') else 'suggested'}"] += 1
    return {"accept_s": t1 - t0, "index_s": t2 - t1, "total_s": t2 - t0,
            "products": job.total, "photos_indexed": photos, "added": job.added,
            "updated": job.updated, "unchanged": job.unchanged, "failed": job.failed,
            "warnings": len(job.warnings), "errors": [e.error for e in job.errors[:5]],
            "fetched": n2.get("fetch (HTTP)", 0) - n0.get("fetch (HTTP)", 0),
            "encoded": n2.get("encode", 0) - n0.get("encode", 0),
            "requests_served": served.value - served_before, "predicted": dict(predicted),
            "accept_stages_s": accept, "index_stages_s": index}


def _all_points(store):
    offset = None
    while True:
        points, offset = store.scroll(limit=1000, offset=offset)
        yield from points
        if offset is None:
            return


def open_services(data_dir: Path, encoder):
    from catalogue.settings import CatalogueSettings
    from vitrine.wiring import build_services

    settings = CatalogueSettings(data_dir=data_dir, fetch_allow_private=True)
    return build_services(settings, encoder=encoder, profile="local")


# -- the run -------------------------------------------------------------------------------------
def import_into(data_dir: Path, encoder, sources: list[tuple[str, Path]], served,
                build_index: bool = False) -> dict:
    services = open_services(data_dir, encoder)
    for enrich in services.ingest.enrichers:  # their one-time set-up (prompt vectors) first
        enrich([{"image_sha256": "0" * 64}], np.zeros((1, encoder.dim), np.float32))
    probe = instrument(services)
    runs = {}
    try:
        for name, source in sources:
            log.info("importing: %s", name)
            runs[name] = timed_import(services, probe, source, served)
            if build_index and name == sources[0][0]:
                t0 = time.perf_counter()  # what `vitrine import` does next at this size
                services.store.optimize()
                runs[name]["index_build_s"] = time.perf_counter() - t0
    finally:
        probe.restore()
        services.close()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feed_import",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512, help="photo side in pixels")
    parser.add_argument("--model", default="data/models/demo")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="60 products, results in /tmp")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per photo otherwise
    if args.quick:
        args.products = 60
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="vitrine-bench-feed-"))
    ctx = mp.get_context("spawn")
    port, served = ctx.Value("i", 0), ctx.Value("l", 0)
    server = None
    try:
        t0 = time.perf_counter()
        products, sizes = render(args.products, args.size, args.seed, root / "photos")
        render_s = time.perf_counter() - t0
        server = ctx.Process(target=serve, args=(str(root / "photos"), port, served),
                             daemon=True)
        server.start()
        while not port.value:
            time.sleep(0.05)
        feed = root / "feed.tsv"
        items = write_feed(products, f"http://127.0.0.1:{port.value}", feed)
        write_kaggle(products, root / "photos", root / "kaggle")
        log.info("%d products, %d photos (%.0f kB mean), rendered in %.0f s", len(products),
                 len(sizes), np.mean(sizes) / 1024, render_s)

        from PIL import Image

        from embedding.encoder import Encoder

        encoder = Encoder(model=args.model).load()
        encoder.encode_images([Image.new("RGB", (args.size, args.size))] * 2)  # warm-up
        runs = import_into(root / "data-feed", encoder,
                           [("feed", feed), ("feed again, unchanged", feed)], served,
                           build_index=True)
        runs |= import_into(root / "data-files", encoder, [("local files", root / "kaggle")],
                            served)
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)
    res = {**run_record("bench.feed_import", argv, load_before), "model": args.model,
           "model_dim": encoder.dim, "model_input": list(_input_size(encoder)),
           "products": len(products), "feed_items": items, "photos": len(sizes),
           "photo_px": args.size, "photo_kb_mean": float(np.mean(sizes) / 1024),
           "render_s": render_s, "fetch_concurrency": _settings().fetch_concurrency,
           "ingest_batch_size": _settings().ingest_batch_size, "runs": runs,
           "notes": args.note}
    md, text = report(res)
    if args.quick:
        (Path(tempfile.gettempdir()) / "feed_import_quick.md").write_text(md)
    else:
        write_results("feed_import", res, md)
    print(text)
    return 0


def _settings():
    from catalogue.settings import CatalogueSettings

    return CatalogueSettings()


def _input_size(encoder) -> tuple[int, int]:
    from catalogue.images import model_input_size

    return model_input_size(encoder.preprocess)


# -- the report ----------------------------------------------------------------------------------
RUNS = ["import", "products", "photos", "accept s", "indexing s", "total s", "products/s",
        "photos/s", "fetched", "encoded", "added / updated / unchanged / failed"]
STAGES = ["fetch (HTTP)", "display copy", "store originals", "decode", "encode",
          "moderation + tagging", "upsert", "retrieve indexed", "job bookkeeping"]


def _rows(res: dict) -> tuple[list, list]:
    runs = []
    for name, r in res["runs"].items():
        runs.append([name, f"{r['products']:,}", f"{r['photos_indexed']:,}",
                     f"{r['accept_s']:.1f}", f"{r['index_s']:.1f}", f"{r['total_s']:.1f}",
                     f"{r['products'] / r['total_s']:.1f}",
                     f"{r['photos_indexed'] / r['total_s']:.1f}", f"{r['fetched']:,}",
                     f"{r['encoded']:,}",
                     f"{r['added']} / {r['updated']} / {r['unchanged']} / {r['failed']}"])
    split = []
    picked = {n: r for n, r in res["runs"].items() if n in ("feed", "local files")}
    keys = STAGES + ["other (read, parse, validate)", "other"]
    for key in keys:
        row = [key]
        for r in picked.values():
            s = r["accept_stages_s"].get(key, 0) + r["index_stages_s"].get(key, 0)
            row += [f"{s:.2f}", f"{s / r['total_s']:.0%}"]
        if any(c not in ("0.00", "0%") for c in row[1:]):
            split.append(row)
    return runs, split


def report(res: dict) -> tuple[str, str]:
    runs, split = _rows(res)
    m = res["machine"]
    split_header = ["stage"] + [h for n in res["runs"] if n in ("feed", "local files")
                                for h in (f"{n} s", "share")]
    feed = res["runs"]["feed"]
    notes = [f"- The photo server answered {feed['requests_served']:,} requests during the first "
             f"import and {res['runs']['feed again, unchanged']['requests_served']:,} during "
             "the second.",
             f"- Search index build after the first import (what `vitrine import` does past "
             f"1,000 unindexed products): {feed.get('index_build_s', 0):.1f} s, not counted "
             "above.",
             f"- Rendering the photos (setup, not timed above): {res['render_s']:.0f} s.",
             "- accept: reading the feed or styles.csv, validating, storing uploaded files' "
             "originals and display copies (local files only), recording the job. indexing: "
             "`Ingest.run_pending`, in batches of "
             f"{res['ingest_batch_size']}, fetching {res['fetch_concurrency']} URLs at once.",
             *[f"- {name}: predicted fields (auto-tagging) on the products indexed: "
               f"{r['predicted']}." for name, r in res["runs"].items()
               if r["predicted"] and "again" not in name],
             *[f"- {name}: errors {r['errors']}" for name, r in res["runs"].items()
               if r["errors"]],
             *[f"- {n}" for n in res["notes"]]]
    md = "\n".join([
        "# Feed import: photos by URL against local files", "",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} cores, {m['memory_gib']} GiB; "
        f"{m['date']}; load average {res['load_before']} before, {res['load_after']} after.",
        "", f"Command: `{res['command']}`", "",
        f"{res['products']:,} demo products ({res['feed_items']:,} feed items: variants share "
        f"an item_group_id), {res['photos']:,} photos of {res['photo_px']} px "
        f"({res['photo_kb_mean']:.0f} kB JPEG mean) served over HTTP/1.1 on 127.0.0.1 by a "
        f"threaded server in its own process. Model `{res['model']}` ({res['model_dim']}-d, "
        f"{res['model_input'][0]} px input). Moderation and tagging on, as `vitrine import` "
        "runs them. Local files: the same photos as a styles.csv folder, one product a photo.",
        "", markdown_table(RUNS, runs), "", "## Where the time goes", "",
        markdown_table(split_header, split), "", "## Notes", "", *notes, ""])
    return md, text_table(RUNS, runs) + "\n\n" + text_table(split_header, split)


if __name__ == "__main__":
    raise SystemExit(main())
