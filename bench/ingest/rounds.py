"""Rounds of the three loops run back to back, the batch-size sweep, and their medians.

The ratios the targets are judged on are taken within a round, never across rounds:
on a shared machine runs minutes apart can differ two- or threefold.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from bench.ingest.pipelines import STAGES, NaiveLoop, run_model_only, run_pipeline

log = logging.getLogger(__name__)


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
