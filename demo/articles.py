"""What the demo catalogue makes of each article type and colour of the vocabulary.

The words come from catalogue.vocabulary; this module adds only what making a fake
catalogue needs: the RGB each colour is drawn in, the English noun its descriptions use,
the display name, a price range, how often each pattern, gender, usage and season turns
up, and the renderer that draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalogue.vocabulary import COLOURS, PLURAL_NAMES
from demo.draw import RGB, Drawing
from demo.garments import (
    draw_boot,
    draw_cap,
    draw_casual_shoe,
    draw_coat,
    draw_dress,
    draw_handbag,
    draw_jacket,
    draw_jeans,
    draw_sandal,
    draw_scarf,
    draw_shirt,
    draw_shorts,
    draw_skirt,
    draw_sneaker,
    draw_socks,
    draw_trousers,
    draw_tshirt,
)

# Far enough apart that a little jitter and lighting never make another name the nearest.
PALETTE: dict[str, RGB] = {
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


@dataclass(frozen=True)
class Article:
    """How the demo makes products of one article type."""

    noun: str  # as used in an English sentence: one of its vocabulary.ARTICLE_NAMES
    display: str  # as used in productDisplayName
    price: tuple[float, float]
    patterns: dict[str, float]
    genders: dict[str, float]
    usages: dict[str, float]
    seasons: dict[str, float]
    draw: Drawing
    colours: tuple[str, ...] = COLOURS

    @property
    def plural(self) -> bool:
        """Whether the noun takes no indefinite article ("jeans", "socks")."""
        return self.noun in PLURAL_NAMES


_ANY_PATTERN = {"plain": 0.4, "striped": 0.15, "dotted": 0.15, "checked": 0.15, "floral": 0.15}
_MOSTLY_PLAIN = {"plain": 0.6, "striped": 0.1, "dotted": 0.1, "checked": 0.1, "floral": 0.1}
_TAILORED = {"plain": 0.6, "striped": 0.15, "checked": 0.25}
_ANYONE = {"Men": 0.45, "Women": 0.4, "Unisex": 0.15}
_WOMEN = {"Women": 1.0}
_ALL_YEAR = {"Summer": 0.25, "Winter": 0.25, "Spring": 0.25, "Fall": 0.25}
_WARM = {"Summer": 0.5, "Spring": 0.3, "Fall": 0.1, "Winter": 0.1}
_COLD = {"Winter": 0.45, "Fall": 0.35, "Spring": 0.1, "Summer": 0.1}

ARTICLES: dict[str, Article] = {
    "Tshirts": Article(
        "t-shirt", "Tshirt", (9, 35), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.7, "Sports": 0.3}, _WARM, draw_tshirt,
    ),
    "Shirts": Article(
        "shirt", "Shirt", (20, 70), _ANY_PATTERN, _ANYONE,
        {"Formal": 0.5, "Casual": 0.4, "Party": 0.1}, _ALL_YEAR, draw_shirt,
    ),
    "Dresses": Article(
        "dress", "Dress", (25, 120), _ANY_PATTERN, _WOMEN,
        {"Party": 0.4, "Casual": 0.45, "Formal": 0.15}, _WARM, draw_dress,
    ),
    "Skirts": Article(
        "skirt", "Skirt", (20, 80), _ANY_PATTERN, _WOMEN,
        {"Casual": 0.5, "Formal": 0.3, "Party": 0.2}, _ALL_YEAR, draw_skirt,
    ),
    "Trousers": Article(
        "trousers", "Trousers", (25, 90), _TAILORED, _ANYONE,
        {"Formal": 0.6, "Casual": 0.4}, _ALL_YEAR, draw_trousers,
    ),
    "Jeans": Article(
        "jeans", "Jeans", (30, 110), {"plain": 1.0}, _ANYONE,
        {"Casual": 1.0}, _ALL_YEAR, draw_jeans,
        ("Blue", "Navy Blue", "Black", "Grey", "White"),
    ),
    "Shorts": Article(
        "shorts", "Shorts", (15, 50), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.6, "Sports": 0.4}, _WARM, draw_shorts,
    ),
    "Jackets": Article(
        "jacket", "Jacket", (40, 180), _TAILORED, _ANYONE,
        {"Casual": 0.7, "Sports": 0.3}, _COLD, draw_jacket,
    ),
    "Coats": Article(
        "coat", "Coat", (70, 260), _TAILORED, _ANYONE,
        {"Formal": 0.6, "Casual": 0.4}, _COLD, draw_coat,
    ),
    "Casual Shoes": Article(
        "shoes", "Casual Shoes", (35, 120), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.7, "Formal": 0.3}, _ALL_YEAR, draw_casual_shoe,
    ),
    "Sports Shoes": Article(
        "sneakers", "Sports Shoes", (40, 160), _MOSTLY_PLAIN, _ANYONE,
        {"Sports": 0.8, "Casual": 0.2}, _ALL_YEAR, draw_sneaker,
    ),
    "Sandals": Article(
        "sandals", "Sandals", (15, 70), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.8, "Party": 0.2}, _WARM, draw_sandal,
    ),
    "Boots": Article(
        "boots", "Boots", (60, 220), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.7, "Formal": 0.3}, _COLD, draw_boot,
    ),
    "Handbags": Article(
        "handbag", "Handbag", (25, 200), _MOSTLY_PLAIN, _WOMEN,
        {"Casual": 0.5, "Formal": 0.3, "Party": 0.2}, _ALL_YEAR, draw_handbag,
    ),
    "Caps": Article(
        "cap", "Cap", (8, 35), _MOSTLY_PLAIN, _ANYONE,
        {"Casual": 0.7, "Sports": 0.3}, _WARM, draw_cap,
    ),
    "Scarves": Article(
        "scarf", "Scarf", (10, 60), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.7, "Formal": 0.3}, _COLD, draw_scarf,
    ),
    "Socks": Article(
        "socks", "Socks", (3, 15), _ANY_PATTERN, _ANYONE,
        {"Casual": 0.6, "Sports": 0.3, "Formal": 0.1}, _ALL_YEAR, draw_socks,
    ),
}  # fmt: skip
