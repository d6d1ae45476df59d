"""Captions for contrastive training, made from a product's attributes and descriptions.

A catalogue row (Kaggle "Fashion Product Images" columns) gives several short
captions in the words shoppers type ("a red dress", "striped t-shirt in navy
blue"), its display name and its free-text descriptions. Attribute captions
come in English and German; the German ones decline the colour adjective by
the noun's gender ("ein rotes Kleid", "eine rote Hose", "rote Schuhe"). The words
and the grammar tables are catalogue.vocabulary's, shared with the demo catalogue.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from catalogue.vocabulary import (
    ARTICLE_DE,
    ARTICLE_NAMES,
    GENDER_DE,
    GENDER_EN,
    GENDER_POSSESSIVE,
    GENUS_DE,
    GERMAN,
    PATTERN_DE,
    PATTERN_MOTIF,
    PLURAL_NAMES,
    adjective_de,
)

LANGUAGES = ("en", "de")
VISIBLE = ("articleType", "baseColour", "pattern")


@dataclass(frozen=True)
class Caption:
    """A caption and the visible attributes it states, as (column, value) pairs.

    "a red dress" states the article type and the colour, so it describes every
    red dress, whatever its pattern: in a training batch those are positives too,
    not negatives. `None` means a text that describes only its own product.
    """

    text: str
    attributes: frozenset[tuple[str, str]] | None


EN_TEMPLATES = (
    "{a} {colour} {article}",
    "{colour} {article}",
    "a photo of {a} {colour} {pattern} {article} for {gender}",
    "{a} {pattern} {article} in {colour}",
    "{colour} {pattern} {article}",
    "{article} in {colour}",
    "{gender}'s {colour} {article}",
    # without a colour, so that "a photo of a dress" (zero-shot prompts) means something
    "a photo of {a} {article}",
    "{a} {pattern} {article}",
    "{article} for {gender}",
)
DE_TEMPLATES = (
    "{ein} {colour} {article}",
    "{colour} {article}",
    "{ein} {pattern} {colour} {article} für {gender}",
    "{article} in {Colour}",
    "{pattern} {article} in {Colour}",
    "{ein} {pattern} {article}",
    "{article} für {gender}",
)
OMIT_PLAIN = 0.7  # how often a caption leaves out "plain": shoppers rarely type it
# Only for a patterned product: its motif named as shoppers name it ("a dress with
# flowers"), and the pattern on its own ("floral", "with flowers"), which states nothing
# else, so it is a positive for every product with the pattern.
EN_MOTIF_TEMPLATES = ("{a} {article} with {motif}", "{a} {colour} {article} with {motif}")
DE_MOTIF_TEMPLATES = ("{ein} {article} mit {motif}", "{ein} {colour} {article} mit {motif}")


def article_name(article_type: str) -> str:
    """Kaggle article type -> the singular (or pair-plural) noun a shopper types."""
    return article_names(article_type)[0]


def article_names(article_type: str) -> tuple[str, ...]:
    """All names of an article type, canonical first."""
    if article_type in ARTICLE_NAMES:
        return ARTICLE_NAMES[article_type]
    word = article_type.lower()
    for plural, singular in (("ies", "y"), ("shes", "sh"), ("ches", "ch"), ("sses", "ss")):
        if word.endswith(plural):
            return (word[: -len(plural)] + singular,)
    return (word[:-1] if word.endswith("s") and not word.endswith("ss") else word,)


def _indefinite(next_word: str, noun: str) -> str:
    if noun in PLURAL_NAMES:
        return ""
    return "an" if next_word[:1] in "aeiou" else "a"


def _clean(text: str) -> str:
    return " ".join(text.split())


def colour_de(colour: str, article_type: str) -> str:
    """The German colour adjective declined for the article's noun ("rotes" for Kleid)."""
    stem = GERMAN.get(colour, colour.lower())
    genus = GENUS_DE.get(GERMAN.get(article_type, ""), "n")
    return adjective_de(stem, genus)


def attribute_query(colour: str, article_type: str, language: str = "en") -> str:
    """The shopper query for a colour and article type: "a red dress", "ein rotes Kleid"."""
    if language == "en":
        noun = article_name(article_type)
        colour_en = colour.lower()
        return _clean(f"{_indefinite(colour_en, noun)} {colour_en} {noun}")
    if language == "de":
        noun = GERMAN.get(article_type, article_type)
        genus = GENUS_DE.get(noun, "n")
        return _clean(f"{ARTICLE_DE[genus]} {colour_de(colour, article_type)} {noun}")
    raise ValueError(f"unknown language {language!r}: use one of {LANGUAGES}")


PHRASINGS = ("adjective", "motif")
"""How a shopper names a pattern: "floral" / "geblümt", or "with flowers" / "mit Blumen"."""


def pattern_words(pattern: str, language: str = "en", phrasing: str = "adjective") -> str:
    """A (non-plain) pattern on its own, as typed beside a photo: "floral", "with flowers",
    "geblümt", "mit Blumen"."""
    _check_language(language)
    if phrasing == "motif":
        return f"with {PATTERN_MOTIF[pattern][0]}" if language == "en" \
            else f"mit {PATTERN_MOTIF[pattern][1]}"
    return pattern if language == "en" else PATTERN_DE[pattern]


def pattern_query(pattern: str, article_type: str, language: str = "en",
                  phrasing: str = "adjective") -> str:
    """The shopper query for a pattern and article type: "a floral dress", "a dress with
    flowers", "ein geblümtes Kleid", "ein Kleid mit Blumen"."""
    _check_language(language)
    if language == "en":
        noun = article_name(article_type)
        if phrasing == "motif":
            motif = pattern_words(pattern, "en", "motif")
            return _clean(f"{_indefinite(noun, noun)} {noun} {motif}")
        return _clean(f"{_indefinite(pattern, noun)} {pattern} {noun}")
    noun = GERMAN.get(article_type, article_type)
    genus = GENUS_DE.get(noun, "n")
    if phrasing == "motif":
        return _clean(f"{ARTICLE_DE[genus]} {noun} {pattern_words(pattern, 'de', 'motif')}")
    return _clean(f"{ARTICLE_DE[genus]} {adjective_de(PATTERN_DE[pattern], genus)} {noun}")


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: use one of {LANGUAGES}")


def _with_article(text: str, noun: str) -> str:
    """Replace the "{a}" marker by "a", "an" or nothing, by the word that follows it."""
    words = _clean(text).split(" ")
    out = []
    for i, word in enumerate(words):
        if word == "\x00":
            nxt = words[i + 1] if i + 1 < len(words) else ""
            word = _indefinite(nxt, noun)
        out.append(word)
    return _clean(" ".join(out))


def _stated(row: Mapping[str, str], template: str, pattern_shown: bool) -> frozenset:
    """The visible attributes a template caption states about the product."""
    stated = {("articleType", row["articleType"])}
    if "{colour}" in template or "{Colour}" in template:
        stated.add(("baseColour", row["baseColour"]))
    if pattern_shown and row.get("pattern"):
        stated.add(("pattern", row["pattern"]))
    return frozenset(stated)


def visible_attributes(row: Mapping[str, str]) -> frozenset:
    """(column, value) pairs a picture of the product shows: article type, colour, pattern."""
    return frozenset((c, row[c]) for c in VISIBLE if row.get(c))


def _english(row: Mapping[str, str], rng: random.Random) -> list[Caption]:
    names = article_names(row["articleType"])
    colour = row["baseColour"].lower()
    pattern = row.get("pattern", "") or ""
    gender = row.get("gender", "")
    captions = []
    for template in EN_TEMPLATES:
        noun = _noun(names, rng)
        shown = "" if pattern == "plain" and rng.random() < OMIT_PLAIN else pattern
        if "{gender}'s" in template:
            template = template.replace("{gender}'s", GENDER_POSSESSIVE.get(gender, ""))
        text = template.format(a="\x00", colour=colour, pattern=shown, article=noun,
                               gender=GENDER_EN.get(gender, "everyone"))
        shown_here = bool(shown) and "{pattern}" in template
        captions.append(Caption(_with_article(text, noun), _stated(row, template, shown_here)))
    if pattern in PATTERN_MOTIF:
        for template in EN_MOTIF_TEMPLATES:
            noun = _noun(names, rng)
            text = template.format(a="\x00", colour=colour, article=noun,
                                   motif=PATTERN_MOTIF[pattern][0])
            captions.append(Caption(_with_article(text, noun), _stated(row, template, True)))
        captions.append(_pattern_alone(pattern, "en", rng))
    return captions


def _noun(names: Sequence[str], rng: random.Random) -> str:
    """An article's name for one caption: the canonical one most of the time, so queries
    meet the name they were trained on."""
    return names[0] if rng.random() < 0.7 else rng.choice(names)


def _pattern_alone(pattern: str, language: str, rng: random.Random) -> Caption:
    return Caption(pattern_words(pattern, language, rng.choice(PHRASINGS)),
                   frozenset({("pattern", pattern)}))


def _german(row: Mapping[str, str], rng: random.Random) -> list[Caption]:
    article_type, colour = row["articleType"], row["baseColour"]
    noun = GERMAN.get(article_type)
    if noun is None or colour not in GERMAN:
        return []  # no German words for this row: its German description must do
    genus = GENUS_DE.get(noun, "n")
    pattern = row.get("pattern", "") or ""
    pattern_stem = GERMAN.get(pattern, "")
    captions = []
    for template in DE_TEMPLATES:
        shown = pattern_stem
        if pattern == "plain" and rng.random() < OMIT_PLAIN:
            shown = ""
        if shown:
            # before a noun the pattern is declined like the colour; after "in Rot" it is too
            shown = adjective_de(shown, genus)
        text = template.format(ein=ARTICLE_DE[genus], colour=colour_de(colour, article_type),
                               Colour=GERMAN[colour].capitalize(), pattern=shown, article=noun,
                               gender=GENDER_DE.get(row.get("gender", ""), "alle"))
        shown_here = bool(shown) and "{pattern}" in template
        captions.append(Caption(_clean(text), _stated(row, template, shown_here)))
    if pattern in PATTERN_MOTIF:
        for template in DE_MOTIF_TEMPLATES:
            text = template.format(ein=ARTICLE_DE[genus], colour=colour_de(colour, article_type),
                                   article=noun, motif=PATTERN_MOTIF[pattern][1])
            captions.append(Caption(_clean(text), _stated(row, template, True)))
        captions.append(_pattern_alone(pattern, "de", rng))
    return captions


def labelled_captions(row: Mapping[str, str], languages: Sequence[str] = ("en",),
                      rng: random.Random | None = None) -> list[Caption]:
    """Every caption of one product, each with the visible attributes it states.

    English: the attribute templates, the display name and `description`.
    German: the German templates and `description_de`. Names and descriptions
    state all visible attributes. Rows flagged for moderation get only their
    descriptions, which state nothing but themselves (they are not products).
    """
    rng = rng or random.Random(0)
    unknown = set(languages) - set(LANGUAGES)
    if unknown:
        raise ValueError(f"unknown languages {sorted(unknown)}: use {LANGUAGES}")
    moderated = bool(row.get("moderation"))
    whole = None if moderated else visible_attributes(row)
    captions: list[Caption] = []
    if "en" in languages:
        if not moderated:
            captions += _english(row, rng)
            captions.append(Caption(row.get("productDisplayName", ""), whole))
        captions.append(Caption(row.get("description", ""), whole))
    if "de" in languages:
        if not moderated:
            captions += _german(row, rng)
        captions.append(Caption(row.get("description_de", ""), whole))
    return [c for c in captions if c.text]


def captions_for(row: Mapping[str, str], languages: Sequence[str] = ("en",),
                 rng: random.Random | None = None) -> list[str]:
    """Every caption of one product in the given languages; `rng` varies the wording."""
    return [c.text for c in labelled_captions(row, languages, rng)]


def caption_corpus(rows: Iterable[Mapping[str, str]], languages: Sequence[str] = LANGUAGES,
                   seed: int = 0) -> list[str]:
    """All captions of all rows, for training a tokenizer."""
    rng = random.Random(seed)
    corpus: list[str] = []
    for row in rows:
        corpus += captions_for(row, languages, rng)
        corpus += [article_name(row["articleType"]), *article_names(row["articleType"])]
    return corpus
