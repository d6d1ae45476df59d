"""Product-like test pictures, as encoded bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def image_bytes(colour="red", size=(64, 64), fmt="PNG", seed: int | None = None) -> bytes:
    """A small product-like picture: a coloured square on white, optionally with noise."""
    image = Image.new("RGB", size, "white")
    inner = Image.new("RGB", (size[0] // 2, size[1] // 2), colour)
    image.paste(inner, (size[0] // 4, size[1] // 4))
    if seed is not None:  # a distinct, reproducible texture per seed
        rng = np.random.default_rng(seed)
        noise = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        image = Image.blend(image, noise, 0.5)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()
