"""Backup and restore time and size of the local profile's data folder (catalogue.backup).

    .venv/bin/python -m bench.backup                  # 100,000 products, 512-d, indexed
    .venv/bin/python -m bench.backup --quick          # 2,000 products: a smoke run

A data folder as `vitrine serve` keeps it, written straight rather than ingested: the
synthetic catalogue of bench.search_catalogue (CLIP-like 512-d photo vectors, realistic
payloads and their words) in the live version's EdgeStore, the HNSW index built as a
server builds it in the background (`--no-index` to skip), one original per product in
the media folder (`--original-bytes` of random bytes: product photos after Vitrine's
checks are 100-500 KB; the default is smaller so that the disk, not the bench, bounds a
100k run), one done import job with an item per product, and the model versions registry.
Then `create_backup` with the store open, as the running server makes one (the time the
store's writes wait is reported apart), and `restore_backup` into an empty folder, whose
checksum pass is also timed alone; the restored shard is opened and counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.common import dir_size, markdown_table, run_record, write_results

BATCH = 500


def fill(data: Path, n: int, dim: int, original_bytes: int, index: bool):
    """The data folder; returns its settings, the live version and the open store."""
    from bench.search_catalogue import schema_indexes, synthetic_products
    from catalogue.attributes import DEFAULT_SCHEMA
    from catalogue.backup import shard_folder
    from catalogue.jobs import JobStore, NewItem, Outcome
    from catalogue.keywords import Keywords
    from catalogue.media import FolderMediaStore
    from catalogue.products import normalise
    from catalogue.settings import CatalogueSettings
    from catalogue.store.base import StoredPoint, point_id
    from catalogue.store.edge import EdgeStore
    from catalogue.versions import ModelVersion, Versions

    settings = CatalogueSettings(data_dir=data)
    version = ModelVersion("bench-synthetic", "bench/synthetic", dim, "synthetic", state="live")
    versions = Versions(settings.jobs_db)
    versions.add(version)
    versions.make_live(version.id)
    versions.close()
    store = EdgeStore(shard_folder(settings, version), dim, settings.optimize_threshold,
                      hnsw_ef=settings.hnsw_ef, indexes=schema_indexes())
    media, jobs = FolderMediaStore(settings.media_dir), JobStore(settings.jobs_db)
    keywords = Keywords.configured(DEFAULT_SCHEMA, settings)
    vectors, payloads = synthetic_products(n, dim, version.model)
    rng = np.random.default_rng(1)
    items = []
    for start in tqdm(range(0, n, BATCH), desc="products", leave=False):
        points = []
        for payload, vector in zip(payloads[start:start + BATCH], vectors[start:start + BATCH],
                                   strict=True):
            digest = media.put(rng.bytes(original_bytes))
            payload = normalise({**payload, "image_sha256": digest,
                                 "images": [{"sha256": digest, "display_sha256": digest}]})
            points.append(StoredPoint(point_id(payload["product_id"]), payload, vector,
                                      keywords.document(payload)))
            items.append(NewItem(payload["product_id"], {"id": payload["product_id"]}, digest))
        store.upsert(points)
    job = jobs.create_job("import", items)
    while claimed := jobs.claim(1000, job):
        jobs.finish_many([Outcome(item, change="added") for item in claimed])
    jobs.close()
    index_s = 0.0
    if index:
        started = time.perf_counter()
        store.optimize()
        index_s = time.perf_counter() - started
    return settings, version, store, index_s


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--products", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--original-bytes", type=int, default=16_384)
    p.add_argument("--no-index", action="store_true", help="leave the shard unindexed")
    p.add_argument("--quick", action="store_true", help="2,000 products: a smoke run")
    p.add_argument("--workdir", help="where the data folders go (default: a temp folder)")
    p.add_argument("--out", default="backup", help="bench/results/<out>.{json,md}")
    args = p.parse_args(argv)
    if args.quick:
        args.products = 2_000
    load_before = os.getloadavg()

    from catalogue.backup import read_manifest, restore_backup, verify_backup
    from catalogue.settings import CatalogueSettings
    from catalogue.store.edge import EdgeStore

    with tempfile.TemporaryDirectory(prefix="vitrine-backup-", dir=args.workdir) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        settings, version, store, index_s = fill(root / "data", args.products, args.dim,
                                                 args.original_bytes, not args.no_index)
        fill_s = time.perf_counter() - started
        data_bytes = dir_size(settings.data_dir)

        from catalogue.backup import create_backup

        started = time.perf_counter()
        summary = create_backup(settings, store, root / "backup")
        backup_s = time.perf_counter() - started
        store.close()
        manifest = read_manifest(root / "backup")

        started = time.perf_counter()
        verify_backup(root / "backup", manifest)
        verify_s = time.perf_counter() - started
        restored = CatalogueSettings(data_dir=root / "restored")
        started = time.perf_counter()
        restore_backup(root / "backup", restored, version)
        restore_s = time.perf_counter() - started
        check = EdgeStore(restored.shard_dir / version.id, args.dim)
        assert check.count() == args.products, (check.count(), args.products)
        check.close()
        shard_bytes = manifest["files"]["shard.tar"]["bytes"]
        backup_bytes = dir_size(root / "backup")
        shutil.rmtree(root / "restored")

    result = {**run_record("bench.backup", argv, load_before), "products": args.products,
              "dim": args.dim, "indexed": not args.no_index,
              "original_bytes": args.original_bytes, "fill_s": round(fill_s, 1),
              "index_build_s": round(index_s, 1), "data_folder_bytes": data_bytes,
              "backup_s": round(backup_s, 2),
              "writes_paused_s": summary.writes_paused_seconds,
              "backup_bytes": backup_bytes, "shard_archive_bytes": shard_bytes,
              "verify_s": round(verify_s, 2), "restore_s": round(restore_s, 2),
              "originals": summary.originals}
    machine = result["machine"]
    mb = 1e6
    table = markdown_table(
        ["products", "data folder MB", "backup MB", "shard archive MB", "backup s",
         "writes paused s", "checksums s", "restore s (checksums included)"],
        [[args.products, f"{data_bytes / mb:.0f}", f"{backup_bytes / mb:.0f}",
          f"{shard_bytes / mb:.0f}", f"{backup_s:.1f}", f"{summary.writes_paused_seconds:.2f}",
          f"{verify_s:.1f}", f"{restore_s:.1f}"]])
    markdown = (
        f"# Backup and restore\n\nMachine: {machine['cpu_model']}, {machine['usable_cores']} "
        f"cores, {machine['date']}; load before {result['load_before']}, after "
        f"{result['load_after']}.\n\nCommand: `{result['command']}`\n\n{table}\n\n"
        f"{args.dim}-d photo vectors, {'an HNSW index' if not args.no_index else 'no index'}"
        f" (built in {index_s:.1f} s), one {args.original_bytes}-byte original per product. "
        "The backup is made with the store open, as the running server makes it; writes wait "
        "only while the shard is archived. The restore checks every checksum, then writes "
        "(the engine unpacks the shard) and compares the restored shard with the one backed "
        "up.\n")
    write_results(args.out, result, markdown)
    print(markdown)
    return result


if __name__ == "__main__":
    main()
