"""A deterministic synthetic catalogue in the format of Kaggle's "Fashion Product Images".

Every image is drawn from its own row (article type, colour, pattern), so what a model
learns from the demo catalogue can be checked against the csv. A few prohibited images
(weapons, scenes, blanks, text) follow the products so moderation has something to reject.

    from catalogue.styles import read_styles
    from demo.generator import generate
    rows = read_styles(generate(Path("data/demo"), n_products=3000))
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

RGB = tuple[int, int, int]
Point = tuple[float, float]

ARTICLE_TYPES: dict[str, tuple[str, str]] = {
    "Tshirts": ("Apparel", "Topwear"),
    "Shirts": ("Apparel", "Topwear"),
    "Dresses": ("Apparel", "Dress"),
    "Skirts": ("Apparel", "Bottomwear"),
    "Trousers": ("Apparel", "Bottomwear"),
    "Jeans": ("Apparel", "Bottomwear"),
    "Shorts": ("Apparel", "Bottomwear"),
    "Jackets": ("Apparel", "Topwear"),
    "Coats": ("Apparel", "Topwear"),
    "Casual Shoes": ("Footwear", "Shoes"),
    "Sports Shoes": ("Footwear", "Shoes"),
    "Sandals": ("Footwear", "Sandal"),
    "Boots": ("Footwear", "Shoes"),
    "Handbags": ("Accessories", "Bags"),
    "Caps": ("Accessories", "Headwear"),
    "Scarves": ("Accessories", "Scarves"),
    "Socks": ("Accessories", "Socks"),
}

# Far enough apart that a little jitter and lighting never make another name the nearest.
COLOURS: dict[str, RGB] = {
    "Black": (22, 22, 24),
    "White": (246, 246, 244),
    "Red": (200, 30, 36),
    "Blue": (35, 95, 205),
    "Navy Blue": (26, 36, 92),
    "Green": (40, 140, 62),
    "Yellow": (245, 205, 40),
    "Pink": (236, 122, 172),
    "Purple": (122, 50, 152),
    "Brown": (116, 70, 40),
    "Grey": (128, 128, 128),
    "Orange": (240, 122, 30),
    "Beige": (226, 198, 148),
}

PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted", "checked", "floral")
GENDERS: tuple[str, ...] = ("Men", "Women", "Unisex")
SEASONS: tuple[str, ...] = ("Summer", "Winter", "Spring", "Fall")
USAGES: tuple[str, ...] = ("Casual", "Formal", "Sports", "Party")
PROHIBITED: tuple[str, ...] = ("weapon", "not_a_product", "blank", "text_only")
BRANDS: tuple[str, ...] = (
    "Nordlicht",
    "Alder & Finch",
    "Mira Lane",
    "Kestrel",
    "Urban Fable",
    "Lumen",
    "Tidewater",
    "Hollis",
    "Fjordline",
    "Wrenfield",
)
COLUMNS: tuple[str, ...] = (
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
    "pattern",
    "brand",
    "price",
    "description",
    "description_de",
    "moderation",
)
FIRST_ID = 10000

_SUPERSAMPLE = 2  # draw at twice the size and shrink: cheap anti-aliasing for polygons


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Look:
    """The colours one product is drawn with, already jittered."""

    base: RGB
    accent: RGB
    detail: RGB  # seams, hems, buttons: a shade of the base that stays visible on it
    outline: RGB
    rng: np.random.Generator


@dataclass(frozen=True)
class _Transform:
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


class _Pen:
    """Draws a product: `body` parts get the patterned fabric, the rest solid colours.

    Consecutive body parts are pasted through one mask and outlined together, so a
    later group (a collar, the front sock) is drawn over an earlier one with its own edge.
    """

    def __init__(self, canvas: Image.Image, fabric: Image.Image, xf: _Transform, outline: RGB):
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


Drawing = Callable[[_Pen, _Look], None]


def _arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24
) -> list[Point]:
    """Points on an ellipse from angle a0 to a1 in degrees (y points down, 270 is the top)."""
    angles = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _stroke(points: Sequence[Point], half_width: float, closed: bool = False) -> list[Point]:
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


def _shift(points: Sequence[Point], dx: float, dy: float) -> list[Point]:
    return [(x + dx, y + dy) for x, y in points]


def _mirror(points: Sequence[Point]) -> list[Point]:
    return [(1.0 - x, y) for x, y in points]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _luma(c: RGB) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _distance(a: RGB, b: RGB) -> float:
    return math.dist(a, b)


_WHITE: RGB = (246, 246, 244)
_SILVER: RGB = (188, 190, 196)
_GOLD: RGB = (206, 168, 72)


def _light(look: _Look) -> RGB:
    """A light trim colour (laces, buttons) that still shows on a light product."""
    return _WHITE if _luma(look.base) < 170 else look.detail


def _draw_tshirt(pen: _Pen, look: _Look) -> None:
    neck = [(0.40, 0.10), (0.44, 0.15), (0.50, 0.17), (0.56, 0.15), (0.60, 0.10)]
    pen.body(
        [*neck, (0.73, 0.13), (0.92, 0.31), (0.81, 0.42), (0.71, 0.35), (0.71, 0.92)]
        + [(0.29, 0.92), (0.29, 0.35), (0.19, 0.42), (0.08, 0.31), (0.27, 0.13)]
    )
    pen.line(neck, look.detail, 0.03)
    pen.line([(0.89, 0.285), (0.785, 0.39)], look.detail, 0.012)
    pen.line([(0.11, 0.285), (0.215, 0.39)], look.detail, 0.012)
    pen.line([(0.29, 0.885), (0.71, 0.885)], look.detail, 0.01)


def _draw_shirt(pen: _Pen, look: _Look) -> None:
    left = [(0.27, 0.12), (0.16, 0.30), (0.09, 0.74), (0.20, 0.77), (0.26, 0.46), (0.30, 0.36)]
    pen.body(
        [(0.40, 0.075), (0.45, 0.06), (0.55, 0.06), (0.60, 0.075), *_mirror(left)[::-1]]
        + [(0.70, 0.88), (0.60, 0.91), (0.50, 0.90), (0.40, 0.91), (0.30, 0.88), *left[::-1]]
    )
    pen.line([(0.50, 0.15), (0.50, 0.90)], look.detail, 0.012)
    pen.line([(0.095, 0.70), (0.205, 0.73)], look.detail, 0.012)
    pen.line([(0.905, 0.70), (0.795, 0.73)], look.detail, 0.012)
    pocket = [(0.34, 0.30), (0.45, 0.30), (0.45, 0.42), (0.34, 0.42), (0.34, 0.30)]
    pen.line(pocket, look.detail, 0.008)
    collar = [(0.40, 0.07), (0.50, 0.15), (0.445, 0.23), (0.37, 0.12)]
    pen.body(collar)
    pen.body(_mirror(collar))
    pen.flush()
    for y in (0.26, 0.38, 0.50, 0.62, 0.74, 0.85):
        pen.circle(0.50, y, 0.013, _light(look))


def _draw_jacket(pen: _Pen, look: _Look) -> None:
    left = [(0.26, 0.13), (0.15, 0.32), (0.08, 0.74), (0.20, 0.77), (0.26, 0.46), (0.29, 0.40)]
    pen.body(
        [(0.40, 0.10), (0.60, 0.10), *_mirror(left)[::-1], (0.71, 0.82), (0.29, 0.82), *left[::-1]]
    )
    pen.solid([(0.42, 0.08), (0.58, 0.08), (0.50, 0.22)], _mix(look.base, (0, 0, 0), 0.55))
    collar = [(0.37, 0.05), (0.46, 0.06), (0.50, 0.22), (0.39, 0.14)]
    pen.body(collar)
    pen.body(_mirror(collar))
    pen.flush()
    pen.solid([(0.29, 0.77), (0.71, 0.77), (0.71, 0.82), (0.29, 0.82)], look.detail, look.outline)
    cuff = [(0.09, 0.70), (0.205, 0.725), (0.20, 0.77), (0.08, 0.74)]
    pen.solid(cuff, look.detail, look.outline)
    pen.solid(_mirror(cuff), look.detail, look.outline)
    pen.line([(0.50, 0.21), (0.50, 0.82)], _SILVER, 0.014)
    pen.line([(0.50, 0.21), (0.50, 0.82)], (90, 90, 96), 0.004)
    pen.solid([(0.49, 0.22), (0.515, 0.22), (0.515, 0.29), (0.49, 0.29)], _SILVER, (90, 90, 96))
    pen.line([(0.34, 0.55), (0.41, 0.68)], _SILVER, 0.01)
    pen.line([(0.66, 0.55), (0.59, 0.68)], _SILVER, 0.01)


def _draw_coat(pen: _Pen, look: _Look) -> None:
    left = [(0.27, 0.10), (0.16, 0.28), (0.10, 0.70), (0.21, 0.72), (0.26, 0.42), (0.29, 0.36)]
    pen.body(
        [(0.40, 0.07), (0.60, 0.07), *_mirror(left)[::-1], (0.75, 0.97), (0.25, 0.97), *left[::-1]]
    )
    pen.solid([(0.42, 0.07), (0.58, 0.07), (0.50, 0.30)], _mix(look.base, (0, 0, 0), 0.55))
    lapel = [(0.40, 0.06), (0.50, 0.44), (0.44, 0.40), (0.35, 0.21), (0.39, 0.17), (0.35, 0.12)]
    pen.body(lapel)
    pen.body(_mirror(lapel))
    pen.flush()
    pen.line([(0.53, 0.44), (0.53, 0.97)], look.detail, 0.01)
    buttons = (0.43, 0.63) if look.rng.random() < 0.5 else (0.50,)
    for x in buttons:
        for y in (0.50, 0.63, 0.76):
            pen.circle(x if len(buttons) > 1 else 0.515, y, 0.018, look.detail)
    pen.line([(0.31, 0.74), (0.42, 0.74)], look.detail, 0.01)
    pen.line([(0.69, 0.74), (0.58, 0.74)], look.detail, 0.01)


def _draw_dress(pen: _Pen, look: _Look) -> None:
    strap = [(0.385, 0.03), (0.425, 0.03), (0.445, 0.16), (0.395, 0.16)]
    pen.body(strap)
    pen.body(_mirror(strap))
    pen.body(
        [(0.36, 0.15), (0.44, 0.15), (0.50, 0.23), (0.56, 0.15), (0.64, 0.15), (0.62, 0.30)]
        + [(0.60, 0.42), (0.70, 0.62), (0.84, 0.93), (0.67, 0.96), (0.50, 0.97), (0.33, 0.96)]
        + [(0.16, 0.93), (0.30, 0.62), (0.40, 0.42), (0.38, 0.30)]
    )
    pen.line([(0.40, 0.42), (0.60, 0.42)], look.detail, 0.014)
    pen.line([(0.45, 0.44), (0.38, 0.94)], look.detail, 0.006)
    pen.line([(0.55, 0.44), (0.62, 0.94)], look.detail, 0.006)


def _draw_skirt(pen: _Pen, look: _Look) -> None:
    pen.body(
        [(0.32, 0.16), (0.68, 0.16), (0.69, 0.25), (0.82, 0.82), (0.66, 0.85), (0.50, 0.86)]
        + [(0.34, 0.85), (0.18, 0.82), (0.31, 0.25)]
    )
    pen.line([(0.31, 0.245), (0.69, 0.245)], look.detail, 0.012)
    for x_top, x_bottom in ((0.40, 0.33), (0.47, 0.45), (0.53, 0.55), (0.60, 0.67)):
        pen.line([(x_top, 0.26), (x_bottom, 0.84)], look.detail, 0.006)
    pen.circle(0.50, 0.205, 0.014, look.detail)


_LEGS = [(0.31, 0.05), (0.69, 0.05), (0.70, 0.12), (0.73, 0.95), (0.54, 0.95), (0.50, 0.36)]
_LEGS += [(0.46, 0.95), (0.27, 0.95), (0.30, 0.12)]


def _draw_trousers(pen: _Pen, look: _Look) -> None:
    pen.body(_LEGS)
    pen.line([(0.30, 0.115), (0.70, 0.115)], look.detail, 0.012)
    pen.line([(0.47, 0.12), (0.47, 0.28), (0.50, 0.33)], look.detail, 0.008)
    pen.line([(0.385, 0.13), (0.37, 0.94)], look.detail, 0.006)
    pen.line([(0.615, 0.13), (0.63, 0.94)], look.detail, 0.006)
    pen.line([(0.37, 0.12), (0.31, 0.24)], look.detail, 0.008)
    pen.line([(0.63, 0.12), (0.69, 0.24)], look.detail, 0.008)


def _draw_jeans(pen: _Pen, look: _Look) -> None:
    stitch = (214, 150, 60)
    pen.body(_LEGS)
    pen.line([(0.30, 0.115), (0.70, 0.115)], stitch, 0.008)
    pen.line([(0.47, 0.12), (0.47, 0.27), (0.50, 0.32)], stitch, 0.007)
    pen.line([(0.39, 0.12), (0.36, 0.20), (0.305, 0.22)], stitch, 0.007)
    pen.line([(0.61, 0.12), (0.64, 0.20), (0.695, 0.22)], stitch, 0.007)
    pen.line([(0.315, 0.23), (0.30, 0.93)], stitch, 0.006)
    pen.line([(0.685, 0.23), (0.70, 0.93)], stitch, 0.006)
    pen.line([(0.28, 0.91), (0.46, 0.91)], stitch, 0.006)
    pen.line([(0.54, 0.91), (0.72, 0.91)], stitch, 0.006)
    for x, y in ((0.39, 0.125), (0.61, 0.125), (0.31, 0.22), (0.69, 0.22)):
        pen.circle(x, y, 0.011, (176, 120, 70))
    pen.circle(0.50, 0.08, 0.014, _SILVER)


def _draw_shorts(pen: _Pen, look: _Look) -> None:
    pen.body(
        [(0.29, 0.16), (0.71, 0.16), (0.72, 0.23), (0.80, 0.74), (0.55, 0.76), (0.50, 0.46)]
        + [(0.45, 0.76), (0.20, 0.74), (0.28, 0.23)]
    )
    pen.line([(0.28, 0.225), (0.72, 0.225)], look.detail, 0.012)
    pen.line([(0.47, 0.23), (0.47, 0.37), (0.50, 0.41)], look.detail, 0.008)
    pen.line([(0.21, 0.70), (0.455, 0.72)], look.detail, 0.01)
    pen.line([(0.79, 0.70), (0.545, 0.72)], look.detail, 0.01)
    pen.line([(0.36, 0.23), (0.30, 0.35)], look.detail, 0.008)
    pen.line([(0.64, 0.23), (0.70, 0.35)], look.detail, 0.008)


def _sole_colour(look: _Look) -> RGB:
    options = [(70, 45, 30), (186, 142, 92), (34, 32, 30), _mix(look.base, (0, 0, 0), 0.5)]
    options = [c for c in options if _distance(c, look.base) > 60]
    return options[int(look.rng.integers(len(options)))]


def _draw_casual_shoe(pen: _Pen, look: _Look) -> None:
    sole = _sole_colour(look)
    pen.body(
        [(0.09, 0.70), (0.07, 0.55), (0.09, 0.40), (0.16, 0.38), (0.26, 0.42), (0.36, 0.45)]
        + [(0.42, 0.40), (0.50, 0.39), (0.60, 0.44), (0.72, 0.50), (0.84, 0.54), (0.92, 0.59)]
        + [(0.95, 0.65), (0.94, 0.70)]
    )
    pen.line([(0.10, 0.40), (0.16, 0.39), (0.26, 0.43), (0.36, 0.46)], (40, 30, 26), 0.016)
    pen.line([(0.41, 0.41), (0.44, 0.55), (0.36, 0.63), (0.20, 0.64)], look.detail, 0.008)
    for i in range(4):
        x, y = 0.44 + 0.04 * i, 0.405 + 0.016 * i
        pen.line([(x, y + 0.03), (x + 0.04, y)], _light(look), 0.012)
        pen.circle(x, y + 0.03, 0.007, look.detail)
    pen.line([(0.10, 0.67), (0.93, 0.67)], look.detail, 0.006)
    pen.solid(
        [(0.07, 0.70), (0.95, 0.70), (0.965, 0.735), (0.30, 0.74), (0.29, 0.78), (0.08, 0.78)],
        sole,
        _mix(sole, (0, 0, 0), 0.4),
    )


def _draw_sneaker(pen: _Pen, look: _Look) -> None:
    pen.body(
        [(0.10, 0.68), (0.08, 0.52), (0.11, 0.37), (0.17, 0.35), (0.24, 0.40), (0.33, 0.42)]
        + [(0.38, 0.33), (0.45, 0.31), (0.47, 0.38), (0.58, 0.44), (0.72, 0.50), (0.86, 0.55)]
        + [(0.93, 0.60), (0.95, 0.66)]
    )
    trim = _WHITE if _luma(look.base) < 170 else (120, 120, 124)
    pen.line([(0.22, 0.62), (0.42, 0.60), (0.60, 0.53), (0.70, 0.50)], trim, 0.022)
    pen.solid([(0.09, 0.38), (0.16, 0.355), (0.17, 0.50), (0.09, 0.52)], look.detail, look.outline)
    for i in range(5):
        x, y = 0.46 + 0.05 * i, 0.39 + 0.028 * i
        pen.line([(x - 0.02, y - 0.025), (x + 0.03, y + 0.03)], _light(look), 0.014)
    pen.solid(
        [(0.07, 0.66), (0.96, 0.64), (0.975, 0.69), (0.95, 0.735), (0.10, 0.745), (0.06, 0.72)],
        (246, 246, 246),
        (150, 150, 150),
    )
    pen.line([(0.08, 0.70), (0.965, 0.695)], (175, 175, 178), 0.007)
    for i in range(9):
        x = 0.14 + 0.09 * i
        pen.line([(x, 0.735), (x + 0.03, 0.735)], (120, 120, 124), 0.01)


def _draw_sandal(pen: _Pen, look: _Look) -> None:
    pen.body(_stroke(_arc(0.29, 0.42, 0.14, 0.045, 0, 360, 28)[:-1], 0.024, closed=True))
    pen.flush()
    pen.body(_stroke([(0.14, 0.71), (0.155, 0.43)], 0.03))
    pen.body(_stroke(_arc(0.77, 0.71, 0.11, 0.11, 180, 360, 16), 0.034))
    pen.body(_stroke(_arc(0.53, 0.71, 0.11, 0.17, 180, 360, 16), 0.034))
    pen.flush()
    pen.solid([(0.40, 0.42), (0.45, 0.42), (0.45, 0.48), (0.40, 0.48)], _SILVER, (90, 90, 96))
    footbed = _mix(look.base, (0, 0, 0), 0.12)
    pen.solid(
        [(0.07, 0.70), (0.93, 0.69), (0.955, 0.72), (0.93, 0.755), (0.09, 0.765), (0.06, 0.73)],
        footbed,
        look.outline,
    )
    outsole = (40, 34, 30) if _luma(look.base) > 60 else (110, 100, 92)
    pen.solid(
        [(0.08, 0.765), (0.93, 0.755), (0.92, 0.775), (0.30, 0.78), (0.28, 0.80), (0.09, 0.80)],
        outsole,
    )


def _draw_boot(pen: _Pen, look: _Look) -> None:
    pen.body(
        [(0.22, 0.05), (0.48, 0.05), (0.49, 0.30), (0.51, 0.52), (0.60, 0.58), (0.74, 0.62)]
        + [(0.86, 0.65), (0.92, 0.69), (0.93, 0.76), (0.19, 0.76), (0.20, 0.45), (0.21, 0.20)]
    )
    pen.line([(0.22, 0.10), (0.48, 0.10)], look.detail, 0.014)
    pen.solid([(0.19, 0.02), (0.24, 0.02), (0.24, 0.09), (0.19, 0.09)], look.detail, look.outline)
    for i in range(6):
        y = 0.14 + 0.065 * i
        x = 0.475 + 0.005 * i + (0.02 if i == 5 else 0.0)
        pen.line([(x - 0.08, y), (x - 0.005, y + 0.04)], _light(look), 0.012)
        pen.circle(x - 0.08, y, 0.009, _SILVER)
    pen.line([(0.21, 0.72), (0.92, 0.72)], look.detail, 0.006)
    heel = (34, 30, 28) if _luma(look.base) > 60 else (96, 70, 52)
    pen.solid(
        [(0.17, 0.76), (0.95, 0.76), (0.95, 0.80), (0.37, 0.80), (0.36, 0.87), (0.17, 0.87)],
        heel,
        _mix(heel, (0, 0, 0), 0.4),
    )


def _draw_handbag(pen: _Pen, look: _Look) -> None:
    pen.body(_stroke(_arc(0.50, 0.43, 0.20, 0.30, 185, 355, 20), 0.025))
    pen.flush()
    pen.body(
        [(0.20, 0.42), (0.80, 0.42), (0.86, 0.80), (0.85, 0.86), (0.80, 0.89), (0.20, 0.89)]
        + [(0.15, 0.86), (0.14, 0.80)]
    )
    pen.flush()
    pen.body([(0.20, 0.42), (0.80, 0.42), (0.815, 0.57), (0.50, 0.65), (0.185, 0.57)])
    pen.flush()
    pen.solid([(0.47, 0.61), (0.53, 0.61), (0.53, 0.68), (0.47, 0.68)], _GOLD, (140, 110, 40))
    pen.circle(0.30, 0.42, 0.018, _GOLD)
    pen.circle(0.70, 0.42, 0.018, _GOLD)


def _draw_cap(pen: _Pen, look: _Look) -> None:
    pen.body([*_arc(0.45, 0.64, 0.30, 0.36, 180, 360, 28)])
    pen.line([(0.45, 0.29), (0.33, 0.40), (0.29, 0.62)], look.detail, 0.008)
    pen.line([(0.45, 0.29), (0.57, 0.40), (0.61, 0.62)], look.detail, 0.008)
    pen.line([(0.16, 0.61), (0.74, 0.61)], look.detail, 0.016)
    pen.circle(0.45, 0.285, 0.025, look.detail)
    pen.circle(0.36, 0.42, 0.01, look.detail)
    tip = _arc(0.93, 0.675, 0.035, 0.025, -90, 90, 8)
    pen.body([(0.64, 0.59), (0.78, 0.60), (0.88, 0.625), *tip, (0.84, 0.695), (0.72, 0.665)])
    pen.flush()


def _draw_scarf(pen: _Pen, look: _Look) -> None:
    def fringe(x0: float, x1: float, y: float, slant: float) -> None:
        for i in range(9):
            x = x0 + (x1 - x0) * (i + 0.5) / 9
            pen.line([(x, y - 0.01), (x + slant, y + 0.06)], look.detail, 0.009)

    right = [(0.52, 0.27), (0.66, 0.27), (0.71, 0.78), (0.57, 0.78)]
    pen.body(right)
    fringe(0.57, 0.71, 0.78, 0.01)
    pen.body(_stroke(_arc(0.50, 0.21, 0.21, 0.11, 0, 360, 32)[:-1], 0.055, closed=True))
    pen.flush()
    pen.body([(0.34, 0.27), (0.49, 0.27), (0.43, 0.88), (0.28, 0.88)])
    pen.flush()
    fringe(0.28, 0.43, 0.88, -0.005)
    for y in (0.33, 0.36):
        pen.line([(0.34, y), (0.485, y)], look.detail, 0.006)


def _sock(pen: _Pen, look: _Look, dx: float, dy: float) -> None:
    pen.body(
        _shift(
            [(0.18, 0.06), (0.40, 0.06), (0.40, 0.50), (0.46, 0.56), (0.60, 0.58), (0.68, 0.61)]
            + [(0.71, 0.66), (0.69, 0.71), (0.62, 0.73), (0.30, 0.73), (0.22, 0.71), (0.18, 0.65)],
            dx,
            dy,
        )
    )
    pen.flush()
    for i in range(8):
        x = 0.195 + 0.027 * i
        pen.line(_shift([(x, 0.07), (x, 0.15)], dx, dy), look.detail, 0.006)
    pen.line(_shift([(0.18, 0.155), (0.40, 0.155)], dx, dy), look.detail, 0.01)
    patch = [(0.18, 0.60), (0.25, 0.61), (0.29, 0.73), (0.22, 0.71), (0.18, 0.65)]
    pen.solid(_shift(patch, dx, dy), look.detail, look.outline)
    toe = [(0.63, 0.585), (0.68, 0.61), (0.71, 0.66), (0.69, 0.71), (0.62, 0.73), (0.64, 0.66)]
    pen.solid(_shift(toe, dx, dy), look.detail, look.outline)


def _draw_socks(pen: _Pen, look: _Look) -> None:
    _sock(pen, look, 0.15, 0.12)
    _sock(pen, look, -0.05, 0.0)


# ------------------------------------------------------------------- article types


@dataclass(frozen=True)
class _Article:
    noun: str  # as used in an English sentence
    plural: bool
    display: str  # as used in productDisplayName
    noun_de: str
    genus_de: str  # m, f, n or pl: picks the German adjective ending
    price: tuple[float, float]
    patterns: dict[str, float]
    genders: dict[str, float]
    usages: dict[str, float]
    seasons: dict[str, float]
    draw: Drawing
    colours: tuple[str, ...] = tuple(COLOURS)


_ANY_PATTERN = {"plain": 0.4, "striped": 0.15, "dotted": 0.15, "checked": 0.15, "floral": 0.15}
_MOSTLY_PLAIN = {"plain": 0.6, "striped": 0.1, "dotted": 0.1, "checked": 0.1, "floral": 0.1}
_TAILORED = {"plain": 0.6, "striped": 0.15, "checked": 0.25}
_ANYONE = {"Men": 0.45, "Women": 0.4, "Unisex": 0.15}
_WOMEN = {"Women": 1.0}
_ALL_YEAR = {"Summer": 0.25, "Winter": 0.25, "Spring": 0.25, "Fall": 0.25}
_WARM = {"Summer": 0.5, "Spring": 0.3, "Fall": 0.1, "Winter": 0.1}
_COLD = {"Winter": 0.45, "Fall": 0.35, "Spring": 0.1, "Summer": 0.1}

_ARTICLES: dict[str, _Article] = {
    "Tshirts": _Article(
        "t-shirt", False, "Tshirt", "T-Shirt", "n", (9, 35), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.7, "Sports": 0.3}, _WARM, _draw_tshirt,
    ),
    "Shirts": _Article(
        "shirt", False, "Shirt", "Hemd", "n", (20, 70), _ANY_PATTERN, _ANYONE,
        {"Formal": 0.5, "Casual": 0.4, "Party": 0.1}, _ALL_YEAR, _draw_shirt,
    ),
    "Dresses": _Article(
        "dress", False, "Dress", "Kleid", "n", (25, 120), _ANY_PATTERN, _WOMEN,
        {"Party": 0.4, "Casual": 0.45, "Formal": 0.15}, _WARM, _draw_dress,
    ),
    "Skirts": _Article(
        "skirt", False, "Skirt", "Rock", "m", (20, 80), _ANY_PATTERN, _WOMEN,
        {"Casual": 0.5, "Formal": 0.3, "Party": 0.2}, _ALL_YEAR, _draw_skirt,
    ),
    "Trousers": _Article(
        "trousers", True, "Trousers", "Hose", "f", (25, 90), _TAILORED, _ANYONE,
        {"Formal": 0.6, "Casual": 0.4}, _ALL_YEAR, _draw_trousers,
    ),
    "Jeans": _Article(
        "jeans", True, "Jeans", "Jeans", "f", (30, 110), {"plain": 1.0}, _ANYONE,
        {"Casual": 1.0}, _ALL_YEAR, _draw_jeans,
        ("Blue", "Navy Blue", "Black", "Grey", "White"),
    ),
    "Shorts": _Article(
        "shorts", True, "Shorts", "Shorts", "pl", (15, 50), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.6, "Sports": 0.4}, _WARM, _draw_shorts,
    ),
    "Jackets": _Article(
        "jacket", False, "Jacket", "Jacke", "f", (40, 180), _TAILORED, _ANYONE,
        {"Casual": 0.7, "Sports": 0.3}, _COLD, _draw_jacket,
    ),
    "Coats": _Article(
        "coat", False, "Coat", "Mantel", "m", (70, 260), _TAILORED, _ANYONE,
        {"Formal": 0.6, "Casual": 0.4}, _COLD, _draw_coat,
    ),
    "Casual Shoes": _Article(
        "shoes", True, "Casual Shoes", "Schuhe", "pl", (35, 120), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.7, "Formal": 0.3}, _ALL_YEAR, _draw_casual_shoe,
    ),
    "Sports Shoes": _Article(
        "sneakers", True, "Sports Shoes", "Turnschuhe", "pl", (40, 160), _MOSTLY_PLAIN, _ANYONE,
        {"Sports": 0.8, "Casual": 0.2}, _ALL_YEAR, _draw_sneaker,
    ),
    "Sandals": _Article(
        "sandals", True, "Sandals", "Sandalen", "pl", (15, 70), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.8, "Party": 0.2}, _WARM, _draw_sandal,
    ),
    "Boots": _Article(
        "boots", True, "Boots", "Stiefel", "pl", (60, 220), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.7, "Formal": 0.3}, _COLD, _draw_boot,
    ),
    "Handbags": _Article(
        "handbag", False, "Handbag", "Tasche", "f", (25, 200), _MOSTLY_PLAIN, _WOMEN,
        {"Casual": 0.5, "Formal": 0.3, "Party": 0.2}, _ALL_YEAR, _draw_handbag,
    ),
    "Caps": _Article(
        "cap", False, "Cap", "Hut", "m", (8, 35), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.7, "Sports": 0.3}, _WARM, _draw_cap,
    ),
    "Scarves": _Article(
        "scarf", False, "Scarf", "Schal", "m", (10, 60), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.7, "Formal": 0.3}, _COLD, _draw_scarf,
    ),
    "Socks": _Article(
        "socks", True, "Socks", "Socken", "pl", (3, 15), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.6, "Sports": 0.3, "Formal": 0.1}, _ALL_YEAR, _draw_socks,
    ),
}  # fmt: skip

# ------------------------------------------------------------------- descriptions

_COLOUR_DE = {
    "Black": "schwarz",
    "White": "weiß",
    "Red": "rot",
    "Blue": "blau",
    "Navy Blue": "marineblau",
    "Green": "grün",
    "Yellow": "gelb",
    "Pink": "rosa",
    "Purple": "lila",
    "Brown": "braun",
    "Grey": "grau",
    "Orange": "orange",
    "Beige": "beige",
}
_PATTERN_DE = {
    "plain": "einfarbig",
    "striped": "gestreift",
    "dotted": "gepunktet",
    "checked": "kariert",
    "floral": "geblümt",
}
GERMAN: dict[str, str] = {
    **{name: article.noun_de for name, article in _ARTICLES.items()},
    **_COLOUR_DE,
    **_PATTERN_DE,
}

_INDECLINABLE_DE = {"rosa", "lila", "orange", "beige"}
_ENDING_DE = {"m": "er", "f": "e", "n": "es", "pl": "e"}  # nominative, strong or after ein
_ARTICLE_DE = {"m": "ein", "f": "eine", "n": "ein", "pl": ""}
_PATTERN_EN = {
    "plain": "plain",
    "striped": "striped",
    "dotted": "dotted",
    "checked": "checked",
    "floral": "floral",
}
_MOTIF = {  # pattern -> (English plural, German dative plural) for "with white dots"
    "striped": ("stripes", "Streifen"),
    "dotted": ("dots", "Punkten"),
    "checked": ("checks", "Karos"),
    "floral": ("flowers", "Blumen"),
}
_DESIGN = {  # pattern -> closing phrase
    "plain": ("in a solid colour", "in einfarbigem Design"),
    "striped": ("with a striped pattern", "mit Streifenmuster"),
    "dotted": ("with a polka-dot pattern", "mit Punktemuster"),
    "checked": ("with a check pattern", "mit Karomuster"),
    "floral": ("with a floral print", "mit Blumenmuster"),
}
_FOR_GENDER = {
    "Men": ("for men", "für Herren", "Men's"),
    "Women": ("for women", "für Damen", "Women's"),
    "Unisex": ("for men and women", "für Damen und Herren", "Unisex"),
}
_FOR_USAGE = {
    "Casual": ("everyday wear", "für den Alltag"),
    "Formal": ("the office", "fürs Büro"),
    "Sports": ("sport and training", "für Sport und Training"),
    "Party": ("parties and nights out", "für Partys und Abende"),
}
_FOR_SEASON = {
    "Summer": ("summer", "den Sommer"),
    "Winter": ("winter", "den Winter"),
    "Spring": ("spring", "den Frühling"),
    "Fall": ("autumn", "den Herbst"),
}
_N_TEMPLATES = 5


def _adjective_de(stem: str, genus: str) -> str:
    return stem if stem in _INDECLINABLE_DE else stem + _ENDING_DE[genus]


def _dative_plural_de(stem: str) -> str:
    return stem if stem in _INDECLINABLE_DE else stem + "en"


def _sentence(*words: str) -> str:
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:]


def _describe(
    article: str, colour: str, pattern: str, accent: str, gender: str, usage: str,
    season: str, brand: str, template: int,
) -> tuple[str, str]:  # fmt: skip
    """One English sentence and its German counterpart."""
    a = _ARTICLES[article]
    colour_en, accent_en = colour.lower(), accent.lower()
    colour_de, genus = _COLOUR_DE[colour], a.genus_de
    pattern_en, pattern_de = _PATTERN_EN[pattern], _adjective_de(_PATTERN_DE[pattern], genus)
    for_en, for_de, possessive = _FOR_GENDER[gender]

    def indefinite(first_word: str) -> str:
        if a.plural:
            return ""
        return "an" if first_word[0] in "aeiou" else "a"

    if template == 0:
        en = _sentence(indefinite(pattern_en), pattern_en, colour_en, a.noun, for_en) + "."
        de_words = (_ARTICLE_DE[genus], pattern_de, _adjective_de(colour_de, genus), a.noun_de)
        de = _sentence(*de_words, for_de) + "."
    elif template == 1:
        motif_en, motif_de = _MOTIF[pattern]
        en = _sentence(
            indefinite(colour_en), colour_en, a.noun, "with", accent_en, motif_en, for_en
        )
        de = _sentence(
            _ARTICLE_DE[genus], _adjective_de(colour_de, genus), a.noun_de, "mit",
            _dative_plural_de(_COLOUR_DE[accent]), motif_de, for_de,
        )  # fmt: skip
        en, de = en + ".", de + "."
    elif template == 2:
        usage_en, usage_de = _FOR_USAGE[usage]
        en = _sentence(pattern_en, colour_en, a.noun) + f", ideal for {usage_en}."
        de = _sentence(pattern_de, _adjective_de(colour_de, genus), a.noun_de)
        de += f", ideal {usage_de}."
    elif template == 3:
        season_en, season_de = _FOR_SEASON[season]
        en = _sentence(pattern_en, a.noun, "in", colour_en, "by", brand)
        en += f", perfect for {season_en}."
        de = _sentence(pattern_de, a.noun_de, "in", colour_de.capitalize(), "von", brand)
        de += f", perfekt für {season_de}."
    else:
        design_en, design_de = _DESIGN[pattern]
        en = _sentence(possessive, colour_en, a.noun, design_en) + "."
        de = _sentence(_adjective_de(colour_de, genus), a.noun_de, for_de, design_de) + "."
    return en, de


# ------------------------------------------------------------------------ metadata


@dataclass(frozen=True)
class _Item:
    id: int
    gender: str
    article: str
    colour: str
    season: str
    year: int
    usage: str
    pattern: str
    accent: str  # palette colour of the stripes, dots, checks or flowers
    brand: str
    price: float
    template: int
    moderation: str = ""


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _balanced(rng: np.random.Generator, values: Sequence[str], n: int) -> list[str]:
    """Shuffled rounds of every value, so even a small catalogue holds each one."""
    out: list[str] = []
    while len(out) < n:
        out.extend(values[int(i)] for i in rng.permutation(len(values)))
    return out[:n]


def _pick_accent(rng: np.random.Generator, colour: str) -> str:
    base = COLOURS[colour]
    if _luma(base) < 170 and rng.random() < 0.65:
        return "White"
    options = [n for n, rgb in COLOURS.items() if n != colour and _distance(rgb, base) > 150]
    return options[int(rng.integers(len(options)))]


def _price(rng: np.random.Generator, low: float, high: float) -> float:
    cents = (0.99, 0.95, 0.49, 0.0)[int(rng.integers(4))]
    return round(math.floor(rng.uniform(low, high)) + cents, 2)


def _plan(n_products: int, n_prohibited: int, seed: int) -> list[_Item]:
    rng = np.random.default_rng(seed)
    articles = _balanced(rng, list(_ARTICLES), n_products)
    colours = _balanced(rng, list(COLOURS), n_products)
    items = []
    for i in range(n_products):
        article = _ARTICLES[articles[i]]
        colour = colours[i]
        if colour not in article.colours:
            colour = article.colours[int(rng.integers(len(article.colours)))]
        pattern = _pick(rng, article.patterns)
        templates = [t for t in range(_N_TEMPLATES) if pattern != "plain" or t != 1]
        items.append(
            _Item(
                id=FIRST_ID + i,
                gender=_pick(rng, article.genders),
                article=articles[i],
                colour=colour,
                season=_pick(rng, article.seasons),
                year=int(rng.integers(2012, 2020)),
                usage=_pick(rng, article.usages),
                pattern=pattern,
                accent=_pick_accent(rng, colour),
                brand=BRANDS[int(rng.integers(len(BRANDS)))],
                price=_price(rng, *article.price),
                template=templates[int(rng.integers(len(templates)))],
            )
        )
    for j in range(n_prohibited):
        items.append(
            _Item(
                id=FIRST_ID + n_products + j,
                gender="Unisex",
                article="Unknown",
                colour="Unknown",
                season=SEASONS[int(rng.integers(len(SEASONS)))],
                year=int(rng.integers(2012, 2020)),
                usage="Casual",
                pattern="",
                accent="",
                brand="",
                price=_price(rng, 5, 80),
                template=0,
                moderation=PROHIBITED[j % len(PROHIBITED)],
            )
        )
    return items


_PROHIBITED_TEXT = {  # category -> (productDisplayName, description, description_de)
    "weapon": (
        "Collector Item",
        "Metal collector item in dark grey, see photo.",
        "Sammlerstück aus Metall in Dunkelgrau, siehe Foto.",
    ),
    "not_a_product": (
        "Holiday Snapshot",
        "Photo of a sunny landscape.",
        "Foto einer sonnigen Landschaft.",
    ),
    "blank": ("Untitled Listing", "Product photo coming soon.", "Produktfoto folgt in Kürze."),
    "text_only": (
        "Shop Notice",
        "Please read the notice in the picture.",
        "Bitte lesen Sie den Hinweis im Bild.",
    ),
}


def _row(item: _Item) -> dict[str, str]:
    if item.moderation:
        master = sub = "Unknown"
        display, description, description_de = _PROHIBITED_TEXT[item.moderation]
    else:
        master, sub = ARTICLE_TYPES[item.article]
        a = _ARTICLES[item.article]
        motif = "" if item.pattern == "plain" else _PATTERN_EN[item.pattern].capitalize() + " "
        display = f"{item.brand} {item.gender} {item.colour} {motif}{a.display}"
        description, description_de = _describe(
            item.article, item.colour, item.pattern, item.accent, item.gender, item.usage,
            item.season, item.brand, item.template,
        )  # fmt: skip
    return {
        "id": str(item.id),
        "gender": item.gender,
        "masterCategory": master,
        "subCategory": sub,
        "articleType": item.article,
        "baseColour": item.colour,
        "season": item.season,
        "year": str(item.year),
        "usage": item.usage,
        "productDisplayName": display,
        "pattern": item.pattern,
        "brand": item.brand,
        "price": f"{item.price:.2f}",
        "description": description,
        "description_de": description_de,
        "moderation": item.moderation,
    }


# ------------------------------------------------------------------------ rendering

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


def _jitter(colour: RGB, rng: np.random.Generator, amount: float = 0.05, tint: bool = True) -> RGB:
    factors = 1.0 + rng.uniform(-amount, amount, 3 if tint else 1).repeat(1 if tint else 3)
    shift = rng.uniform(-5, 5)
    r, g, b = (int(np.clip(c * f + shift, 0, 255)) for c, f in zip(colour, factors, strict=True))
    return r, g, b


def _ramp(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear 0..1 ramp across the image in a random direction."""
    angle = rng.uniform(0, 2 * math.pi)
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    ramp = math.cos(angle) * axis[None, :] + math.sin(angle) * axis[:, None]
    return (ramp + 1.5) / 3.0


def _backdrop(rng: np.random.Generator, size: int, avoid: RGB) -> Image.Image:
    # Light studio colours, mid tones only where the product itself is too light for them.
    light = [c for c in _LIGHT_BACKDROPS if _distance(c, avoid) > 80]
    options = light or [c for c in _MID_BACKDROPS if _distance(c, avoid) > 60]
    first = options[int(rng.integers(len(options)))]
    kind = rng.random()
    if kind < 0.55:
        return Image.new("RGB", (size, size), first)
    second = options[int(rng.integers(len(options)))]
    second = _mix(first, second, rng.uniform(0.3, 0.8))
    t = _ramp(rng, size)[..., None]
    arr = np.asarray(first, np.float32) * (1 - t) + np.asarray(second, np.float32) * t
    if kind > 0.85:  # faint texture: paper grain or a fine linen weave
        if rng.random() < 0.5:
            arr += rng.normal(0, 3.0, (size, size, 1)).astype(np.float32)
        else:
            yy, xx = np.mgrid[0:size, 0:size]
            arr += (2.5 * np.sin(xx * 1.3) * np.sin(yy * 1.3))[..., None].astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _rotate(points: Sequence[Point], degrees: float) -> list[Point]:
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    return [
        (0.5 + (x - 0.5) * cos - (y - 0.5) * sin, 0.5 + (x - 0.5) * sin + (y - 0.5) * cos)
        for x, y in points
    ]


def _fabric(xf: _Transform, look: _Look, pattern: str, article: str) -> Image.Image:
    """The base colour with the pattern, in the product's own frame (it turns with it)."""
    size, rng = xf.size, look.rng
    img = Image.new("RGB", (size, size), look.base)
    draw = ImageDraw.Draw(img)
    lo, hi = -0.3, 1.3  # beyond the unit square, so turned stripes still cover the product
    if article == "Jeans":  # denim twill
        twill = _mix(look.base, (0, 0, 0), 0.18)
        for k in np.arange(lo, hi + 1.0, 0.02):
            draw.line(xf([(k, lo), (k - (hi - lo), hi)]), fill=twill, width=xf.width(0.005))
    if pattern == "striped":
        period = rng.uniform(0.07, 0.12)
        band = period * rng.uniform(0.3, 0.45)
        turn = (0.0, 0.0, 90.0, 45.0, -45.0)[int(rng.integers(5))]
        for k in np.arange(lo, hi, period):
            stripe = [(lo, k), (hi, k), (hi, k + band), (lo, k + band)]
            draw.polygon(xf(_rotate(stripe, turn)), fill=look.accent)
    elif pattern == "dotted":
        period = rng.uniform(0.07, 0.1)
        radius = xf.length(period * rng.uniform(0.18, 0.24))
        for row, y in enumerate(np.arange(lo, hi, period * 0.87)):
            for x in np.arange(lo + (period / 2 if row % 2 else 0.0), hi, period):
                (px, py) = xf([(x, y)])[0]
                draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=look.accent)
    elif pattern == "checked":
        period = rng.uniform(0.08, 0.13)
        band = period * 0.3
        half = _mix(look.base, look.accent, 0.5)
        for k in np.arange(lo, hi, period):
            draw.polygon(xf([(lo, k), (hi, k), (hi, k + band), (lo, k + band)]), fill=half)
            draw.polygon(xf([(k, lo), (k + band, lo), (k + band, hi), (k, hi)]), fill=half)
        for y in np.arange(lo, hi, period):
            for x in np.arange(lo, hi, period):
                cell = [(x, y), (x + band, y), (x + band, y + band), (x, y + band)]
                draw.polygon(xf(cell), fill=look.accent)
    elif pattern == "floral":
        period = rng.uniform(0.11, 0.15)
        petal = xf.length(period * 0.13)
        centre = max(
            (COLOURS[n] for n in ("Yellow", "Orange", "Red", "White", "Black")),
            key=lambda c: min(_distance(c, look.base), _distance(c, look.accent)),
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
def _footprint(draw: Drawing) -> np.ndarray:
    """The unit-square points a drawing reaches, found by drawing it once."""
    size = 100
    look = _Look((128, 128, 128), _WHITE, (0, 0, 0), (0, 0, 0), np.random.default_rng(0))
    canvas = Image.new("RGB", (size, size))
    pen = _Pen(canvas, canvas, _Transform(size, 1.0, size / 2, size / 2, 0.0, False), (0, 0, 0))
    draw(pen, look)
    pen.flush()
    return np.asarray(pen.reach) / size


def _frame(
    rng: np.random.Generator, size: int, footprint: np.ndarray, lo: float = 0.6
) -> _Transform:
    """A random pose: turned, maybe mirrored, 60-95% of the frame, and never cut off."""
    angle, flip = math.radians(rng.uniform(-15, 15)), bool(rng.random() < 0.5)
    points = footprint - 0.5
    if flip:
        points = points * np.array([-1.0, 1.0])
    cos, sin = math.cos(angle), math.sin(angle)
    turned = points @ np.array([[cos, sin], [-sin, cos]])
    low, high = turned.min(axis=0), turned.max(axis=0)
    side = rng.uniform(lo, 0.95) * size / float((high - low).max())
    margin = 0.02 * size
    cx = rng.uniform(margin - low[0] * side, size - margin - high[0] * side)
    cy = rng.uniform(margin - low[1] * side, size - margin - high[1] * side)
    return _Transform(size=size, scale=side / size, cx=cx, cy=cy, angle=angle, flip=flip)


def _render_product(item: _Item, size: int, rng: np.random.Generator) -> Image.Image:
    named = COLOURS[item.colour]
    base = _jitter(named, rng)
    # A darker shade for seams, a lighter one on colours too dark to darken.
    detail = _mix(base, (0, 0, 0), 0.35) if _luma(base) > 60 else _mix(base, (255, 255, 255), 0.3)
    accent = _jitter(COLOURS[item.accent], rng, 0.04)
    look = _Look(base, accent, detail, _mix(base, (0, 0, 0), 0.45), rng)
    canvas = _backdrop(rng, size, named)
    draw = _ARTICLES[item.article].draw
    xf = _frame(rng, size, _footprint(draw))
    pen = _Pen(canvas, _fabric(xf, look, item.pattern, item.article), xf, look.outline)
    draw(pen, look)
    pen.flush()
    return canvas


def _draw_pistol(pen: _Pen, look: _Look) -> None:
    metal, dark, edge = look.base, look.detail, look.outline
    pen.solid([(0.14, 0.44), (0.70, 0.44), (0.70, 0.51), (0.14, 0.51)], metal, edge)
    pen.solid(_stroke(_arc(0.45, 0.51, 0.075, 0.08, 0, 180, 12), 0.014), metal, edge)
    pen.solid([(0.42, 0.50), (0.455, 0.50), (0.43, 0.58), (0.415, 0.575)], dark)
    grip = [(0.13, 0.46), (0.37, 0.46), (0.35, 0.53), (0.31, 0.85), (0.27, 0.87), (0.10, 0.85)]
    pen.solid([*grip, (0.08, 0.81), (0.14, 0.56)], (30, 30, 32), edge)
    for i in range(12):
        x, y = 0.16 + 0.05 * (i % 4) - 0.012 * (i // 4), 0.58 + 0.08 * (i // 4)
        pen.circle(x, y, 0.007, (58, 58, 60))
    pen.solid([(0.86, 0.335), (0.91, 0.335), (0.91, 0.405), (0.86, 0.405)], dark, edge)
    slide = [(0.10, 0.30), (0.86, 0.30), (0.88, 0.32), (0.88, 0.44), (0.10, 0.44)]
    pen.solid(slide, metal, edge)
    pen.solid([(0.42, 0.32), (0.58, 0.32), (0.58, 0.37), (0.42, 0.37)], dark)
    for i in range(6):
        pen.line([(0.14 + 0.018 * i, 0.315), (0.14 + 0.018 * i, 0.425)], dark, 0.006)
    pen.solid([(0.82, 0.275), (0.845, 0.275), (0.845, 0.30), (0.82, 0.30)], dark)
    pen.solid([(0.11, 0.275), (0.15, 0.275), (0.15, 0.30), (0.11, 0.30)], dark)


def _draw_knife(pen: _Pen, look: _Look) -> None:
    steel = look.accent
    blade = [(0.40, 0.43), (0.84, 0.43), (0.96, 0.465), (0.84, 0.55), (0.70, 0.585), (0.40, 0.585)]
    pen.solid(blade, steel, _mix(steel, (0, 0, 0), 0.5))
    bevel = [(0.40, 0.55), (0.70, 0.55), (0.83, 0.52), (0.95, 0.467)]
    pen.line(bevel, _mix(steel, _WHITE, 0.5), 0.01)
    pen.line([(0.42, 0.46), (0.80, 0.46)], _mix(steel, (0, 0, 0), 0.3), 0.01)
    pen.solid([(0.36, 0.38), (0.40, 0.38), (0.40, 0.64), (0.36, 0.64)], look.base, look.outline)
    handle = [(0.08, 0.44), (0.36, 0.445), (0.36, 0.575), (0.08, 0.585), (0.05, 0.56)]
    pen.solid([*handle, (0.05, 0.465)], (28, 28, 30), (0, 0, 0))
    for x in (0.13, 0.22, 0.31):
        pen.circle(x, 0.512, 0.013, _SILVER)


def _render_weapon(item: _Item, size: int, rng: np.random.Generator) -> Image.Image:
    canvas = _backdrop(rng, size, (60, 60, 60))
    metal = _jitter((62, 64, 68), rng, 0.15, tint=False)
    steel = _jitter((150, 154, 160), rng, 0.2, tint=False)
    look = _Look(metal, steel, _mix(metal, (0, 0, 0), 0.5), _mix(metal, (0, 0, 0), 0.6), rng)
    draw = _draw_pistol if rng.random() < 0.5 else _draw_knife
    xf = _frame(rng, size, _footprint(draw), lo=0.7)
    draw(_Pen(canvas, canvas, xf, look.outline), look)
    return canvas


def _render_scene(item: _Item, size: int, rng: np.random.Generator) -> Image.Image:
    horizon = rng.uniform(0.5, 0.68) * size
    top = np.asarray(_jitter((95, 155, 225), rng, 0.1), np.float32)
    low = np.asarray(_jitter((205, 225, 245), rng, 0.05), np.float32)
    t = np.clip(np.linspace(0, 1, size, dtype=np.float32) * size / horizon, 0, 1)[:, None, None]
    sky = np.broadcast_to(top * (1 - t) + low * t, (size, size, 3))
    canvas = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)

    def disc(x: float, y: float, r: float, colour: RGB) -> None:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)

    u = rng.uniform
    disc(u(0.1, 0.9) * size, u(0.08, 0.3) * size, u(0.05, 0.09) * size, (252, 222, 90))
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = u(0, 1) * size, u(0.08, 0.35) * size
        for k in range(4):
            x, y = cx + (k - 1.5) * 0.05 * size, cy + u(-0.02, 0.02) * size
            disc(x, y, 0.045 * size, (250, 250, 252))
    far, near = _jitter((120, 178, 112), rng, 0.1), _jitter((70, 140, 60), rng, 0.1)
    for colour, rise in ((far, 0.12), (near, 0.03)):
        for _ in range(3):
            cx, rx = u(-0.1, 1.1) * size, u(0.3, 0.6) * size
            cy = horizon + u(-0.02, 0.04) * size - rise * size
            draw.ellipse([cx - rx, cy, cx + rx, cy + 2 * size], fill=colour)
    draw.rectangle([0, horizon + 0.06 * size, size, size], fill=near)
    house, tree = rng.random() < 0.6, rng.random() < 0.7
    if house or not tree:
        x, w = u(0.1, 0.55) * size, u(0.22, 0.32) * size
        floor, h = horizon + u(0.12, 0.22) * size, u(0.16, 0.24) * size
        walls = [(238, 226, 196), (200, 80, 60), (246, 246, 240), (236, 210, 120)]
        ink = (60, 50, 40)
        draw.rectangle([x, floor - h, x + w, floor], fill=walls[int(rng.integers(4))], outline=ink)
        eaves, ridge = floor - h, floor - 1.7 * h
        roof = [(x - 0.03 * size, eaves), (x + w / 2, ridge), (x + w + 0.03 * size, eaves)]
        draw.polygon(roof, fill=_jitter((120, 50, 40), rng, 0.2))
        draw.rectangle([x + 0.4 * w, floor - 0.5 * h, x + 0.6 * w, floor], fill=(110, 70, 40))
        for wx in (x + 0.12 * w, x + 0.7 * w):
            window = [wx, floor - 0.75 * h, wx + 0.18 * w, floor - 0.45 * h]
            draw.rectangle(window, fill=(170, 210, 240), outline=ink)
    if tree:
        x, floor = u(0.6, 0.9) * size, horizon + u(0.1, 0.25) * size
        trunk = 0.03 * size
        draw.rectangle([x - trunk, floor - 0.2 * size, x + trunk, floor], fill=(110, 72, 40))
        leaves = _jitter((50, 120, 50), rng, 0.1)
        for dx, dy in ((0, -0.3), (-0.07, -0.24), (0.07, -0.24), (0, -0.2)):
            disc(x + dx * size, floor + dy * size, 0.08 * size, leaves)
    return canvas


def _render_blank(item: _Item, size: int, rng: np.random.Generator) -> Image.Image:
    colour = np.asarray(rng.integers(30, 250, 3), np.float32)
    arr = colour + rng.normal(0, rng.uniform(0.8, 2.5), (size, size, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.broadcast_to(arr, (size, size, 3)), 0, 255).astype(np.uint8))


_WORDS = (
    "order now contact us free delivery price on request size available sale today only new "
    "stock limited offer discount please message shop payment return policy shipping worldwide "
    "call details inside quality guaranteed best deal visit our store open monday to saturday"
).split()


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _render_text(item: _Item, size: int, rng: np.random.Generator) -> Image.Image:
    paper = _jitter((248, 248, 246), rng, 0.02)
    canvas = Image.new("RGB", (size, size), paper)
    draw = ImageDraw.Draw(canvas)
    font = _font(int(size * rng.uniform(0.06, 0.1)))
    margin, y = size * rng.uniform(0.05, 0.1), size * rng.uniform(0.06, 0.14)
    ink = tuple(int(v) for v in rng.integers(0, 40, 3))
    while y < size * 0.85:
        words: list[str] = []
        target = size * rng.uniform(0.5, 0.85)
        while draw.textlength(" ".join(words), font=font) < target:
            words.append(_WORDS[int(rng.integers(len(_WORDS)))])
        draw.text((margin, y), " ".join(words[:-1] or words), font=font, fill=ink)
        y += font.size * rng.uniform(1.3, 1.7)
    return canvas


_RENDERERS: dict[str, Callable[[_Item, int, np.random.Generator], Image.Image]] = {
    "": _render_product,
    "weapon": _render_weapon,
    "not_a_product": _render_scene,
    "blank": _render_blank,
    "text_only": _render_text,
}


def _photograph(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Shrink to the final size under uneven light with a little exposure and contrast play."""
    small = canvas.reduce(_SUPERSAMPLE)
    arr = np.asarray(small, np.float32)
    light = 1.0 + rng.uniform(0.0, 0.04) * (2 * _ramp(rng, small.size[0]) - 1)
    arr = arr * light[..., None] * rng.uniform(0.95, 1.08)
    mean = arr.mean()
    arr = (arr - mean) * rng.uniform(0.95, 1.1) + mean
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def _image(item: _Item, image_size: int, seed: int) -> tuple[Image.Image, int]:
    """The item's picture and its JPEG quality, from a random stream of its own."""
    rng = np.random.default_rng([seed, item.id])
    canvas = _RENDERERS[item.moderation](item, image_size * _SUPERSAMPLE, rng)
    return _photograph(canvas, rng), int(rng.integers(80, 96))


# ---------------------------------------------------------------------------- API


def generate(
    out_dir: Path,
    n_products: int = 3000,
    seed: int = 0,
    image_size: int = 128,
    n_prohibited: int = 60,
    progress: bool = True,
) -> Path:
    """Write out_dir/styles.csv and out_dir/images/<id>.jpg; return the csv path.

    The same seed gives byte-identical files: each image has its own random stream,
    seeded by (seed, id).
    """
    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    items = _plan(n_products, n_prohibited, seed)
    csv_path = out_dir / "styles.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_row(item) for item in items)
    for item in tqdm(items, desc="demo catalogue", unit="img", disable=not progress):
        image, quality = _image(item, image_size, seed)
        image.save(images / f"{item.id}.jpg", "JPEG", quality=quality)
    return csv_path
