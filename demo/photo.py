"""Photographing a demo product: studio backdrop, patterned fabric, pose and light.

A product is drawn at SUPERSAMPLE times the image size onto a backdrop that never
matches its colour, with its pattern cut from a fabric laid in the product's own frame,
in a random pose fitted to its footprint; `photograph` then shrinks the canvas under
uneven light and exposure, so a model cannot learn a colour from exact pixel values.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from demo.articles import ARTICLES, PALETTE
from demo.draw import (
    RGB,
    SUPERSAMPLE,
    WHITE,
    Drawing,
    Look,
    Pen,
    Transform,
    distance,
    jitter,
    luma,
    mix,
    rotate,
)

if TYPE_CHECKING:  # annotations only: demo.plan imports this module (via prohibited)
    from demo.plan import Item

_LIGHT_BACKDROPS: tuple[RGB, ...] = (
    (244, 244, 244),
    (236, 238, 242),
    (245, 240, 230),
    (232, 240, 234),
    (246, 236, 238),
    (228, 228, 228),
    (240, 234, 220),
    (230, 236, 246),
)
_MID_BACKDROPS: tuple[RGB, ...] = (
    (178, 184, 196),
    (176, 190, 180),
    (196, 182, 170),
    (172, 172, 176),
)


def _ramp(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear 0..1 ramp across the image in a random direction."""
    angle = rng.uniform(0, 2 * math.pi)
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    value = math.cos(angle) * axis[None, :] + math.sin(angle) * axis[:, None]
    return (value + 1.5) / 3.0


def backdrop(rng: np.random.Generator, size: int, avoid: RGB) -> Image.Image:
    # Light studio colours, mid tones only where the product itself is too light for them.
    light = [c for c in _LIGHT_BACKDROPS if distance(c, avoid) > 80]
    options = light or [c for c in _MID_BACKDROPS if distance(c, avoid) > 60]
    first = options[int(rng.integers(len(options)))]
    kind = rng.random()
    if kind < 0.55:
        return Image.new("RGB", (size, size), first)
    second = options[int(rng.integers(len(options)))]
    second = mix(first, second, rng.uniform(0.3, 0.8))
    t = _ramp(rng, size)[..., None]
    arr = np.asarray(first, np.float32) * (1 - t) + np.asarray(second, np.float32) * t
    if kind > 0.85:  # faint texture: paper grain or a fine linen weave
        if rng.random() < 0.5:
            arr += rng.normal(0, 3.0, (size, size, 1)).astype(np.float32)
        else:
            yy, xx = np.mgrid[0:size, 0:size]
            arr += (2.5 * np.sin(xx * 1.3) * np.sin(yy * 1.3))[..., None].astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))



def _fabric(xf: Transform, look: Look, pattern: str, article: str) -> Image.Image:
    """The base colour with the pattern, in the product's own frame (it turns with it).

    A motif repeats every 0.10 to 0.17 of the frame: the smallest product pose (60 % of
    the photo) still gets about three pixels a period at the demo model's 48 px input.
    Stripes and dots every 0.07 met two pixels there, where a pattern aliases into an
    even texture (BENCHMARKS.md, "Patterns", fifth pass)."""
    size, rng = xf.size, look.rng
    img = Image.new("RGB", (size, size), look.base)
    draw = ImageDraw.Draw(img)
    lo, hi = -0.3, 1.3  # beyond the unit square, so turned stripes still cover the product
    if article == "Jeans":  # denim twill
        twill = mix(look.base, (0, 0, 0), 0.18)
        for k in np.arange(lo, hi + 1.0, 0.02):
            draw.line(xf([(k, lo), (k - (hi - lo), hi)]), fill=twill, width=xf.width(0.005))
    if pattern == "striped":
        period = rng.uniform(0.10, 0.14)
        band = period * rng.uniform(0.35, 0.45)
        turn = (0.0, 0.0, 90.0, 45.0, -45.0)[int(rng.integers(5))]
        for k in np.arange(lo, hi, period):
            stripe = [(lo, k), (hi, k), (hi, k + band), (lo, k + band)]
            draw.polygon(xf(rotate(stripe, turn)), fill=look.accent)
    elif pattern == "dotted":
        period = rng.uniform(0.10, 0.13)
        radius = xf.length(period * rng.uniform(0.2, 0.26))
        for row, y in enumerate(np.arange(lo, hi, period * 0.87)):
            for x in np.arange(lo + (period / 2 if row % 2 else 0.0), hi, period):
                (px, py) = xf([(x, y)])[0]
                draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=look.accent)
    elif pattern == "checked":
        period = rng.uniform(0.11, 0.15)
        band = period * 0.3
        half = mix(look.base, look.accent, 0.5)
        for k in np.arange(lo, hi, period):
            draw.polygon(xf([(lo, k), (hi, k), (hi, k + band), (lo, k + band)]), fill=half)
            draw.polygon(xf([(k, lo), (k + band, lo), (k + band, hi), (k, hi)]), fill=half)
        for y in np.arange(lo, hi, period):
            for x in np.arange(lo, hi, period):
                cell = [(x, y), (x + band, y), (x + band, y + band), (x, y + band)]
                draw.polygon(xf(cell), fill=look.accent)
    elif pattern == "floral":
        period = rng.uniform(0.13, 0.17)
        petal = xf.length(period * 0.13)
        centre = max(
            (PALETTE[n] for n in ("Yellow", "Orange", "Red", "White", "Black")),
            key=lambda c: min(distance(c, look.base), distance(c, look.accent)),
        )
        for y in np.arange(lo, hi, period):
            for x in np.arange(lo, hi, period):
                fx, fy = x + rng.uniform(-0.2, 0.2) * period, y + rng.uniform(-0.2, 0.2) * period
                turn = rng.uniform(0, 2 * math.pi)
                (px, py) = xf([(fx, fy)])[0]
                for p in range(5):
                    a = turn + p * 2 * math.pi / 5
                    qx, qy = px + 1.15 * petal * math.cos(a), py + 1.15 * petal * math.sin(a)
                    draw.ellipse([qx - petal, qy - petal, qx + petal, qy + petal], fill=look.accent)
                r = petal * 0.7
                draw.ellipse([px - r, py - r, px + r, py + r], fill=centre)
    return img


@cache
def footprint(draw: Drawing) -> np.ndarray:
    """The unit-square points a drawing reaches, found by drawing it once."""
    size = 100
    look = Look((128, 128, 128), WHITE, (0, 0, 0), (0, 0, 0), np.random.default_rng(0))
    canvas = Image.new("RGB", (size, size))
    pen = Pen(canvas, canvas, Transform(size, 1.0, size / 2, size / 2, 0.0, False), (0, 0, 0))
    draw(pen, look)
    pen.flush()
    return np.asarray(pen.reach) / size


def frame(
    rng: np.random.Generator, size: int, reach: np.ndarray, lo: float = 0.6
) -> Transform:
    """A random pose: turned, maybe mirrored, 60-95% of the frame, and never cut off.

    `reach` is the drawing's footprint, so the pose is fitted to what is really drawn.
    """
    angle, flip = math.radians(rng.uniform(-15, 15)), bool(rng.random() < 0.5)
    points = reach - 0.5
    if flip:
        points = points * np.array([-1.0, 1.0])
    cos, sin = math.cos(angle), math.sin(angle)
    turned = points @ np.array([[cos, sin], [-sin, cos]])
    low, high = turned.min(axis=0), turned.max(axis=0)
    side = rng.uniform(lo, 0.95) * size / float((high - low).max())
    margin = 0.02 * size
    cx = rng.uniform(margin - low[0] * side, size - margin - high[0] * side)
    cy = rng.uniform(margin - low[1] * side, size - margin - high[1] * side)
    return Transform(size=size, scale=side / size, cx=cx, cy=cy, angle=angle, flip=flip)


def render_product(item: Item, size: int, rng: np.random.Generator) -> Image.Image:
    """The product on a studio backdrop, in its colours and pattern, in a random pose."""
    named = PALETTE[item.colour]
    base = jitter(named, rng)
    # A darker shade for seams, a lighter one on colours too dark to darken.
    detail = mix(base, (0, 0, 0), 0.35) if luma(base) > 60 else mix(base, (255, 255, 255), 0.3)
    accent = jitter(PALETTE[item.accent], rng, 0.04)
    look = Look(base, accent, detail, mix(base, (0, 0, 0), 0.45), rng)
    canvas = backdrop(rng, size, named)
    draw = ARTICLES[item.article].draw
    xf = frame(rng, size, footprint(draw))
    pen = Pen(canvas, _fabric(xf, look, item.pattern, item.article), xf, look.outline)
    draw(pen, look)
    pen.flush()
    return canvas


def photograph(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Shrink to the final size under uneven light with a little exposure and contrast play."""
    small = canvas.reduce(SUPERSAMPLE)
    # float32 throughout (Python floats do not promote it), which numpy's stubs cannot see
    arr: np.ndarray = np.asarray(small, np.float32)
    light = 1.0 + rng.uniform(0.0, 0.04) * (2 * _ramp(rng, small.size[0]) - 1)
    arr = arr * light[..., None] * rng.uniform(0.95, 1.08)
    mean = arr.mean()
    arr = (arr - mean) * rng.uniform(0.95, 1.1) + mean
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
