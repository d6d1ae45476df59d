"""The prohibited images of the demo catalogue, for moderation to reject.

Four categories follow the products: weapons (a pistol or a knife, posed like a
product), photos that are no product at all (a landscape), blanks (a near-uniform
colour) and text only (a shop notice). Their rows carry placeholder metadata, the
kind a careless or malicious seller writes.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from demo.draw import RGB, SILVER, WHITE, Look, Pen, arc, jitter, mix, stroke
from demo.photo import backdrop, footprint, frame

if TYPE_CHECKING:  # annotations only: demo.plan imports this module
    from demo.plan import Item

PROHIBITED: tuple[str, ...] = ("weapon", "not_a_product", "blank", "text_only")

PROHIBITED_TEXT = {  # category -> (productDisplayName, description, description_de)
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


def draw_pistol(pen: Pen, look: Look) -> None:
    metal, dark, edge = look.base, look.detail, look.outline
    pen.solid([(0.14, 0.44), (0.70, 0.44), (0.70, 0.51), (0.14, 0.51)], metal, edge)
    pen.solid(stroke(arc(0.45, 0.51, 0.075, 0.08, 0, 180, 12), 0.014), metal, edge)
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


def draw_knife(pen: Pen, look: Look) -> None:
    steel = look.accent
    blade = [(0.40, 0.43), (0.84, 0.43), (0.96, 0.465), (0.84, 0.55), (0.70, 0.585), (0.40, 0.585)]
    pen.solid(blade, steel, mix(steel, (0, 0, 0), 0.5))
    bevel = [(0.40, 0.55), (0.70, 0.55), (0.83, 0.52), (0.95, 0.467)]
    pen.line(bevel, mix(steel, WHITE, 0.5), 0.01)
    pen.line([(0.42, 0.46), (0.80, 0.46)], mix(steel, (0, 0, 0), 0.3), 0.01)
    pen.solid([(0.36, 0.38), (0.40, 0.38), (0.40, 0.64), (0.36, 0.64)], look.base, look.outline)
    handle = [(0.08, 0.44), (0.36, 0.445), (0.36, 0.575), (0.08, 0.585), (0.05, 0.56)]
    pen.solid([*handle, (0.05, 0.465)], (28, 28, 30), (0, 0, 0))
    for x in (0.13, 0.22, 0.31):
        pen.circle(x, 0.512, 0.013, SILVER)


def render_weapon(item: Item, size: int, rng: np.random.Generator) -> Image.Image:
    canvas = backdrop(rng, size, (60, 60, 60))
    metal = jitter((62, 64, 68), rng, 0.15, tint=False)
    steel = jitter((150, 154, 160), rng, 0.2, tint=False)
    look = Look(metal, steel, mix(metal, (0, 0, 0), 0.5), mix(metal, (0, 0, 0), 0.6), rng)
    draw = draw_pistol if rng.random() < 0.5 else draw_knife
    xf = frame(rng, size, footprint(draw), lo=0.7)
    draw(Pen(canvas, canvas, xf, look.outline), look)
    return canvas


def render_scene(item: Item, size: int, rng: np.random.Generator) -> Image.Image:
    horizon = rng.uniform(0.5, 0.68) * size
    top = np.asarray(jitter((95, 155, 225), rng, 0.1), np.float32)
    low = np.asarray(jitter((205, 225, 245), rng, 0.05), np.float32)
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
    far, near = jitter((120, 178, 112), rng, 0.1), jitter((70, 140, 60), rng, 0.1)
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
        draw.polygon(roof, fill=jitter((120, 50, 40), rng, 0.2))
        draw.rectangle([x + 0.4 * w, floor - 0.5 * h, x + 0.6 * w, floor], fill=(110, 70, 40))
        for wx in (x + 0.12 * w, x + 0.7 * w):
            window = [wx, floor - 0.75 * h, wx + 0.18 * w, floor - 0.45 * h]
            draw.rectangle(window, fill=(170, 210, 240), outline=ink)
    if tree:
        x, floor = u(0.6, 0.9) * size, horizon + u(0.1, 0.25) * size
        trunk = 0.03 * size
        draw.rectangle([x - trunk, floor - 0.2 * size, x + trunk, floor], fill=(110, 72, 40))
        leaves = jitter((50, 120, 50), rng, 0.1)
        for dx, dy in ((0, -0.3), (-0.07, -0.24), (0.07, -0.24), (0, -0.2)):
            disc(x + dx * size, floor + dy * size, 0.08 * size, leaves)
    return canvas


def render_blank(item: Item, size: int, rng: np.random.Generator) -> Image.Image:
    colour = np.asarray(rng.integers(30, 250, 3), np.float32)
    arr = colour + rng.normal(0, rng.uniform(0.8, 2.5), (size, size, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.broadcast_to(arr, (size, size, 3)), 0, 255).astype(np.uint8))


_WORDS = (
    "order now contact us free delivery price on request size available sale today only new "
    "stock limited offer discount please message shop payment return policy shipping worldwide "
    "call details inside quality guaranteed best deal visit our store open monday to saturday"
).split()


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("rendering text needs Pillow with FreeType support")
    return font


def render_text(item: Item, size: int, rng: np.random.Generator) -> Image.Image:
    paper = jitter((248, 248, 246), rng, 0.02)
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
