"""Ingest throughput: a naive per-image loop, the Vitrine pipeline, and the model alone.

    .venv/bin/python -m bench.ingest           # 256 photos, batch 32 (+16, 64), f32 and bf16
    .venv/bin/python -m bench.ingest --quick   # smoke run, under a minute

The model is ViT-B/32-sized (`Architecture.vit_b32()`) with random weights: timing does
not depend on what the weights learnt. It is built once into data/models/vit-b32-random
(git-ignored) and loaded through `Encoder(model=folder)`, the path a hub id takes. Its
tokenizer is trained on a small corpus, so its vocabulary is below CLIP's 49,408; that
touches only the text tower, which ingest never runs.

Photos are generated: 600x800 JPEGs of a garment-like shape on a light background with
texture and sensor noise (about 60-100 kB each, as catalogue photos are).

(a) naive: per photo, PIL decode, the HF image processor, `model.get_image_features`
    on one image, float32 - what a first script does.
(b) Vitrine: the upload is accepted as the API does (validated, original stored, job
    recorded), then what `Ingest.run_pending` does - claim a batch, `Ingest.process` it:
    read originals from the media store and decode them (on every core), batched fast
    preprocessing, one forward pass per batch, upsert into an EdgeStore, record each
    item done. Stages are timed by wrapping the functions the pipeline calls; "other"
    is the rest of the loop.
(c) model only: `get_image_features` on pre-made pixel tensors, same dtype and batch size.

torch uses as many threads as this process may use cores (a control repeats the rounds
at one thread). The targets are judged on rounds of (a), then (b) and (c) per dtype, run
back to back; ratios are taken within a round and the median over rounds is reported,
because on a shared machine runs minutes apart can differ two- or threefold.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from bench.common import markdown_table, run_record, text_table, write_results

log = logging.getLogger("bench.ingest")

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "data" / "models" / "vit-b32-random"
PHOTO_SIZE = (600, 800)  # width, height: a portrait product shot
TARGET_VS_NAIVE, TARGET_VS_MODEL = 3.0, 0.80

FASHION_PHRASES = [
    "red summer dress", "black leather jacket", "white sneakers", "blue denim jeans",
    "navy blue polo shirt", "floral maxi dress", "grey wool coat", "striped cotton t-shirt",
    "brown ankle boots", "pink silk blouse", "green parka with hood", "beige trench coat",
    "black high heels", "yellow raincoat", "men's slim fit chinos", "women's running shoes",
    "red handbag", "white linen shirt", "knitted cardigan", "polka dot skirt",
    "leather belt", "denim shorts", "black evening gown", "sports bra", "wool scarf",
    "checked flannel shirt", "cropped hoodie", "pleated midi skirt", "sandals with straps",
    "puffer jacket", "cashmere sweater", "printed kimono", "skinny jeans for women",
    "oversized blazer", "swimsuit with ruffles", "kids rain boots", "tote bag canvas",
    "velvet dress", "cargo trousers", "gold earrings",
]


# -- the model ---------------------------------------------------------------------------------
def tokenizer_corpus() -> list[str]:
    """Product names and descriptions of the demo catalogue, else a list of phrases."""
    import csv

    corpus = list(FASHION_PHRASES)
    styles = ROOT / "data" / "demo" / "catalogue" / "styles.csv"
    if styles.exists():
        with styles.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                corpus += [row.get("productDisplayName") or "", row.get("description") or ""]
    return [t for t in corpus if t]


def ensure_vit_b32(folder: Path = MODEL_DIR) -> Path:
    """The ViT-B/32-sized random CLIP, built and saved once (a few hundred MB)."""
    folder = Path(folder)
    if (folder / "config.json").exists() and any(folder.glob("*.safetensors")):
        return folder
    from embedding.architecture import Architecture
    from testkit.models import make_random_model

    log.info("building a random ViT-B/32-sized CLIP into %s (once)", folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    make_random_model(tmp, Architecture.vit_b32(), tokenizer_corpus())
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # a half-written folder never looks like a model
    return folder


def set_threads(threads: int | None = None) -> int:
    """torch threads: as many as this process may use cores, unless told otherwise."""
    threads = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    return threads


# -- photos ------------------------------------------------------------------------------------
def product_photo(rng: np.random.Generator, size=PHOTO_SIZE) -> bytes:
    """A garment-ish silhouette with a texture, on a light backdrop, with camera noise."""
    w, h = size
    backdrop = np.linspace(rng.uniform(228, 245), 252, h)[:, None, None] * np.ones((1, w, 3))
    image = Image.fromarray(backdrop.astype(np.uint8))
    colour = tuple(int(c) for c in rng.integers(20, 235, 3))
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    cx, top, bottom = w / 2 + rng.uniform(-30, 30), h * rng.uniform(0.08, 0.18), h * 0.92
    shoulder, hem = w * rng.uniform(0.18, 0.28), w * rng.uniform(0.25, 0.42)
    draw.polygon([(cx - shoulder, top), (cx + shoulder, top), (cx + shoulder * 0.8, h * 0.4),
                  (cx + hem, bottom), (cx - hem, bottom), (cx - shoulder * 0.8, h * 0.4)], fill=255)
    draw.ellipse([cx - 40, top - 25, cx + 40, top + 25], fill=0)  # neckline
    yy, xx = np.mgrid[0:h, 0:w]
    period = rng.uniform(8, 40)
    kind = rng.integers(3)
    if kind == 0:  # stripes
        pattern = (np.sin(yy / period * 2 * np.pi) > 0)[..., None] * rng.uniform(20, 60)
    elif kind == 1:  # dots
        pattern = ((np.sin(xx / period * 2 * np.pi) * np.sin(yy / period * 2 * np.pi)) > 0.6
                   )[..., None] * rng.uniform(30, 80)
    else:  # plain, with shading folds
        pattern = (np.sin(xx / (period * 3)) * 15)[..., None]
    garment = np.clip(np.asarray(colour, np.float64) + pattern
                      + rng.normal(0, 6, (h, w, 1)), 0, 255)
    image.paste(Image.fromarray(garment.astype(np.uint8)), (0, 0),
                mask.filter(ImageFilter.GaussianBlur(1.5)))
    pixels = np.asarray(image, np.float64) + rng.normal(0, 3, (h, w, 3))  # sensor noise
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def product_photos(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [product_photo(rng) for _ in tqdm(range(n), desc="photos", leave=False)]


# -- (a) naive -----------------------------------------------------------------------------------
class NaiveLoop:
    """What a first script does: per photo, decode, HF image processor, one-image forward."""

    def __init__(self, folder: Path):
        from transformers import AutoImageProcessor, AutoModel

        self.model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        self.processor = AutoImageProcessor.from_pretrained(folder)

    def one(self, data: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        pixels = self.processor(images=image, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels)
        out = getattr(out, "pooler_output", out)
        return torch.nn.functional.normalize(out, dim=-1).numpy()

    def __call__(self, photos: list[bytes]) -> dict:
        self.one(photos[0])  # warm-up
        t0 = time.perf_counter()
        for data in tqdm(photos, desc="naive", leave=False):
            self.one(data)
        seconds = time.perf_counter() - t0
        return {"images": len(photos), "seconds": seconds, "images_per_s": len(photos) / seconds}


# -- (b) the pipeline ----------------------------------------------------------------------------
class StageTimer:
    """Wraps callables so the seconds spent inside each are summed under a stage name."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def wrap(self, owner, attr: str, stage: str) -> None:
        original = getattr(owner, attr)
        had_own = attr in vars(owner)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t0

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original if had_own else None))

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self._undo.clear()


def run_pipeline(encoder, photos: list[bytes], batch_size: int, workdir: Path) -> dict:
    from catalogue.ingest import Ingest, Upload
    from catalogue.jobs import JobStore
    from catalogue.media import MediaStore
    from catalogue.settings import CatalogueSettings
    from catalogue.store.edge import EdgeStore

    shutil.rmtree(workdir, ignore_errors=True)
    settings = CatalogueSettings(data_dir=workdir, ingest_batch_size=batch_size)
    store = EdgeStore(settings.shard_dir, encoder.dim, settings.optimize_threshold)
    media, jobs = MediaStore(settings.media_dir), JobStore(settings.jobs_db)
    ingest = Ingest(settings, encoder, store, media, jobs)  # core pipeline: no enrichers
    uploads = [Upload({"id": f"p{i:05d}", "title": FASHION_PHRASES[i % len(FASHION_PHRASES)],
                       "category": "Dresses", "colour": "red", "price": 10.0 + i}, data)
               for i, data in enumerate(photos)]
    job_id = ingest.accept(uploads)  # what the API does before answering 202: not timed

    timer = StageTimer()
    timer.wrap(ingest, "decode", "read + decode")  # one wall-clock span over its threads
    timer.wrap(encoder, "preprocess", "preprocess")
    timer.wrap(encoder, "encode_pixels", "forward")
    timer.wrap(store, "upsert", "upsert")
    timer.wrap(store, "retrieve", "retrieve existing")
    for name in ("claim", "finish"):
        timer.wrap(jobs, name, "job bookkeeping")
    bar = tqdm(total=len(photos), desc=f"vitrine bs={batch_size} {encoder.settings.dtype}",
               leave=False)
    done = 0
    t0 = time.perf_counter()
    try:
        while items := jobs.claim(batch_size, job_id):
            ingest.process(items)
            done += len(items)
            bar.update(len(items))
        seconds = time.perf_counter() - t0
    finally:
        timer.restore()
        bar.close()
    job = jobs.get(job_id)
    assert job.succeeded == len(photos) and store.count() == len(photos), job
    stages = dict(timer.seconds)
    stages["other"] = max(0.0, seconds - sum(stages.values()))
    store.close()
    jobs.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return {"images": done, "seconds": seconds, "images_per_s": done / seconds,
            "stages_s": stages}


# -- (c) the model alone -------------------------------------------------------------------------
def run_model_only(encoder, batch_size: int, n_images: int) -> dict:
    side = encoder.model.config.vision_config.image_size
    pixels = torch.randn(batch_size, 3, side, side, generator=torch.Generator().manual_seed(0))
    pixels = pixels.to(encoder.dtype)
    batches = math.ceil(n_images / batch_size)
    with torch.inference_mode():
        encoder.model.get_image_features(pixel_values=pixels)  # warm-up
        t0 = time.perf_counter()
        for _ in tqdm(range(batches), desc=f"model bs={batch_size}", leave=False):
            encoder.model.get_image_features(pixel_values=pixels)
        seconds = time.perf_counter() - t0
    return {"images": batches * batch_size, "seconds": seconds,
            "images_per_s": batches * batch_size / seconds}


# -- measuring -------------------------------------------------------------------------------------
def paired_rounds(naive: NaiveLoop, encoders: dict, photos: list[bytes], naive_photos: int,
                  batch_size: int, rounds: int, workdir: Path) -> list[dict]:
    """Naive, then per dtype the pipeline and the model alone, back to back, `rounds` times.

    Ratios are taken within a round: on a shared machine two runs minutes apart can differ
    two- or threefold, and only runs side by side see the same neighbours.
    """
    out = []
    for r in range(rounds):
        entry: dict = {"naive": naive(photos[:naive_photos])}
        for dtype, encoder in encoders.items():
            entry[dtype] = {"pipeline": run_pipeline(encoder, photos, batch_size, workdir),
                            "model_only": run_model_only(encoder, batch_size, len(photos))}
        log.info("round %d/%d, %d thread(s): naive %.2f img/s; %s", r + 1, rounds,
                 torch.get_num_threads(), entry["naive"]["images_per_s"], "; ".join(
                     f"{d}: vitrine {e['pipeline']['images_per_s']:.2f}, model "
                     f"{e['model_only']['images_per_s']:.2f}" for d, e in entry.items()
                     if d != "naive"))
        out.append(entry)
    return out


def sweep(encoders: dict, photos: list[bytes], batch_sizes: list[int], workdir: Path
          ) -> list[dict]:
    """Pipeline and model alone at each batch size, side by side."""
    configs = []
    for dtype, encoder in encoders.items():
        for bs in batch_sizes:
            pipe = run_pipeline(encoder, photos, bs, workdir)
            model = run_model_only(encoder, bs, len(photos))
            log.info("sweep %s bs=%d: vitrine %.2f img/s, model-only %.2f img/s", dtype, bs,
                     pipe["images_per_s"], model["images_per_s"])
            configs.append({"dtype": dtype, "batch_size": bs, "pipeline": pipe,
                            "model_only": model})
    return configs


def summarise(rounds: list[dict], dtypes: list[str]) -> dict:
    """Medians over rounds of each throughput and of each within-round ratio."""
    med = lambda xs: float(np.median(xs))  # noqa: E731
    naive = [r["naive"]["images_per_s"] for r in rounds]
    out: dict = {"naive_images_per_s": med(naive), "naive_runs": naive, "dtypes": {}}
    for d in dtypes:
        pipe = [r[d]["pipeline"]["images_per_s"] for r in rounds]
        model = [r[d]["model_only"]["images_per_s"] for r in rounds]
        share = [r[d]["pipeline"]["stages_s"]["forward"] / r[d]["pipeline"]["seconds"]
                 for r in rounds]
        out["dtypes"][d] = {
            "pipeline_images_per_s": med(pipe), "model_only_images_per_s": med(model),
            "vs_model": med([p / m for p, m in zip(pipe, model, strict=True)]),
            "vs_naive": med([p / n for p, n in zip(pipe, naive, strict=True)]),
            "forward_share": med(share), "pipeline_runs": pipe, "model_only_runs": model,
            "stages_s": {k: med([r[d]["pipeline"]["stages_s"].get(k, 0.0) for r in rounds])
                         for k in STAGES},
            "seconds": med([r[d]["pipeline"]["seconds"] for r in rounds])}
    return out


# -- report --------------------------------------------------------------------------------------
STAGES = ("read + decode", "preprocess", "forward", "upsert", "retrieve existing",
          "job bookkeeping", "other")


def verdict(summary: dict, batch_size: int) -> tuple[list, list[str]]:
    header_rows, lines = [], []
    for d, s in summary["dtypes"].items():
        ok_naive = "PASS" if s["vs_naive"] >= TARGET_VS_NAIVE else "FAIL"
        ok_model = "PASS" if s["vs_model"] >= TARGET_VS_MODEL else "FAIL"
        header_rows.append([d, batch_size, f"{s['pipeline_images_per_s']:.2f}",
                            f"{s['model_only_images_per_s']:.2f}",
                            f"{summary['naive_images_per_s']:.2f}", f"{s['vs_model']:.0%}",
                            f"{s['forward_share']:.0%}", f"{s['vs_naive']:.2f}x"])
        lines.append(f"{d}, batch {batch_size}: vs naive {s['vs_naive']:.2f}x "
                     f"(>= {TARGET_VS_NAIVE:g}x) **{ok_naive}**; vs model-only "
                     f"{s['vs_model']:.0%} (>= {TARGET_VS_MODEL:.0%}) **{ok_model}**")
    return header_rows, lines


def stage_rows(summary: dict, batch_size: int) -> list:
    return [[d, batch_size] + [f"{s['stages_s'][k] / s['seconds']:.1%}" for k in STAGES]
            for d, s in summary["dtypes"].items()]


HEADLINE = ["dtype", "batch", "Vitrine img/s", "model-only img/s", "naive f32 img/s",
            "Vitrine / model", "forward share of Vitrine", "Vitrine / naive f32"]
SWEEP = ["dtype", "batch", "Vitrine img/s", "model-only img/s", "Vitrine / model",
         "forward share of Vitrine"]


def report(res: dict) -> tuple[str, str]:
    m, bs = res["machine"], res["batch_size"]
    rows, lines = verdict(res["main"]["summary"], bs)
    sweep_rows = []
    for cfg in res["main"]["sweep"]:
        pipe, model = cfg["pipeline"], cfg["model_only"]
        sweep_rows.append([cfg["dtype"], cfg["batch_size"], f"{pipe['images_per_s']:.2f}",
                           f"{model['images_per_s']:.2f}",
                           f"{pipe['images_per_s'] / model['images_per_s']:.0%}",
                           f"{pipe['stages_s']['forward'] / pipe['seconds']:.0%}"])
    parts = [
        "# Ingest throughput benchmark",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores ({m['logical_cores']} "
        f"logical), {m['memory_gib']} GiB RAM; Python {m['python']}, torch {res['torch']}; "
        f"{m['date']}. Load average (1/5/15 min) before: {res['load_before']}, after: "
        f"{res['load_after']}.",
        f"Command: `{res['command']}`",
        f"Model: ViT-B/32-sized CLIP, random weights ({res['params_m']:.0f} M parameters), "
        f"{res['image_size']} px input. Photos: {res['n_photos']} generated "
        f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEGs, mean {res['photo_kb']:.0f} kB; the naive "
        f"loop runs over the first {res['naive_photos']}.",
        f"## torch threads = {res['main']['threads']} (the usable core count)",
        f"{res['rounds']} rounds of naive, then per dtype Vitrine and model-only, back to "
        "back; medians over rounds, ratios taken within each round.",
        markdown_table(HEADLINE, rows),
        f"**Targets** (Vitrine >= {TARGET_VS_NAIVE:g}x naive float32, >= "
        f"{TARGET_VS_MODEL:.0%} of model-only at the same dtype, batch {bs}):\n\n"
        + "\n".join(f"- {v}" for v in lines),
        "### Where the pipeline's time goes (share of wall time, median round)",
        markdown_table(["dtype", "batch", *STAGES], stage_rows(res["main"]["summary"], bs)),
    ]
    text = [text_table(HEADLINE, rows), "\n".join(lines).replace("**", "")]
    if sweep_rows:
        parts += ["### Batch sizes (one run each, pipeline and model-only side by side)",
                  markdown_table(SWEEP, sweep_rows)]
        text.append(text_table(SWEEP, sweep_rows))
    if res.get("control"):
        c_rows, c_lines = verdict(res["control"]["summary"], bs)
        parts += [
            f"## Control: torch threads = {res['control']['threads']}",
            "The same rounds with one torch thread, to separate what batching buys from what "
            "thread oversubscription costs a one-image forward pass on a busy machine.",
            markdown_table(HEADLINE, c_rows), "\n".join(f"- {v}" for v in c_lines),
            markdown_table(["dtype", "batch", *STAGES],
                           stage_rows(res["control"]["summary"], bs)),
        ]
        text += [f"control, {res['control']['threads']} thread(s):",
                 text_table(HEADLINE, c_rows), "\n".join(c_lines).replace("**", "")]
    if res.get("bf16_cosine") is not None:
        parts.append(f"bfloat16 vs float32 vectors of the same photos: min cosine "
                     f"{res['bf16_cosine']['min']:.4f}, mean {res['bf16_cosine']['mean']:.4f} "
                     f"({res['bf16_cosine']['n']} photos).")
    parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in res["notes"]))
    return "\n\n".join(parts) + "\n", "\n\n".join(text)


def notes(res: dict) -> list[str]:
    out = ["'Forward share of Vitrine': the part of the pipeline's own wall time spent in "
           "the forward pass, from the same run - the Vitrine / model-only ratio with the "
           "neighbours' noise taken out.",
           "Both loops start from the same JPEG bytes. The naive loop stops at the vector; "
           "Vitrine also reads the original from the media store, upserts into the store and "
           "records each item done in the job database (SQLite, synchronous=FULL).",
           "Model-only feeds the same random pixel batch again and again: no decode, no "
           "preprocessing, no copies - the ceiling for the pipeline at that dtype and batch.",
           "Tried and not adopted: decoding and preprocessing batch N+1 in a thread while "
           "batch N runs through the model. On 2 cores with torch on both it was slower "
           "(48-54 vs 59 img/s, bfloat16, batch 32, measured apart on this machine): the "
           "thread takes a core from the forward pass. Preprocessing instead resizes a "
           "batch's images on all cores (Pillow releases the GIL), between forward passes."]
    for name in ("main", "control"):
        run = res.get(name)
        if not run:
            continue
        for d, summary in run["summary"]["dtypes"].items():
            if summary["vs_model"] >= TARGET_VS_MODEL:
                continue
            shares = {k: v / summary["seconds"] for k, v in summary["stages_s"].items()
                      if k not in ("forward", "other")}
            top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
            out.append(
                f"{d} at {run['threads']} thread(s) misses {TARGET_VS_MODEL:.0%} of "
                f"model-only ({summary['vs_model']:.0%}): the faster the forward pass, the more "
                "the CPU work around it shows - "
                + ", ".join(f"{k} {v:.1%}" for k, v in top) + " of wall time. Job "
                "bookkeeping is one SQLite transaction, an fsync, per item "
                "(`JobStore.finish`); finishing a batch in one transaction would remove most "
                "of it.")
    cores = res["machine"]["usable_cores"]
    load = max(float(res["load_before"].split()[0]), float(res["load_after"].split()[0]))
    if load > cores:
        out.append(
            f"The machine was shared (load average up to {load:.1f} on {cores} cores). With "
            "torch threads = cores, every parallel region of a forward pass waits for all its "
            "threads, and a thread the OS has given to a neighbour stalls it: that costs a "
            "one-image forward (hundreds of small regions per image) far more than a batched "
            "one, which distorts the naive loop and the 'vs naive' ratio."
            + (" The control section shows the same rounds at one thread."
               if res.get("control") else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
