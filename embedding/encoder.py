"""One small encoder over any Hugging Face CLIP or SigLIP model.

`Encoder("patrickjohncyh/fashion-clip")` and `Encoder("/models/demo")` take the
same path: `from_pretrained` on a hub id or a local folder. Everything the
model needs to see an image the way it was trained (size, crop, mean, std,
resampling) is read from the processor saved beside the weights.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

from embedding.settings import EmbeddingSettings

T, R = TypeVar("T"), TypeVar("R")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """The configured model could not be loaded."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def map_on_cores(fn: Callable[[T], R], items: Sequence[T], name: str) -> list[R]:
    """`fn` over `items` in order, on a thread per usable core: for work that releases the
    GIL (Pillow's decoders and resizing, file reads)."""
    workers = min(len(items), usable_cores())
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class Preprocessing:
    """Resize, centre-crop and normalise exactly as the model's image processor does."""

    resize_shortest: int | None  # CLIP: shortest edge, then centre crop
    resize_to: tuple[int, int] | None  # SigLIP: straight to (height, width)
    crop: tuple[int, int] | None
    mean: np.ndarray
    std: np.ndarray
    resample: int

    @classmethod
    def from_processor(cls, p) -> Preprocessing:
        size = p.size
        shortest = getattr(size, "shortest_edge", None) or (size.get("shortest_edge")
                                                          if isinstance(size, dict) else None)
        height = getattr(size, "height", None) or (size.get("height")
                                                   if isinstance(size, dict) else None)
        width = getattr(size, "width", None) or (size.get("width")
                                                 if isinstance(size, dict) else None)
        crop = None
        if getattr(p, "do_center_crop", False) and p.crop_size is not None:
            cs = p.crop_size
            crop = (cs["height"], cs["width"]) if isinstance(cs, dict) else (cs.height, cs.width)
        return cls(
            resize_shortest=shortest,
            resize_to=None if shortest else (height, width),
            crop=crop,
            mean=np.asarray(p.image_mean, dtype=np.float32).reshape(1, 3, 1, 1),
            std=np.asarray(p.image_std, dtype=np.float32).reshape(1, 3, 1, 1),
            resample=int(p.resample),
        )

    def to_array(self, image: Image.Image) -> np.ndarray:
        """One RGB image -> uint8 array (H, W, 3) at the model's input size."""
        image = image.convert("RGB")
        if self.resize_shortest:
            w, h = image.size
            # As HF does: the short side exactly, the long one truncated. Scaling both by
            # size / short could make the short side 223.999... -> 223 (e.g. 640x479).
            short = self.resize_shortest
            long = int(short * max(w, h) / min(w, h))
            new = (short, long) if w <= h else (long, short)
            image = image.resize(new, resample=self.resample)
        else:
            h, w = self.resize_to
            image = image.resize((w, h), resample=self.resample)
        if self.crop:
            ch, cw = self.crop
            w, h = image.size
            left, top = (w - cw) // 2, (h - ch) // 2
            image = image.crop((left, top, left + cw, top + ch))
        return np.asarray(image, dtype=np.uint8)

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        arrays = map_on_cores(self.to_array, images, "preprocess")  # Pillow resizes outside the GIL
        # Channels first while still uint8 (a quarter of the bytes to move), then
        # normalise in place: the same float32 operations as the HF processor, bit for bit.
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        return (batch.float().div_(255.0).sub_(torch.from_numpy(self.mean))
                .div_(torch.from_numpy(self.std)))


class Encoder:
    """Encode images and texts into one L2-normalised float32 space."""

    def __init__(self, settings: EmbeddingSettings | None = None, **overrides):
        self.settings = (settings or EmbeddingSettings()).model_copy(update=overrides)
        self.model_id = self.settings.model
        self.device = torch.device(self.settings.device)
        self.dtype = DTYPES[self.settings.dtype]
        # One forward pass at a time: torch already uses every core for one batch,
        # and interleaved requests would only contend for them.
        self._lock = threading.Lock()
        # torch's intra-op pool owns the cores. numpy's BLAS only multiplies small matrices
        # here (moderation, tagging, mixing queries); with a thread per core, its pool spins
        # beside torch's after each call and slows both. Measured on 2 cores, demo model:
        # a 32-image batch's moderation right after the forward pass took 2.9 ms instead of
        # 0.5 ms, and the next forward pass 18.5 ms instead of 12.1 ms.
        threadpool_limits(1, user_api="blas")
        self._load()

    def _load(self) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            self.model = AutoModel.from_pretrained(self.model_id, dtype=self.dtype)
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_id)
            self.image_processor = AutoImageProcessor.from_pretrained(self.model_id)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"could not load the model {self.model_id!r}: {exc}\n"
                "Set VITRINE_MODEL to a local folder holding a Hugging Face CLIP or SigLIP "
                "model (config.json, weights, tokenizer and preprocessor files), e.g. "
                "VITRINE_MODEL=data/models/demo after `vitrine demo` has trained one, "
                "or to a hub id when this machine can reach the hub."
            ) from exc
        if not hasattr(self.model, "get_image_features"):
            raise ModelLoadError(f"{self.model_id!r} is a {type(self.model).__name__}, "
                                 "not a CLIP-family model with image and text towers")
        self.model.to(self.device).eval()
        self.preprocess = Preprocessing.from_processor(self.image_processor)
        self.family = self.model.config.model_type  # "clip", "siglip", ...
        self.context_length = self.model.config.text_config.max_position_embeddings

    @cached_property
    def dim(self) -> int:
        return int(self.encode_texts(["a"]).shape[1])

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())

    def _features(self, output) -> np.ndarray:
        tensor = output.pooler_output if hasattr(output, "pooler_output") else output
        return l2_normalise(tensor.float().cpu().numpy())

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Preprocessed pixel batch -> (n, dim) unit vectors."""
        with self._lock:
            pixels = pixels.to(self.device, self.dtype)
            return self._features(self.model.get_image_features(pixel_values=pixels))

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None
                      ) -> np.ndarray:
        """RGB images -> (n, dim) float32 unit vectors, `batch_size` at a time."""
        batch_size = batch_size or self.settings.batch_size
        out = [self.encode_pixels(self.preprocess(images[i:i + batch_size]))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Texts -> (n, dim) float32 unit vectors."""
        batch_size = batch_size or self.settings.batch_size
        # SigLIP pools the last position, so it was trained on max-length padding.
        padding = "max_length" if self.family == "siglip" else True
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[i:i + batch_size]), padding=padding,
                                    truncation=True, max_length=self.context_length,
                                    return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in tokens.items()
                      if k in ("input_ids", "attention_mask")}
            if self.family == "siglip":
                inputs.pop("attention_mask")  # SigLIP attends to padding by design
            with self._lock:
                out.append(self._features(self.model.get_text_features(**inputs)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def combine(text: np.ndarray | None = None, image: np.ndarray | None = None, alpha: float = 0.5,
            negative: np.ndarray | None = None, negative_weight: float = 0.5) -> np.ndarray:
    """Mix a text and an image embedding into one query vector.

    alpha weighs the image (1.0 = image only, 0.0 = text only); a negative text
    embedding is subtracted ("less of this"). The result is renormalised.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if text is None and image is None:
        raise ValueError("a query needs text, an image, or both")
    if text is None:
        query = image
    elif image is None:
        query = text
    else:
        query = (1.0 - alpha) * text + alpha * image
    query = l2_normalise(query)
    if negative is not None:
        query = l2_normalise(query - negative_weight * negative)
    return query
