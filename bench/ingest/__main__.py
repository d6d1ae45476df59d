"""The command line: `python -m bench.ingest`, build the model and photos, run, report.

See the package docstring (bench/ingest/__init__.py) for what is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import bench.ingest
from bench.common import run_record, write_results
from bench.ingest.pipelines import NaiveLoop
from bench.ingest.report import notes, report
from bench.ingest.rounds import paired_rounds, summarise, sweep
from bench.ingest.workload import ensure_vit_b32, product_photos, set_threads


def main(argv: list[str] | None = None) -> int:
    from embedding.runtime import configure_threads

    configure_threads()  # as an ingest worker does (vitrine.wiring)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bench.ingest",
                                     description=bench.ingest.__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--naive-photos", type=int, default=32,
                        help="the naive loop is slow; its rate is per photo anyway")
    parser.add_argument("--batch-size", type=int, default=32, help="for the targets")
    parser.add_argument("--sweep", type=int, nargs="*", default=[16, 64],
                        help="other batch sizes to try (one run each)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the usable core count)")
    parser.add_argument("--control-threads", type=int, default=1,
                        help="also run the rounds at this many threads (0: skip)")
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--out", default=None, help="results file stem under bench/results")
    parser.add_argument("--render", metavar="JSON", help="only rewrite the .md from a results file")
    args = parser.parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        res["notes"] = notes(res)
        Path(args.render).with_suffix(".md").write_text(report(res)[0])
        return 0
    if args.quick:
        args.photos, args.naive_photos, args.batch_size, args.sweep = 16, 4, 16, []
        args.dtypes, args.rounds, args.control_threads = ["float32"], 1, 0
    out = args.out or ("ingest_quick" if args.quick else "ingest")
    threads = args.threads or len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    folder = ensure_vit_b32()

    from catalogue.images import decode_image
    from embedding.encoder import Encoder

    photos = product_photos(max(args.photos, args.naive_photos))
    encoders = {}
    for dtype in args.dtypes:
        encoders[dtype] = Encoder(model=str(folder), dtype=dtype)
        encoders[dtype].encode_images([Image.new("RGB", (224, 224))] * 2)  # warm-up
    naive = NaiveLoop(folder)
    workroot = Path(tempfile.mkdtemp(prefix="vitrine-bench-ingest-"))
    work = workroot / "data"
    try:
        set_threads(threads)
        rounds = paired_rounds(naive, encoders, photos[:args.photos], args.naive_photos,
                               args.batch_size, args.rounds, work)
        main_run = {"threads": threads, "rounds": rounds,
                    "summary": summarise(rounds, args.dtypes),
                    "sweep": sweep(encoders, photos[:args.photos], args.sweep, work)}
        control = None
        if args.control_threads and args.control_threads != threads:
            set_threads(args.control_threads)
            c_rounds = paired_rounds(naive, encoders, photos[:max(64, args.photos // 2)],
                                     args.naive_photos, args.batch_size, args.rounds, work)
            control = {"threads": args.control_threads, "rounds": c_rounds,
                       "summary": summarise(c_rounds, args.dtypes)}
            set_threads(threads)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    cosine = None
    if {"float32", "bfloat16"} <= encoders.keys():
        sample = [decode_image(p) for p in photos[:16]]
        full, half = (encoders[d].encode_images(sample) for d in ("float32", "bfloat16"))
        cos = (full * half).sum(axis=1)
        cosine = {"min": float(cos.min()), "mean": float(cos.mean()), "n": len(sample)}
    any_encoder = next(iter(encoders.values()))
    res = {
        **run_record("bench.ingest", argv, load_before), "torch": torch.__version__,
        "n_photos": args.photos, "naive_photos": args.naive_photos, "rounds": args.rounds,
        "photo_kb": float(np.mean([len(p) for p in photos]) / 1024),
        "params_m": sum(p.numel() for p in any_encoder.model.parameters()) / 1e6,
        "image_size": any_encoder.model.config.vision_config.image_size,
        "batch_size": args.batch_size, "main": main_run, "control": control,
        "bf16_cosine": cosine,
    }
    res["notes"] = notes(res)
    md, text = report(res)
    write_results(out, res, md)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
