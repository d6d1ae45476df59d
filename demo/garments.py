"""The garment renderers of the demo catalogue, one per article type.

Each draws its silhouette in the unit square with a Pen: `body` parts take the product's
patterned fabric, the rest (soles, zips, buttons) solid colours. Each article type has
an outline and details of its own, so what tells two types apart is visible on the image.
"""

from __future__ import annotations

from demo.draw import (
    GOLD,
    RGB,
    SILVER,
    WHITE,
    Look,
    Pen,
    arc,
    distance,
    light,
    luma,
    mirror,
    mix,
    shift,
    stroke,
)


def draw_tshirt(pen: Pen, look: Look) -> None:
    neck = [(0.40, 0.10), (0.44, 0.15), (0.50, 0.17), (0.56, 0.15), (0.60, 0.10)]
    pen.body(
        [*neck, (0.73, 0.13), (0.92, 0.31), (0.81, 0.42), (0.71, 0.35), (0.71, 0.92)]
        + [(0.29, 0.92), (0.29, 0.35), (0.19, 0.42), (0.08, 0.31), (0.27, 0.13)]
    )
    pen.line(neck, look.detail, 0.03)
    pen.line([(0.89, 0.285), (0.785, 0.39)], look.detail, 0.012)
    pen.line([(0.11, 0.285), (0.215, 0.39)], look.detail, 0.012)
    pen.line([(0.29, 0.885), (0.71, 0.885)], look.detail, 0.01)


def draw_shirt(pen: Pen, look: Look) -> None:
    left = [(0.27, 0.12), (0.16, 0.30), (0.09, 0.74), (0.20, 0.77), (0.26, 0.46), (0.30, 0.36)]
    pen.body(
        [(0.40, 0.075), (0.45, 0.06), (0.55, 0.06), (0.60, 0.075), *mirror(left)[::-1]]
        + [(0.70, 0.88), (0.60, 0.91), (0.50, 0.90), (0.40, 0.91), (0.30, 0.88), *left[::-1]]
    )
    pen.line([(0.50, 0.15), (0.50, 0.90)], look.detail, 0.012)
    pen.line([(0.095, 0.70), (0.205, 0.73)], look.detail, 0.012)
    pen.line([(0.905, 0.70), (0.795, 0.73)], look.detail, 0.012)
    pocket = [(0.34, 0.30), (0.45, 0.30), (0.45, 0.42), (0.34, 0.42), (0.34, 0.30)]
    pen.line(pocket, look.detail, 0.008)
    collar = [(0.40, 0.07), (0.50, 0.15), (0.445, 0.23), (0.37, 0.12)]
    pen.body(collar)
    pen.body(mirror(collar))
    pen.flush()
    for y in (0.26, 0.38, 0.50, 0.62, 0.74, 0.85):
        pen.circle(0.50, y, 0.013, light(look))


def draw_jacket(pen: Pen, look: Look) -> None:
    left = [(0.26, 0.13), (0.15, 0.32), (0.08, 0.74), (0.20, 0.77), (0.26, 0.46), (0.29, 0.40)]
    pen.body(
        [(0.40, 0.10), (0.60, 0.10), *mirror(left)[::-1], (0.71, 0.82), (0.29, 0.82), *left[::-1]]
    )
    pen.solid([(0.42, 0.08), (0.58, 0.08), (0.50, 0.22)], mix(look.base, (0, 0, 0), 0.55))
    collar = [(0.37, 0.05), (0.46, 0.06), (0.50, 0.22), (0.39, 0.14)]
    pen.body(collar)
    pen.body(mirror(collar))
    pen.flush()
    pen.solid([(0.29, 0.77), (0.71, 0.77), (0.71, 0.82), (0.29, 0.82)], look.detail, look.outline)
    cuff = [(0.09, 0.70), (0.205, 0.725), (0.20, 0.77), (0.08, 0.74)]
    pen.solid(cuff, look.detail, look.outline)
    pen.solid(mirror(cuff), look.detail, look.outline)
    pen.line([(0.50, 0.21), (0.50, 0.82)], SILVER, 0.014)
    pen.line([(0.50, 0.21), (0.50, 0.82)], (90, 90, 96), 0.004)
    pen.solid([(0.49, 0.22), (0.515, 0.22), (0.515, 0.29), (0.49, 0.29)], SILVER, (90, 90, 96))
    pen.line([(0.34, 0.55), (0.41, 0.68)], SILVER, 0.01)
    pen.line([(0.66, 0.55), (0.59, 0.68)], SILVER, 0.01)


def draw_coat(pen: Pen, look: Look) -> None:
    left = [(0.27, 0.10), (0.16, 0.28), (0.10, 0.70), (0.21, 0.72), (0.26, 0.42), (0.29, 0.36)]
    pen.body(
        [(0.40, 0.07), (0.60, 0.07), *mirror(left)[::-1], (0.75, 0.97), (0.25, 0.97), *left[::-1]]
    )
    pen.solid([(0.42, 0.07), (0.58, 0.07), (0.50, 0.30)], mix(look.base, (0, 0, 0), 0.55))
    lapel = [(0.40, 0.06), (0.50, 0.44), (0.44, 0.40), (0.35, 0.21), (0.39, 0.17), (0.35, 0.12)]
    pen.body(lapel)
    pen.body(mirror(lapel))
    pen.flush()
    pen.line([(0.53, 0.44), (0.53, 0.97)], look.detail, 0.01)
    buttons = (0.43, 0.63) if look.rng.random() < 0.5 else (0.50,)
    for x in buttons:
        for y in (0.50, 0.63, 0.76):
            pen.circle(x if len(buttons) > 1 else 0.515, y, 0.018, look.detail)
    pen.line([(0.31, 0.74), (0.42, 0.74)], look.detail, 0.01)
    pen.line([(0.69, 0.74), (0.58, 0.74)], look.detail, 0.01)


def draw_dress(pen: Pen, look: Look) -> None:
    strap = [(0.385, 0.03), (0.425, 0.03), (0.445, 0.16), (0.395, 0.16)]
    pen.body(strap)
    pen.body(mirror(strap))
    pen.body(
        [(0.36, 0.15), (0.44, 0.15), (0.50, 0.23), (0.56, 0.15), (0.64, 0.15), (0.62, 0.30)]
        + [(0.60, 0.42), (0.70, 0.62), (0.84, 0.93), (0.67, 0.96), (0.50, 0.97), (0.33, 0.96)]
        + [(0.16, 0.93), (0.30, 0.62), (0.40, 0.42), (0.38, 0.30)]
    )
    pen.line([(0.40, 0.42), (0.60, 0.42)], look.detail, 0.014)
    pen.line([(0.45, 0.44), (0.38, 0.94)], look.detail, 0.006)
    pen.line([(0.55, 0.44), (0.62, 0.94)], look.detail, 0.006)


def draw_skirt(pen: Pen, look: Look) -> None:
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


def draw_trousers(pen: Pen, look: Look) -> None:
    pen.body(_LEGS)
    pen.line([(0.30, 0.115), (0.70, 0.115)], look.detail, 0.012)
    pen.line([(0.47, 0.12), (0.47, 0.28), (0.50, 0.33)], look.detail, 0.008)
    pen.line([(0.385, 0.13), (0.37, 0.94)], look.detail, 0.006)
    pen.line([(0.615, 0.13), (0.63, 0.94)], look.detail, 0.006)
    pen.line([(0.37, 0.12), (0.31, 0.24)], look.detail, 0.008)
    pen.line([(0.63, 0.12), (0.69, 0.24)], look.detail, 0.008)


def draw_jeans(pen: Pen, look: Look) -> None:
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
    pen.circle(0.50, 0.08, 0.014, SILVER)


def draw_shorts(pen: Pen, look: Look) -> None:
    pen.body(
        [(0.29, 0.16), (0.71, 0.16), (0.72, 0.23), (0.80, 0.74), (0.58, 0.76), (0.50, 0.42)]
        + [(0.42, 0.76), (0.20, 0.74), (0.28, 0.23)]
    )
    pen.line([(0.28, 0.225), (0.72, 0.225)], look.detail, 0.012)
    pen.line([(0.47, 0.23), (0.47, 0.37), (0.50, 0.41)], look.detail, 0.008)
    pen.line([(0.21, 0.70), (0.425, 0.72)], look.detail, 0.01)
    pen.line([(0.79, 0.70), (0.575, 0.72)], look.detail, 0.01)
    pen.line([(0.36, 0.23), (0.30, 0.35)], look.detail, 0.008)
    pen.line([(0.64, 0.23), (0.70, 0.35)], look.detail, 0.008)


def _sole_colour(look: Look) -> RGB:
    options = [(70, 45, 30), (186, 142, 92), (34, 32, 30), mix(look.base, (0, 0, 0), 0.5)]
    options = [c for c in options if distance(c, look.base) > 60]
    return options[int(look.rng.integers(len(options)))]


def draw_casual_shoe(pen: Pen, look: Look) -> None:
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
        pen.line([(x, y + 0.03), (x + 0.04, y)], light(look), 0.012)
        pen.circle(x, y + 0.03, 0.007, look.detail)
    pen.line([(0.10, 0.67), (0.93, 0.67)], look.detail, 0.006)
    pen.solid(
        [(0.07, 0.70), (0.95, 0.70), (0.965, 0.735), (0.30, 0.74), (0.29, 0.78), (0.08, 0.78)],
        sole,
        mix(sole, (0, 0, 0), 0.4),
    )


def draw_sneaker(pen: Pen, look: Look) -> None:
    pen.body(
        [(0.10, 0.68), (0.08, 0.52), (0.11, 0.37), (0.17, 0.35), (0.24, 0.40), (0.33, 0.42)]
        + [(0.38, 0.33), (0.45, 0.31), (0.47, 0.38), (0.58, 0.44), (0.72, 0.50), (0.86, 0.55)]
        + [(0.93, 0.60), (0.95, 0.66)]
    )
    trim = WHITE if luma(look.base) < 170 else (120, 120, 124)
    pen.line([(0.22, 0.62), (0.42, 0.60), (0.60, 0.53), (0.70, 0.50)], trim, 0.022)
    pen.solid([(0.09, 0.38), (0.16, 0.355), (0.17, 0.50), (0.09, 0.52)], look.detail, look.outline)
    for i in range(5):
        x, y = 0.46 + 0.05 * i, 0.39 + 0.028 * i
        pen.line([(x - 0.02, y - 0.025), (x + 0.03, y + 0.03)], light(look), 0.014)
    pen.solid(
        [(0.07, 0.66), (0.96, 0.64), (0.975, 0.69), (0.95, 0.735), (0.10, 0.745), (0.06, 0.72)],
        (246, 246, 246),
        (150, 150, 150),
    )
    pen.line([(0.08, 0.70), (0.965, 0.695)], (175, 175, 178), 0.007)
    for i in range(9):
        x = 0.14 + 0.09 * i
        pen.line([(x, 0.735), (x + 0.03, 0.735)], (120, 120, 124), 0.01)


def draw_sandal(pen: Pen, look: Look) -> None:
    # A slide: one broad band over the forefoot, wide enough to show its pattern at the
    # model's 48 px (thin straps showed a stripe or a dot at most), and a thin ankle strap.
    # Not a dome, which reads as a cap; the toes and heel stay bare, as on no shoe.
    pen.body([(0.34, 0.71), (0.36, 0.55), (0.44, 0.47), (0.58, 0.44), (0.70, 0.46)]
             + [(0.78, 0.53), (0.81, 0.71)])
    pen.flush()
    pen.body(stroke([(0.14, 0.71), (0.155, 0.47), (0.38, 0.58)], 0.022))
    pen.flush()
    pen.solid([(0.33, 0.55), (0.38, 0.55), (0.38, 0.61), (0.33, 0.61)], SILVER, (90, 90, 96))
    footbed = mix(look.base, (0, 0, 0), 0.12)
    pen.solid(
        [(0.07, 0.70), (0.93, 0.69), (0.955, 0.72), (0.93, 0.755), (0.09, 0.765), (0.06, 0.73)],
        footbed,
        look.outline,
    )
    outsole = (40, 34, 30) if luma(look.base) > 60 else (110, 100, 92)
    pen.solid(
        [(0.08, 0.765), (0.93, 0.755), (0.92, 0.775), (0.30, 0.78), (0.28, 0.80), (0.09, 0.80)],
        outsole,
    )


def draw_boot(pen: Pen, look: Look) -> None:
    pen.body(
        [(0.22, 0.05), (0.48, 0.05), (0.49, 0.30), (0.51, 0.52), (0.60, 0.58), (0.74, 0.62)]
        + [(0.86, 0.65), (0.92, 0.69), (0.93, 0.76), (0.19, 0.76), (0.20, 0.45), (0.21, 0.20)]
    )
    pen.line([(0.22, 0.10), (0.48, 0.10)], look.detail, 0.014)
    pen.solid([(0.19, 0.02), (0.24, 0.02), (0.24, 0.09), (0.19, 0.09)], look.detail, look.outline)
    for i in range(6):
        y = 0.14 + 0.065 * i
        x = 0.475 + 0.005 * i + (0.02 if i == 5 else 0.0)
        pen.line([(x - 0.08, y), (x - 0.005, y + 0.04)], light(look), 0.012)
        pen.circle(x - 0.08, y, 0.009, SILVER)
    pen.line([(0.21, 0.72), (0.92, 0.72)], look.detail, 0.006)
    heel = (34, 30, 28) if luma(look.base) > 60 else (96, 70, 52)
    pen.solid(
        [(0.17, 0.76), (0.95, 0.76), (0.95, 0.80), (0.37, 0.80), (0.36, 0.87), (0.17, 0.87)],
        heel,
        mix(heel, (0, 0, 0), 0.4),
    )


def draw_handbag(pen: Pen, look: Look) -> None:
    pen.body(stroke(arc(0.50, 0.43, 0.20, 0.30, 185, 355, 20), 0.025))
    pen.flush()
    pen.body(
        [(0.20, 0.42), (0.80, 0.42), (0.86, 0.80), (0.85, 0.86), (0.80, 0.89), (0.20, 0.89)]
        + [(0.15, 0.86), (0.14, 0.80)]
    )
    pen.flush()
    pen.body([(0.20, 0.42), (0.80, 0.42), (0.815, 0.57), (0.50, 0.65), (0.185, 0.57)])
    pen.flush()
    pen.solid([(0.47, 0.61), (0.53, 0.61), (0.53, 0.68), (0.47, 0.68)], GOLD, (140, 110, 40))
    pen.circle(0.30, 0.42, 0.018, GOLD)
    pen.circle(0.70, 0.42, 0.018, GOLD)


def draw_cap(pen: Pen, look: Look) -> None:
    pen.body([*arc(0.45, 0.64, 0.30, 0.36, 180, 360, 28)])
    pen.line([(0.45, 0.29), (0.33, 0.40), (0.29, 0.62)], look.detail, 0.008)
    pen.line([(0.45, 0.29), (0.57, 0.40), (0.61, 0.62)], look.detail, 0.008)
    pen.line([(0.16, 0.61), (0.74, 0.61)], look.detail, 0.016)
    pen.circle(0.45, 0.285, 0.025, look.detail)
    pen.circle(0.36, 0.42, 0.01, look.detail)
    tip = arc(0.93, 0.675, 0.035, 0.025, -90, 90, 8)
    pen.body([(0.64, 0.59), (0.78, 0.60), (0.88, 0.625), *tip, (0.84, 0.695), (0.72, 0.665)])
    pen.flush()


def draw_scarf(pen: Pen, look: Look) -> None:
    def fringe(x0: float, x1: float, y: float, slant: float) -> None:
        for i in range(9):
            x = x0 + (x1 - x0) * (i + 0.5) / 9
            pen.line([(x, y - 0.01), (x + slant, y + 0.06)], look.detail, 0.009)

    right = [(0.52, 0.27), (0.66, 0.27), (0.71, 0.78), (0.57, 0.78)]
    pen.body(right)
    fringe(0.57, 0.71, 0.78, 0.01)
    pen.body(stroke(arc(0.50, 0.21, 0.21, 0.11, 0, 360, 32)[:-1], 0.055, closed=True))
    pen.flush()
    pen.body([(0.34, 0.27), (0.49, 0.27), (0.43, 0.88), (0.28, 0.88)])
    pen.flush()
    fringe(0.28, 0.43, 0.88, -0.005)
    for y in (0.33, 0.36):
        pen.line([(0.34, y), (0.485, y)], look.detail, 0.006)


def _sock(pen: Pen, look: Look, dx: float, dy: float) -> None:
    pen.body(
        shift(
            [(0.18, 0.06), (0.40, 0.06), (0.40, 0.50), (0.46, 0.56), (0.60, 0.58), (0.68, 0.61)]
            + [(0.71, 0.66), (0.69, 0.71), (0.62, 0.73), (0.30, 0.73), (0.22, 0.71), (0.18, 0.65)],
            dx,
            dy,
        )
    )
    pen.flush()
    for i in range(8):
        x = 0.195 + 0.027 * i
        pen.line(shift([(x, 0.07), (x, 0.15)], dx, dy), look.detail, 0.006)
    pen.line(shift([(0.18, 0.155), (0.40, 0.155)], dx, dy), look.detail, 0.01)
    patch = [(0.18, 0.60), (0.25, 0.61), (0.29, 0.73), (0.22, 0.71), (0.18, 0.65)]
    pen.solid(shift(patch, dx, dy), look.detail, look.outline)
    toe = [(0.63, 0.585), (0.68, 0.61), (0.71, 0.66), (0.69, 0.71), (0.62, 0.73), (0.64, 0.66)]
    pen.solid(shift(toe, dx, dy), look.detail, look.outline)


def draw_socks(pen: Pen, look: Look) -> None:
    _sock(pen, look, 0.15, 0.12)
    _sock(pen, look, -0.05, 0.0)
