"""The plan of a demo catalogue: which products (and prohibited items) it holds, as rows.

Everything here comes from one random stream seeded by the catalogue's seed, in a fixed
order, so the same seed always plans the same rows; the images are drawn later, each
from a stream of its own. Article types and colours are dealt in shuffled rounds, so
even a small catalogue holds every one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from catalogue.vocabulary import ARTICLE_TYPES, COLOURS
from demo.articles import ARTICLES, PALETTE
from demo.describe import N_TEMPLATES, describe
from demo.draw import distance, luma
from demo.prohibited import PROHIBITED, PROHIBITED_TEXT

SEASONS: tuple[str, ...] = ("Summer", "Winter", "Spring", "Fall")
USAGES: tuple[str, ...] = ("Casual", "Formal", "Sports", "Party")
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
COLUMNS: tuple[str, ...] = (  # Kaggle's styles.csv columns, then the demo's own
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


@dataclass(frozen=True)
class Item:
    """One row of the catalogue, before it is written or drawn."""

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
    base = PALETTE[colour]
    if luma(base) < 170 and rng.random() < 0.65:
        return "White"
    options = [n for n in COLOURS if n != colour and distance(PALETTE[n], base) > 150]
    return options[int(rng.integers(len(options)))]


def _price(rng: np.random.Generator, low: float, high: float) -> float:
    cents = (0.99, 0.95, 0.49, 0.0)[int(rng.integers(4))]
    return round(math.floor(rng.uniform(low, high)) + cents, 2)


def plan(n_products: int, n_prohibited: int, seed: int) -> list[Item]:
    """The products, with ids from FIRST_ID, then the prohibited items, cycling categories."""
    rng = np.random.default_rng(seed)
    articles = _balanced(rng, list(ARTICLE_TYPES), n_products)
    colours = _balanced(rng, list(COLOURS), n_products)
    items = []
    for i in range(n_products):
        article = ARTICLES[articles[i]]
        colour = colours[i]
        if colour not in article.colours:
            colour = article.colours[int(rng.integers(len(article.colours)))]
        pattern = _pick(rng, article.patterns)
        templates = [t for t in range(N_TEMPLATES) if pattern != "plain" or t != 1]
        items.append(
            Item(
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
            Item(
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


def row(item: Item) -> dict[str, str]:
    """The csv row of an item, in COLUMNS order."""
    if item.moderation:
        master = sub = "Unknown"
        display, description, description_de = PROHIBITED_TEXT[item.moderation]
    else:
        master, sub = ARTICLE_TYPES[item.article]
        a = ARTICLES[item.article]
        motif = "" if item.pattern == "plain" else item.pattern.capitalize() + " "
        display = f"{item.brand} {item.gender} {item.colour} {motif}{a.display}"
        description, description_de = describe(
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
