"""One small encoder over any Hugging Face CLIP or SigLIP model, or open_clip CLIP.

`Encoder("patrickjohncyh/fashion-clip")` and `Encoder("/models/demo")` take the
same path: `from_pretrained` on a hub id or a local folder. Everything the
model needs to see an image the way it was trained (size, crop, mean, std,
resampling) is read from the processor saved beside the weights. An open_clip
model (`hf-hub:org/name`, or a folder with open_clip_config.json) is converted
to a transformers CLIP as it loads (`embedding.openclip`), its preprocessing
read from its `preprocess_cfg`.

Texts go through the text tower `VITRINE_TEXT_TOWER` picks (`embedding.fast_text`: by
default ONNX Runtime with int8 weights, built as the model loads), images through the
model as loaded.

Building an `Encoder` loads nothing and changes nothing in the process: the model loads on
`load()` or first use, and the process-wide thread settings are
`embedding.runtime.configure_threads()`, which the composition root calls at start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import torch
from opentelemetry import trace
from PIL import Image

from embedding import fast_text
from embedding.settings import EmbeddingSettings

T = TypeVar("T")
R = TypeVar("R")
# The tracer of whatever SDK the process installed (catalogue.tracing); without one, a no-op.
TRACER = trace.get_tracer("vitrine.embedding")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@contextmanager
def traced(name: str, count: int) -> Iterator[None]:
    """A span for one encoder call, only inside a traced request or task."""
    if not trace.get_current_span().is_recording():
        yield
        return
    with TRACER.start_as_current_span(name, attributes={"vitrine.encoder.inputs": count}):
        yield


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
    # open_clip (torchvision) rounds a centre crop's offset half to even; HF floors it.
    round_crop: bool = False

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
            resize_to=None if shortest else (height, width),  # type: ignore[arg-type]
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
            assert self.resize_to is not None  # from_processor sets one of the two
            h, w = self.resize_to
            image = image.resize((w, h), resample=self.resample)
        if self.crop:
            ch, cw = self.crop
            w, h = image.size
            if self.round_crop:
                left, top = int(round((w - cw) / 2)), int(round((h - ch) / 2))
            else:
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


def vector_size(config: Any, model_id: str) -> int:
    """Length of the image and text vectors of a CLIP-family model with this config;
    ModelLoadError for a model whose towers do not share one space."""
    if getattr(config, "projection_dim", None):  # CLIP: both towers project to it
        return int(config.projection_dim)
    text, vision = getattr(config, "text_config", None), getattr(config, "vision_config", None)
    if text is None or vision is None:
        raise ModelLoadError(f"{model_id!r} is a {config.model_type!r} model, "
                             "not a CLIP-family model with image and text towers")
    # SigLIP has no projection layer: an image vector is the vision tower's width; the
    # text head projects to projection_size (the text width unless set).
    image, text_size = vision.hidden_size, getattr(text, "projection_size", None)
    text_size = text_size or text.hidden_size
    if image != text_size:
        raise ModelLoadError(f"{model_id!r} makes {image}-d image vectors but "
                             f"{text_size}-d text vectors: they cannot share one space")
    return int(image)


class Encoder:
    """Encode images and texts into one L2-normalised float32 space.

    Building one only records its settings. The weights, tokenizer and image processor
    load on `load()` (once; later calls do nothing) or on first use, so a process can build
    its parts first and pay for the model once, where it chooses. `dim`, `family` and
    `context_length` come from the model's config alone, without the weights.
    """

    def __init__(self, settings: EmbeddingSettings | str | os.PathLike | None = None,
                 **overrides):
        if isinstance(settings, (str, os.PathLike)):  # Encoder("hub/id") or Encoder(folder)
            overrides = {"model": os.fspath(settings), **overrides}
            settings = None
        self.settings = (settings or EmbeddingSettings()).model_copy(update=overrides)
        self.model_id = self.settings.model
        self.device = torch.device(self.settings.device)
        if self.settings.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.settings.dtype!r}")
        self.dtype = DTYPES[self.settings.dtype]
        # One forward pass at a time: torch already uses every core for one batch,
        # and interleaved requests would only contend for them.
        self._lock = threading.Lock()
        # Loading's own lock: the encode methods call load() and only then take the
        # forward-pass lock, which is not reentrant.
        self._load_lock = threading.Lock()
        self._config: Any = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._image_processor: Any = None
        self._preprocess: Preprocessing | None = None
        self._text_tower = "float32"
        self._run_text: fast_text.RunText | None = None

    # -- loading -------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Encoder:
        """Load the model, tokenizer and image processor, once; returns self.

        Raises ModelLoadError, saying how to point VITRINE_MODEL at a local folder.
        """
        if self._model is None:
            with self._load_lock:
                if self._model is None:  # another thread may have loaded it meanwhile
                    self._load()
        return self

    def _load(self) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from embedding import openclip

        hf_logging.disable_progress_bar()
        try:
            if openclip.is_open_clip(self.model_id):
                model, tokenizer, preprocess, image_processor = openclip.load(
                    self.model_id, self.dtype)
            else:
                model = AutoModel.from_pretrained(self.model_id, dtype=self.dtype)
                tokenizer = AutoTokenizer.from_pretrained(self.model_id)
                image_processor = AutoImageProcessor.from_pretrained(self.model_id)
                preprocess = Preprocessing.from_processor(image_processor)
        except (OSError, ValueError) as exc:
            raise self._load_error(exc) from exc
        if not hasattr(model, "get_image_features"):
            raise ModelLoadError(f"{self.model_id!r} is a {type(model).__name__}, "
                                 "not a CLIP-family model with image and text towers")
        model.to(self.device).eval()
        self._tokenizer, self._image_processor = tokenizer, image_processor
        self._preprocess = preprocess
        if self._config is None:
            self._config = model.config
        self._text_tower, self._run_text = fast_text.for_model(
            model, self.settings.text_tower, self.device, self.dtype, self.model_id)
        self._model = model  # last: a thread that sees it sees everything above

    def _load_error(self, exc: Exception) -> ModelLoadError:
        return ModelLoadError(
            f"could not load the model {self.model_id!r}: {exc}\n"
            "Set VITRINE_MODEL to a local folder holding a Hugging Face CLIP or SigLIP "
            "model (config.json, weights, tokenizer and preprocessor files) or an open_clip "
            "CLIP (open_clip_config.json, weights, vocab.json and merges.txt), e.g. "
            "VITRINE_MODEL=data/models/demo after `vitrine demo` has trained one, "
            "or to a hub id when this machine can reach the hub.")

    @property
    def model(self):
        return self.load()._model

    @property
    def text_tower(self) -> str:
        """How the text tower runs (VITRINE_TEXT_TOWER, or float32 where it does not apply)."""
        return self.load()._text_tower

    @property
    def texts_share_passes(self) -> bool:
        """Whether texts encoded together share one pass (cheaper per text), or each runs
        alone (int8 text towers): worth waiting for company, or not."""
        return self.text_tower not in fast_text.TEXT_BY_TEXT

    @property
    def tokenizer(self):
        return self.load()._tokenizer

    @property
    def image_processor(self):
        return self.load()._image_processor

    @property
    def preprocess(self) -> Preprocessing:
        preprocess = self.load()._preprocess
        assert preprocess is not None  # load() sets it
        return preprocess

    # -- what the config alone tells -----------------------------------------------------------
    @property
    def config(self):
        """The model's config: config.json (open_clip_config.json) only, through the path the
        weights take."""
        if self._config is None:
            from transformers import AutoConfig

            from embedding import openclip

            try:
                if openclip.is_open_clip(self.model_id):
                    self._config = openclip.load_config(self.model_id)
                else:
                    self._config = AutoConfig.from_pretrained(self.model_id)
            except (OSError, ValueError) as exc:
                raise self._load_error(exc) from exc
        return self._config

    @property
    def family(self) -> str:
        return self.config.model_type  # "clip", "siglip", ...

    @property
    def context_length(self) -> int:
        return self.config.text_config.max_position_embeddings

    @cached_property
    def dim(self) -> int:
        """Length of the image and text vectors."""
        return vector_size(self.config, self.model_id)

    # -- encoding ------------------------------------------------------------------------------
    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())

    def _features(self, output) -> np.ndarray:
        tensor = output.pooler_output if hasattr(output, "pooler_output") else output
        return l2_normalise(tensor.float().cpu().numpy())

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Preprocessed pixel batch -> (n, dim) unit vectors."""
        model = self.model
        with self._lock:
            pixels = pixels.to(self.device, self.dtype)
            return self._features(model.get_image_features(pixel_values=pixels))

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None
                      ) -> np.ndarray:
        """RGB images -> (n, dim) float32 unit vectors, `batch_size` at a time."""
        batch_size = batch_size or self.settings.batch_size
        preprocess = self.preprocess
        with traced("encoder.encode_images", len(images)):
            out = [self.encode_pixels(preprocess(images[i:i + batch_size]))
                   for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Texts -> (n, dim) float32 unit vectors."""
        batch_size = batch_size or self.settings.batch_size
        tokenizer, run_text = self.tokenizer, self._run_text
        assert run_text is not None  # load() (through self.tokenizer) sets it
        # SigLIP pools the last position, so it was trained on max-length padding.
        padding = "max_length" if self.family == "siglip" else True
        out = []
        with traced("encoder.encode_texts", len(texts)):
            for i in range(0, len(texts), batch_size):
                tokens = tokenizer(list(texts[i:i + batch_size]), padding=padding,
                                   truncation=True, max_length=self.context_length,
                                   return_tensors="pt")
                ids = tokens["input_ids"].to(self.device)
                # SigLIP attends to padding by design: it gets no mask.
                mask = tokens.get("attention_mask") if self.family != "siglip" else None
                mask = None if mask is None else mask.to(self.device)
                with self._lock:
                    out.append(self._features(run_text(ids, mask)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def combine(text: np.ndarray | None = None, image: np.ndarray | None = None, alpha: float = 0.5,
            negative: np.ndarray | None = None, negative_weight: float = 0.5) -> np.ndarray:
    """Mix a text and an image embedding into one query vector.

    alpha weighs the image (1.0 = image only, 0.0 = text only); a negative text
    embedding is subtracted ("less of this"). The result is renormalised.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if text is None:
        if image is None:
            raise ValueError("a query needs text, an image, or both")
        query = image
    elif image is None:
        query = text
    else:
        query = (1.0 - alpha) * text + alpha * image
    query = l2_normalise(query)
    if negative is not None:
        query = l2_normalise(query - negative_weight * negative)
    return query
