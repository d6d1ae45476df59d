"""The English and German product descriptions of the demo catalogue.

Five sentence templates, each written in both languages, name the article, its colour
and pattern (and sometimes the accent colour, gender, usage, season or brand), so the
descriptions teach a model the same words the attribute captions use, in real sentences.
The German ones decline every adjective by the noun's gender ("ein rotes Kleid").
"""

from __future__ import annotations

from catalogue.vocabulary import (
    ARTICLE_DE,
    COLOUR_DE,
    GENDER_DE,
    GENDER_EN,
    GENDER_POSSESSIVE,
    GENUS_DE,
    INDECLINABLE_DE,
    NOUN_DE,
    PATTERN_DE,
    PATTERN_MOTIF,
    adjective_de,
)
from demo.articles import ARTICLES

N_TEMPLATES = 5  # template 1 names the motif, so a plain product never gets it

_DESIGN = {  # pattern -> closing phrase
    "plain": ("in a solid colour", "in einfarbigem Design"),
    "striped": ("with a striped pattern", "mit Streifenmuster"),
    "dotted": ("with a polka-dot pattern", "mit Punktemuster"),
    "checked": ("with a check pattern", "mit Karomuster"),
    "floral": ("with a floral print", "mit Blumenmuster"),
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


def _dative_plural_de(stem: str) -> str:
    return stem if stem in INDECLINABLE_DE else stem + "en"


def _sentence(*words: str) -> str:
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:]


def describe(
    article: str, colour: str, pattern: str, accent: str, gender: str, usage: str,
    season: str, brand: str, template: int,
) -> tuple[str, str]:  # fmt: skip
    """One English sentence and its German counterpart."""
    a = ARTICLES[article]
    colour_en, accent_en = colour.lower(), accent.lower()
    noun_de, colour_de = NOUN_DE[article], COLOUR_DE[colour]
    genus = GENUS_DE[noun_de]
    pattern_en, pattern_de = pattern, adjective_de(PATTERN_DE[pattern], genus)
    for_en, for_de = f"for {GENDER_EN[gender]}", f"für {GENDER_DE[gender]}"
    possessive = GENDER_POSSESSIVE[gender]  # always opens its sentence, so it is capitalised

    def indefinite(first_word: str) -> str:
        if a.plural:
            return ""
        return "an" if first_word[0] in "aeiou" else "a"

    if template == 0:
        en = _sentence(indefinite(pattern_en), pattern_en, colour_en, a.noun, for_en) + "."
        de_words = (ARTICLE_DE[genus], pattern_de, adjective_de(colour_de, genus), noun_de)
        de = _sentence(*de_words, for_de) + "."
    elif template == 1:
        motif_en, motif_de = PATTERN_MOTIF[pattern]  # "with white dots"
        en = _sentence(
            indefinite(colour_en), colour_en, a.noun, "with", accent_en, motif_en, for_en
        )
        de = _sentence(
            ARTICLE_DE[genus], adjective_de(colour_de, genus), noun_de, "mit",
            _dative_plural_de(COLOUR_DE[accent]), motif_de, for_de,
        )  # fmt: skip
        en, de = en + ".", de + "."
    elif template == 2:
        usage_en, usage_de = _FOR_USAGE[usage]
        en = _sentence(pattern_en, colour_en, a.noun) + f", ideal for {usage_en}."
        de = _sentence(pattern_de, adjective_de(colour_de, genus), noun_de)
        de += f", ideal {usage_de}."
    elif template == 3:
        season_en, season_de = _FOR_SEASON[season]
        en = _sentence(pattern_en, a.noun, "in", colour_en, "by", brand)
        en += f", perfect for {season_en}."
        de = _sentence(pattern_de, noun_de, "in", colour_de.capitalize(), "von", brand)
        de += f", perfekt für {season_de}."
    else:
        design_en, design_de = _DESIGN[pattern]
        en = _sentence(possessive, colour_en, a.noun, design_en) + "."
        de = _sentence(adjective_de(colour_de, genus), noun_de, for_de, design_de) + "."
    return en, de
