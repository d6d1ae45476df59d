"""The three timed loops: (a) naive per-image, (b) the Vitrine pipeline, (c) the model alone.

Each takes the same photos (or, for the model alone, a pixel batch of the same shape)
and returns images, seconds and images per second; the pipeline also says where its
time went, stage by stage.
"""

from __future__ import annotations

import io
import math
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.ingest.workload import FASHION_PHRASES

# The names run_pipeline's timers sum under, in the order the report lists them.
STAGES = ("read + decode", "preprocess", "forward", "upsert", "retrieve existing",
          "job bookkeeping", "other")


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
    """Wraps callables so the seconds spent inside each are summed under a stage name (and
    the items, where `count` says how many a call takes from its arguments)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)
        self._undo: list = []

    def timed(self, fn, stage: str, count=None):
        def run(*args, **kwargs):
            if count:
                self.items[stage] += count(args)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t0

        return run

    def wrap(self, owner, attr: str, stage: str, count=None) -> None:
        original = getattr(owner, attr)
        self._undo.append((owner, attr, original if attr in vars(owner) else None))
        setattr(owner, attr, self.timed(original, stage, count))

    def snapshot(self) -> tuple[dict, dict]:
        return dict(self.seconds), dict(self.items)

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
    from catalogue.media import FolderMediaStore
    from catalogue.settings import CatalogueSettings
    from catalogue.store.edge import EdgeStore

    shutil.rmtree(workdir, ignore_errors=True)
    settings = CatalogueSettings(data_dir=workdir, ingest_batch_size=batch_size)
    store = EdgeStore(settings.shard_dir, encoder.dim, settings.optimize_threshold)
    media, jobs = FolderMediaStore(settings.media_dir), JobStore(settings.jobs_db)
    ingest = Ingest(settings, encoder, store, media, jobs)  # core pipeline: no enrichers
    uploads = [Upload({"id": f"p{i:05d}", "title": FASHION_PHRASES[i % len(FASHION_PHRASES)],
                       "category": "Dresses", "colour": "red", "price": 10.0 + i}, [data])
               for i, data in enumerate(photos)]
    job_id = ingest.accept(uploads).job_id  # what the API does before answering 202: not timed

    timer = StageTimer()
    # Fetching and decoding a batch's photos: one wall-clock span over its threads.
    timer.wrap(ingest.photos, "decode", "read + decode")
    # `Encoder.preprocess` is a read-only property, and a call goes to the type's
    # __call__: the timer wraps that, for the length of this run.
    timer.wrap(type(encoder.preprocess), "__call__", "preprocess")
    timer.wrap(encoder, "encode_pixels", "forward")
    timer.wrap(store, "upsert", "upsert")
    timer.wrap(store, "retrieve", "retrieve existing")
    # `finish` goes through `finish_many`: wrapping both would count it twice.
    for name in ("claim", "finish_many"):
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
