"""The drawing kit of the demo catalogue: a pen, the pose transform, geometry and colours.

Silhouettes are designed in a unit square (x right, y down) and posed onto the canvas by a
Transform, so a garment renderer never deals with pixels, turns or mirroring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Point = tuple[float, float]

SUPERSAMPLE = 2  # draw at twice the size and shrink: cheap anti-aliasing for polygons

WHITE: RGB = (246, 246, 244)
SILVER: RGB = (188, 190, 196)
GOLD: RGB = (206, 168, 72)


@dataclass(frozen=True)
class Look:
    """The colours one product is drawn with, already jittered."""

    base: RGB
    accent: RGB
    detail: RGB  # seams, hems, buttons: a shade of the base that stays visible on it
    outline: RGB
    rng: np.random.Generator


@dataclass(frozen=True)
class Transform:
    """Maps the unit square a silhouette is designed in onto the canvas."""

    size: int
    scale: float
    cx: float
    cy: float
    angle: float
    flip: bool

    def __call__(self, points: Sequence[Point]) -> list[Point]:
        side = self.scale * self.size
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        out = []
        for u, v in points:
            x = ((1.0 - u) if self.flip else u) - 0.5
            y = v - 0.5
            out.append((self.cx + (x * cos - y * sin) * side, self.cy + (x * sin + y * cos) * side))
        return out

    def length(self, unit: float) -> float:
        return unit * self.scale * self.size

    def width(self, unit: float) -> int:
        return max(1, round(self.length(unit)))


class Pen:
    """Draws a product: `body` parts get the patterned fabric, the rest solid colours.

    Consecutive body parts are pasted through one mask and outlined together, so a
    later group (a collar, the front sock) is drawn over an earlier one with its own edge.
    """

    def __init__(self, canvas: Image.Image, fabric: Image.Image, xf: Transform, outline: RGB):
        self.canvas = canvas
        self.fabric = fabric
        self.xf = xf
        self.outline = outline
        self._draw = ImageDraw.Draw(canvas)
        self._mask: Image.Image | None = None
        self._pending: list[list[Point]] = []
        self.reach: list[Point] = []  # every canvas point drawn on, to frame the product

    def _reached(self, points: Sequence[Point], pad: float = 0.0) -> None:
        for x, y in points:
            self.reach += [(x - pad, y - pad), (x + pad, y + pad)]

    def body(self, points: Sequence[Point]) -> None:
        if self._mask is None:
            self._mask = Image.new("L", self.canvas.size, 0)
        polygon = self.xf(points)
        ImageDraw.Draw(self._mask).polygon(polygon, fill=255)
        self._reached(polygon)
        self._pending.append(polygon)

    def flush(self) -> None:
        if self._mask is None:
            return
        self.canvas.paste(self.fabric, (0, 0), self._mask)
        width = self.xf.width(0.008)
        for polygon in self._pending:
            self._draw.line([*polygon, polygon[0]], fill=self.outline, width=width, joint="curve")
        self._mask = None
        self._pending = []

    def solid(self, points: Sequence[Point], colour: RGB, outline: RGB | None = None) -> None:
        self.flush()
        polygon = self.xf(points)
        self._draw.polygon(polygon, fill=colour)
        self._reached(polygon)
        if outline is not None:
            width = self.xf.width(0.008)
            self._draw.line([*polygon, polygon[0]], fill=outline, width=width, joint="curve")

    def line(self, points: Sequence[Point], colour: RGB, width: float) -> None:
        self.flush()
        polyline = self.xf(points)
        self._draw.line(polyline, fill=colour, width=self.xf.width(width), joint="curve")
        self._reached(polyline, self.xf.length(width) / 2)

    def circle(self, cx: float, cy: float, r: float, colour: RGB) -> None:
        self.flush()
        (x, y), rr = self.xf([(cx, cy)])[0], self.xf.length(r)
        self._draw.ellipse([x - rr, y - rr, x + rr, y + rr], fill=colour)
        self._reached([(x, y)], rr)


Drawing = Callable[[Pen, Look], None]

# ------------------------------------------------------------------------ geometry


def arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24
) -> list[Point]:
    """Points on an ellipse from angle a0 to a1 in degrees (y points down, 270 is the top)."""
    angles = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def stroke(points: Sequence[Point], half_width: float, closed: bool = False) -> list[Point]:
    """The polygon of a thick polyline (a strap, a handle); a closed one becomes a ring."""
    left, right = [], []
    n = len(points)
    for i, (x, y) in enumerate(points):
        if closed:
            (x0, y0), (x1, y1) = points[i - 1], points[(i + 1) % n]
        else:
            (x0, y0), (x1, y1) = points[max(i - 1, 0)], points[min(i + 1, n - 1)]
        norm = math.hypot(x1 - x0, y1 - y0) or 1.0
        nx, ny = -(y1 - y0) / norm * half_width, (x1 - x0) / norm * half_width
        left.append((x + nx, y + ny))
        right.append((x - nx, y - ny))
    if closed:
        return [*left, left[0], right[0], *right[::-1]]
    return left + right[::-1]


def shift(points: Sequence[Point], dx: float, dy: float) -> list[Point]:
    return [(x + dx, y + dy) for x, y in points]


def mirror(points: Sequence[Point]) -> list[Point]:
    return [(1.0 - x, y) for x, y in points]


def rotate(points: Sequence[Point], degrees: float) -> list[Point]:
    """Turn points about the centre of the unit square."""
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    return [
        (0.5 + (x - 0.5) * cos - (y - 0.5) * sin, 0.5 + (x - 0.5) * sin + (y - 0.5) * cos)
        for x, y in points
    ]


# ------------------------------------------------------------------------- colours


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def luma(c: RGB) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def distance(a: RGB, b: RGB) -> float:
    return math.dist(a, b)


def light(look: Look) -> RGB:
    """A light trim colour (laces, buttons) that still shows on a light product."""
    return WHITE if luma(look.base) < 170 else look.detail


def jitter(colour: RGB, rng: np.random.Generator, amount: float = 0.05, tint: bool = True) -> RGB:
    """The colour a little off, as a real dye and lighting would make it."""
    factors = 1.0 + rng.uniform(-amount, amount, 3 if tint else 1).repeat(1 if tint else 3)
    offset = rng.uniform(-5, 5)
    r, g, b = (int(np.clip(c * f + offset, 0, 255)) for c, f in zip(colour, factors, strict=True))
    return r, g, b
