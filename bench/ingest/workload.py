"""What every ingest run works on: the ViT-B/32-sized random model and generated photos.

A random model rather than trained weights because throughput depends on the
architecture, not on what the weights learnt; it is built here, nothing is downloaded.
`bench.search_http` uses the same model and phrases.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "data" / "models" / "vit-b32-random"
PHOTO_SIZE = (600, 800)  # width, height: a portrait product shot

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


def tokenizer_corpus() -> list[str]:
    """Product names and descriptions of the demo catalogue, else a list of phrases."""
    from catalogue.styles import read_styles

    corpus = list(FASHION_PHRASES)
    styles = ROOT / "data" / "demo" / "catalogue" / "styles.csv"
    if styles.exists():
        for row in read_styles(styles):
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
