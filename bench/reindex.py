"""Reindex throughput on the CPU: a catalogue re-encoded into another model's version.

    .venv/bin/python -m bench.reindex                  # 10,000 products, the demo model
    .venv/bin/python -m bench.reindex --products 500   # a smoke run

A catalogue of synthetic product photos (600 x 800 JPEG-like PNGs from the ingest
bench) is imported with the live model (`--model`, the demo model by default), then
`catalogue.reindex.Reindexer` re-encodes it into a second model of the same
architecture with other random weights and another vector size, from the stored
originals, exactly as `vitrine reindex` does: products per second end to end, beside
the second model's own image throughput on the same photos decoded (the ceiling),
and the check and swap included.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import tempfile
import time
from pathlib import Path

from bench.common import markdown_table, run_record, write_results
from bench.ingest.workload import product_photos


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--model", default="data/models/demo")
    p.add_argument("--out", default="reindex")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    os.environ.setdefault("VITRINE_MODERATION_ENABLED", "false")
    os.environ.setdefault("VITRINE_TAGGING_ENABLED", "false")

    from PIL import Image

    from catalogue.attributes import DEFAULT_SCHEMA
    from catalogue.ingest import Upload
    from catalogue.keywords import Keywords
    from catalogue.reindex import Reindexer
    from catalogue.settings import CatalogueSettings
    from catalogue.versions import ModelVersion, Versions
    from embedding.architecture import Architecture
    from embedding.encoder import Encoder
    from testkit.models import CORPUS, make_random_model
    from training.config import DEMO_RECIPE
    from vitrine.wiring import build_services, open_store

    with tempfile.TemporaryDirectory(prefix="vitrine-reindex-") as tmp:
        data = Path(tmp) / "data"
        settings = CatalogueSettings(data_dir=data)
        live_encoder = Encoder(model=args.model).load()
        arch = dataclasses.replace(DEMO_RECIPE.arch or Architecture(),
                                   embed_dim=live_encoder.dim * 2)
        other = Encoder(model=str(make_random_model(Path(tmp) / "other", arch, CORPUS,
                                                    seed=7))).load()
        services = build_services(settings, encoder=live_encoder)
        photos = product_photos(min(args.products, 500))
        started = time.perf_counter()
        services.ingest.accept(Upload({"id": f"p{i:06d}", "title": f"product {i}"},
                                      [photos[i % len(photos)]])
                               for i in range(args.products))
        services.ingest.run_pending()
        import_seconds = time.perf_counter() - started

        decoded = [Image.open(io.BytesIO(b)).convert("RGB") for b in photos[:256]]
        other.encode_images(decoded[:8])
        t0 = time.perf_counter()
        other.encode_images(decoded)
        model_only = len(decoded) / (time.perf_counter() - t0)

        versions = Versions(data / "jobs.sqlite3")
        version = versions.add(ModelVersion.of(other))
        target = open_store(settings, other.dim, DEFAULT_SCHEMA, version)
        reindexer = Reindexer(settings, services.store, target, other, services.media,
                              Keywords(DEFAULT_SCHEMA))
        t0 = time.perf_counter()
        progress = reindexer.run(versions, version)
        seconds = time.perf_counter() - t0
        assert versions.live().id == version.id and target.count() == args.products
        target.close()
        services.close()

    result = {**run_record("bench.reindex", argv, load_before), "products": args.products,
              "live_model": args.model, "other_dim": other.dim,
              "import_seconds": import_seconds, "reindex_seconds": seconds,
              "products_per_s": args.products / seconds,
              "model_only_images_per_s": model_only,
              "share_of_model_only": args.products / seconds / model_only,
              "encoded": progress.done, "failed": progress.failed}
    table = markdown_table(
        ["products", "reindex s", "products/s", "the model on decoded photos, images/s",
         "share"],
        [[args.products, f"{seconds:.1f}", f"{result['products_per_s']:.0f}",
          f"{model_only:.0f}", f"{result['share_of_model_only']:.0%}"]])
    m = result["machine"]
    markdown = (f"# Reindex throughput\n\nMachine: {m['cpu_model']}, {m['usable_cores']} cores, "
                f"{m['date']}; load before "
                f"{result['load_before']}, after {result['load_after']}.\n\n"
                f"Command: `{result['command']}`\n\n{table}\n\nImport with the live model "
                f"took {import_seconds:.1f} s. Every product re-encoded from its stored "
                "original (decoded at the model's input size on both cores), checked "
                "(counts, a sample searched by its own photo) and swapped live.\n")
    write_results(args.out, result, markdown)
    print(markdown)
    return result


if __name__ == "__main__":
    main()
