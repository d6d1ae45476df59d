"""ViT-B/32-size throughput on a GPU: the model alone, ingest end to end, and training.

    python -m bench.gpu [--device cuda] [--quick] [--out NAME]

1. Model only: the random ViT-B/32-sized CLIP's image tower (ensure_vit_b32) on pixels
   already on the device, batch 64 and 256, bfloat16 and (CUDA) float16, synchronised.
2. Ingest: catalogue.ingest.Ingest as bench.ingest builds it (accept, untimed; then claim,
   read, decode and resize on CPU threads, one forward pass a batch on the device, upsert)
   over generated 600x800 photos, same dtype and batch, right after (1), twice: one batch
   at a time, and with the next batch read and decoded while one encodes
   (catalogue.ahead, VITRINE_INGEST_READ_AHEAD): images/s, the ratio to (1), the stage split. Timed here, not by bench.ingest.pipelines: run_model_only
   leaves the pixels on the CPU, and run_pipeline wraps `Ingest.decode`, now `Photos.decode`.
3. Training: training.loop.train from scratch, Architecture.vit_b32(), batch 128 (bfloat16
   autocast on CUDA; augmenting and tokenising stay on the CPU), on a demo catalogue
   rendered at 224 px: steps/s, images/s, the peak GPU memory.

Writes bench/results/<out>.json and .md; `--quick` shrinks every size (a CPU run takes about
two minutes): a smoke check, not a figure. The device machine's python3 has torch and
transformers but not pydantic(-settings) or qdrant-edge-py, and fetches nothing. Here, once,
in the repo root (.whl/ is git-ignored):

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl pydantic==2.14.4 pydantic_core==2.50.5 \
      pydantic-settings==2.16.3 python-dotenv==1.2.4 typing-inspection==0.4.5 \
      annotated-types==0.8.0 typing_extensions==4.16.0 qdrant-edge-py==0.9.0

then the device tool's run with carry [".whl"], timeout_s 600 (about 5 minutes on an H100),
and copy gpu.json and gpu.md from the reply's files_at into bench/results/:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; export HF_HUB_OFFLINE=1 TQDM_DISABLE=1 PYTHONUNBUFFERED=1; python3 -m bench.gpu --device cuda 2>&1 | tee $OUT/gpu.log; rc=${PIPESTATUS[0]}; cp bench/results/gpu.json bench/results/gpu.md $OUT/; exit $rc
"""  # noqa: E501  (the device command above is one line, to be passed as it stands)

from __future__ import annotations

import argparse
import gc
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bench.common import markdown_table, run_record, write_results
from bench.ingest.pipelines import STAGES, StageTimer
from bench.ingest.workload import FASHION_PHRASES, ensure_vit_b32, product_photo

log = logging.getLogger("bench.gpu")

FULL = {"batches": (64, 256), "model_images": 8192, "warmup": 5, "photos": 2048,
        "products": 1024, "epochs": 20, "train_batch": 128, "max_minutes": 3.0}
QUICK = {"batches": (8, 16), "model_images": 32, "warmup": 1, "photos": 32,
         "products": 40, "epochs": 1, "train_batch": 8, "max_minutes": 2.0}
PHOTO_CHUNK = 64  # photos per seed: the same photos whatever the number of workers


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _photo_chunk(seed_n: tuple[int, int]) -> list[bytes]:
    rng = np.random.default_rng(seed_n[0])
    return [product_photo(rng) for _ in range(seed_n[1])]


def make_photos(n: int) -> list[bytes]:
    """`n` generated 600x800 JPEGs, drawn on every core (50-80 ms each on one)."""
    chunks = [(i, min(PHOTO_CHUNK, n - start)) for i, start in enumerate(range(0, n, PHOTO_CHUNK))]
    workers = min(len(chunks), len(os.sched_getaffinity(0)))
    if workers <= 1:
        return [p for chunk in map(_photo_chunk, chunks) for p in chunk]
    # spawn: fork would copy torch's threads (and, later, CUDA) into the workers
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [p for chunk in pool.map(_photo_chunk, chunks) for p in chunk]


def model_only(encoder, batch_size: int, n_images: int, warmup: int) -> dict:
    """The image tower alone on one pixel batch already on the encoder's device."""
    model, device = encoder.model, encoder.device
    side = model.config.vision_config.image_size
    pixels = torch.randn(batch_size, 3, side, side, generator=torch.Generator().manual_seed(0))
    pixels = pixels.to(device, encoder.dtype)
    steps = max(3, math.ceil(n_images / batch_size))
    with torch.inference_mode():
        for _ in range(warmup):
            model.get_image_features(pixel_values=pixels)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            model.get_image_features(pixel_values=pixels)
        _sync(device)
        seconds = time.perf_counter() - t0
    return {"images": steps * batch_size, "seconds": seconds,
            "images_per_s": steps * batch_size / seconds}


def run_ingest(encoder, photos: list[bytes], batch_size: int, workdir: Path,
               read_ahead: bool) -> dict:
    """Accept `photos` as uploads, then time `Ingest.run_pending` over them (with or without
    the next batch read and decoded while one encodes: catalogue.ahead), stage by stage."""
    from catalogue.ingest import Ingest, Upload
    from catalogue.jobs import JobStore
    from catalogue.media import FolderMediaStore
    from catalogue.photos import Photos
    from catalogue.settings import CatalogueSettings
    from catalogue.store.edge import EdgeStore

    shutil.rmtree(workdir, ignore_errors=True)
    settings = CatalogueSettings(data_dir=workdir, ingest_batch_size=batch_size,
                                 ingest_read_ahead=read_ahead)
    store = EdgeStore(settings.shard_dir, encoder.dim, settings.optimize_threshold)
    media, jobs = FolderMediaStore(settings.media_dir), JobStore(settings.jobs_db)
    ingest = Ingest(settings, encoder, store, media, jobs)  # no enrichers, no foreground
    uploads = [Upload({"id": f"p{i:05d}", "title": FASHION_PHRASES[i % len(FASHION_PHRASES)],
                       "category": "Dresses", "colour": "red", "price": 10.0 + i}, [data])
               for i, data in enumerate(photos)]
    t0 = time.perf_counter()
    job_id = ingest.accept(uploads).job_id  # what the API does before its 202: not in the rate
    accept_s = time.perf_counter() - t0
    # decode: one span over its threads; forward: the copy included. With read-ahead the
    # stages overlap: their shares may add up to more than the whole.
    timer = StageTimer()
    for owner, attr, stage in [
            (Photos, "decode", "read + decode"), (encoder, "encode_pixels", "forward"),
            (type(encoder.preprocess), "__call__", "preprocess"), (store, "upsert", "upsert"),
            (store, "retrieve", "retrieve existing"), (jobs, "claim", "job bookkeeping"),
            (jobs, "finish_many", "job bookkeeping")]:
        timer.wrap(owner, attr, stage)
    t0 = time.perf_counter()
    try:
        ingest.run_pending()
        seconds = time.perf_counter() - t0
    finally:
        timer.restore()
    job = jobs.get(job_id)
    assert job.succeeded == len(photos) == store.count(), job
    stages = dict(timer.seconds)
    stages["other"] = max(0.0, seconds - sum(stages.values()))
    store.close()
    jobs.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return {"images": len(photos), "seconds": seconds, "images_per_s": len(photos) / seconds,
            "accept_s": accept_s, "stages_s": stages}


def training_run(device: torch.device, sizes: dict, workdir: Path) -> dict:
    import training.loop as loop
    from demo.generator import generate
    from embedding.architecture import Architecture
    from training.config import TrainConfig
    from training.data import Batcher

    csv_path = generate(workdir / "catalogue", n_products=sizes["products"], seed=0,
                        image_size=224, n_prohibited=0, progress=False)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainConfig(device=str(device), epochs=sizes["epochs"], progress=False,
                         batch_size=sizes["train_batch"], max_minutes=sizes["max_minutes"])
    timer = StageTimer()
    timer.wrap(loop, "_validation_loss", "validation")
    timer.wrap(Batcher, "__call__", "batch preparation")  # validation's batches included
    try:
        r = loop.train(None, csv_path, workdir / "model", config, Architecture.vit_b32())
    finally:
        timer.restore()
    batch, loop_s = min(config.batch_size, r.n_train), r.train_seconds
    out = {"products": sizes["products"], "n_train": r.n_train, "batch_size": batch,
           "epochs": r.epochs, "steps": r.steps, "train_loop_s": loop_s, "total_s": r.seconds,
           "validation_s": timer.seconds["validation"], "stopped_by_budget": r.stopped_by_budget,
           "batch_preparation_s": timer.seconds["batch preparation"],
           "steps_per_s": r.steps / loop_s, "images_per_s": r.steps * batch / loop_s,
           "steps_per_s_without_validation": r.steps / (loop_s - timer.seconds["validation"]),
           "peak_rss_mib": r.peak_rss_mb, "final_train_loss": r.train_losses[-1]}
    if device.type == "cuda":
        out["peak_gpu_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
    return out


def report(res: dict) -> str:
    m, gpu, t = res["machine"], res["gpu"], res["training"]
    where = f"{gpu['name']} ({gpu['memory_gib']} GiB, CUDA {gpu['cuda']})" if gpu else "no GPU"
    out = [f"# GPU: ViT-B/32-size model only, ingest and training ({res['device']})", "",
           f"{where}; {m['cpu_model']}, {m['usable_cores']} usable cores; {m['date']}; torch "
           f"{res['torch']}; load {res['load_before']} -> {res['load_after']}. "
           f"`{res['command']}`" + (" (a smoke check, not a figure)" if res["quick"] else ""),
           "", f"## Model only and ingest ({res['photos']} generated 600x800 JPEGs through "
           "catalogue.ingest.Ingest: decode and resize on CPU threads, forward on the device)",
           ""]
    rows = []
    for mo, ing in zip(res["model_only"], res["ingest"], strict=True):
        for name, run in (("one batch at a time", ing), ("read-ahead", ing["read_ahead"])):
            share = {s: run["stages_s"].get(s, 0) / run["seconds"] for s in STAGES}
            rows.append([mo["dtype"], mo["batch"], _fmt(mo["images_per_s"]), name,
                         _fmt(run["images_per_s"]), f"{100 * run['ratio_to_model_only']:.1f}%",
                         ", ".join(f"{s} {100 * v:.0f}%" for s, v in share.items()
                                   if v >= 0.005)])
    out += [markdown_table(["dtype", "batch", "model-only img/s", "ingest", "ingest img/s",
                            "ingest / model", "ingest time split (overlapping)"], rows), "",
            "## Training (training.loop.train, Architecture.vit_b32(), from scratch)", ""]
    if res["errors"]:
        out[4:4] = ["**Failed:** " + "; ".join(res["errors"]), ""]
    if t is None:
        return "\n".join(out + ["(no figures: training failed)", ""])
    gpu_mib = (f"; GPU {t['peak_gpu_allocated_mib']:,.0f} allocated, "
               f"{t['peak_gpu_reserved_mib']:,.0f} reserved") if gpu else ""
    rows = [["products (train) / batch / epochs / steps",
             f"{t['products']} ({t['n_train']}) / {t['batch_size']} / {t['epochs']} / "
             f"{t['steps']}" + (" (stopped by budget)" if t["stopped_by_budget"] else "")],
            ["steps/s: loop / without validation passes",
             f"{t['steps_per_s']:.3g} / {t['steps_per_s_without_validation']:.3g}"],
            ["images/s (steps x batch / loop s)", _fmt(t["images_per_s"])],
            ["seconds: loop / validation / batch preparation (CPU) / whole train()",
             f"{t['train_loop_s']:.1f} / {t['validation_s']:.1f} / "
             f"{t['batch_preparation_s']:.1f} / {t['total_s']:.1f}"],
            ["peak memory MiB", f"process RSS {t['peak_rss_mib']:,.0f}{gpu_mib}"]]
    return "\n".join(out + [markdown_table(["measure", "value"], rows), ""])


def main(argv: list[str] | None = None) -> int:
    from embedding.encoder import Encoder
    from embedding.runtime import configure_threads

    configure_threads()  # as an ingest worker does (vitrine.wiring)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument("--dtypes", nargs="+", choices=("float32", "bfloat16", "float16"),
                   help="default: bfloat16, and float16 on CUDA")
    p.add_argument("--out", help="results file stem under bench/results (default: gpu...)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA device")
    sizes = QUICK if args.quick else FULL
    dtypes = args.dtypes or (["bfloat16", "float16"] if device.type == "cuda" else ["bfloat16"])
    out = args.out or "gpu" + ("_cpu" if device.type == "cpu" else "") \
        + ("_quick" if args.quick else "")
    load_before = os.getloadavg()

    photos = make_photos(sizes["photos"])
    folder = ensure_vit_b32()
    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-gpu-"))
    model_rows, ingest_rows, errors, train = [], [], [], None
    try:  # one failure must not cost the rest of a one-shot device run: it is reported
        for dtype in dtypes:
            encoder = None
            for batch in sizes["batches"]:
                try:
                    encoder = encoder or Encoder(model=str(folder), device=str(device),
                                                 dtype=dtype).load()
                    mo = model_only(encoder, batch, sizes["model_images"], sizes["warmup"])
                    ing = run_ingest(encoder, photos, batch, work / "ingest", False)
                    ahead = run_ingest(encoder, photos, batch, work / "ingest", True)
                except Exception as exc:
                    log.exception("%s batch %d failed", dtype, batch)
                    errors.append(f"{dtype} batch {batch}: {exc!r}")
                    continue
                for run in (ing, ahead):
                    run["ratio_to_model_only"] = run["images_per_s"] / mo["images_per_s"]
                model_rows.append({"dtype": dtype, "batch": batch, **mo})
                ingest_rows.append({"dtype": dtype, "batch": batch, **ing, "read_ahead": ahead})
                log.info("%s batch %d: model only %.1f img/s, ingest %.1f img/s (%.1f%%), "
                         "read ahead %.1f img/s (%.1f%%)", dtype, batch, mo["images_per_s"],
                         ing["images_per_s"], 100 * ing["ratio_to_model_only"],
                         ahead["images_per_s"], 100 * ahead["ratio_to_model_only"])
            del encoder
        gc.collect()  # the encoders' weights must not count in training's peak
        try:
            train = training_run(device, sizes, work)
            log.info("training: %.3g steps/s, %.1f img/s", train["steps_per_s"],
                     train["images_per_s"])
        except Exception as exc:
            log.exception("training failed")
            errors.append(f"training: {exc!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    gpu = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
               "multiprocessors": props.multi_processor_count, "cuda": torch.version.cuda}
    res = {**run_record("bench.gpu", argv, load_before), "torch": torch.__version__,
           "device": str(device), "gpu": gpu, "quick": args.quick, "photos": len(photos),
           "photo_kb": float(np.mean([len(x) for x in photos]) / 1024),
           "model_only": model_rows, "ingest": ingest_rows, "training": train,
           "errors": errors}
    md = report(res)
    write_results(out, res, md)
    print(md)
    print(f"wrote bench/results/{out}.json and bench/results/{out}.md")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
