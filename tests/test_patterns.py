"""The pattern metrics of `vitrine eval` (training.patterns) on hand-made vectors, the
pattern queries they ask, the captions that state patterns, and the batches that put
products differing only in pattern side by side."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from catalogue.captions import labelled_captions, pattern_query, pattern_words
from catalogue.queries import DEFAULT_ALPHA
from training.data import kindred_order
from training.patterns import (
    mixed_queries,
    mixed_query_success,
    pattern_article_precision,
    pattern_metrics,
    pattern_only_precision,
)

ROOT = Path(__file__).resolve().parents[1]
ARTICLES = {"Dresses": ("dress", "kleid"), "Socks": ("socks", "socken")}
COLOURS = {"Red": ("red", "rot"), "Blue": ("blue", "blau")}
PATTERNS = {"plain": ("plain",), "floral": ("floral", "flowers", "geblümt", "blumen"),
            "dotted": ("dotted", "dots", "gepunktet", "punkten")}
AXES = [*ARTICLES, *COLOURS, *PATTERNS]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def image_vector(row: dict) -> np.ndarray:
    v = np.zeros(len(AXES), np.float32)
    for column in ("articleType", "baseColour", "pattern"):
        v[AXES.index(row[column])] = 1.0
    return unit(v)


class WordEncoder:
    """Texts to the axes whose words they contain; `sees_patterns` False is a model blind
    to pattern words (they map to nothing)."""

    def __init__(self, sees_patterns: bool = True):
        self.sees_patterns = sees_patterns

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            words = re.findall(r"\w+", text.lower())
            v = np.full(len(AXES), 1e-3, np.float32)
            vocab = {**ARTICLES, **COLOURS, **(PATTERNS if self.sees_patterns else {})}
            for axis, names in vocab.items():
                if any(w.startswith(n) for w in words for n in names):
                    v[AXES.index(axis)] = 1.0
            out.append(unit(v))
        return np.stack(out)


def catalogue() -> list[dict]:
    """Five of every (article, colour, pattern): 60 products, in that order."""
    return [{"id": str(len(AXES) * 10 + i), "articleType": a, "baseColour": c, "pattern": p}
            for i, (a, c, p) in enumerate((a, c, p) for a in ARTICLES for c in COLOURS
                                          for p in PATTERNS for _ in range(5))]


def test_pattern_queries_in_both_languages_and_phrasings():
    assert pattern_query("floral", "Dresses") == "a floral dress"
    assert pattern_query("floral", "Dresses", phrasing="motif") == "a dress with flowers"
    assert pattern_query("dotted", "Socks", "en", "motif") == "socks with dots"
    assert pattern_query("dotted", "Dresses", "de", "motif") == "ein Kleid mit Punkten"
    assert pattern_query("floral", "Dresses", "de") == "ein geblümtes Kleid"
    assert pattern_query("checked", "Handbags", "de") == "eine karierte Tasche"
    assert pattern_words("floral", "de") == "geblümt"
    assert pattern_words("striped", "en", "motif") == "with stripes"
    with pytest.raises(ValueError):
        pattern_query("floral", "Dresses", "fr")


def test_a_model_that_sees_patterns_scores_one_and_a_blind_one_does_not():
    rows = catalogue()
    images = np.stack([image_vector(r) for r in rows])
    seeing = pattern_metrics(WordEncoder(), rows, images, "en")
    assert seeing["pattern_article"]["precision@10"] == 1.0
    assert seeing["pattern_article"]["queries"] == 2 * 2 * 2  # (floral, dotted) x articles x 2
    assert seeing["pattern_only"]["precision@10"] == 1.0
    assert seeing["mixed"]["success"] == 1.0
    assert seeing["mixed"]["alpha"] == DEFAULT_ALPHA
    assert pattern_metrics(WordEncoder(), rows, images, "de")["mixed"]["success"] == 1.0

    blind = WordEncoder(sees_patterns=False)  # ties keep the catalogue's order
    assert pattern_article_precision(blind, rows, images, "en")["precision@10"] == 0.25
    assert pattern_only_precision(blind, rows, images, "en")["precision@10"] == 0.25
    # blind to the words, the photo alone finds its own kind: plain first, the pattern by luck
    assert mixed_query_success(blind, rows, images, "en")["success"] < 1.0


def test_mixed_queries_ask_only_for_patterns_the_kind_has_and_skip_the_product_itself():
    rows = [{"articleType": "Dresses", "baseColour": "Red", "pattern": "plain"},
            {"articleType": "Dresses", "baseColour": "Red", "pattern": "floral"},
            {"articleType": "Dresses", "baseColour": "Blue", "pattern": "dotted"},
            {"articleType": "Dresses", "baseColour": "Red", "pattern": "plain"}]
    assert mixed_queries(rows) == [(0, "floral"), (3, "floral")]
    images = np.stack([image_vector(r) for r in rows])
    result = mixed_query_success(WordEncoder(), rows, images, "en", alpha=1.0, top=1)
    # photo only, top 1: the other plain red dress (itself excluded), never the floral one
    assert result["success"] == 0.0 and result["queries"] == 4


def test_the_shop_page_and_the_api_start_at_the_default_alpha():
    page = (ROOT / "api" / "static" / "index.html").read_text()
    slider = re.search(r'<input id="alpha"[^>]*value="([0-9.]+)"', page, re.S)
    assert slider and float(slider.group(1)) == DEFAULT_ALPHA
    script = (ROOT / "api" / "static" / "js" / "shop.js").read_text()
    assert re.search(rf"alpha: {DEFAULT_ALPHA},", script)
    from api.search_body import SearchRequest

    assert SearchRequest.model_fields["alpha"].default == DEFAULT_ALPHA


def test_patterned_products_get_captions_naming_the_motif_and_the_pattern_alone():
    row = {"articleType": "Dresses", "baseColour": "Red", "pattern": "floral", "gender": "Women",
           "productDisplayName": "Kestrel Women Red Dress", "description": "",
           "description_de": "", "moderation": ""}
    by_text = {c.text: c.attributes for c in labelled_captions(row, ("en", "de"),
                                                               random.Random(0))}
    assert by_text["a red dress with flowers"] == {("articleType", "Dresses"),
                                                   ("baseColour", "Red"), ("pattern", "floral")}
    assert by_text["ein Kleid mit Blumen"] == {("articleType", "Dresses"), ("pattern", "floral")}
    alone = [t for t, a in by_text.items() if a == {("pattern", "floral")}]
    assert len(alone) == 2 and set(alone) <= {"floral", "with flowers", "geblümt", "mit Blumen"}
    plain = {**row, "pattern": "plain"}
    assert not any("with" in c.text for c in labelled_captions(plain, ("en",), random.Random(0)))


def test_kindred_order_runs_share_article_and_colour_and_differ_in_pattern():
    rows = catalogue()  # per kind: plain, floral, dotted, two of each
    order = kindred_order(rows, 3, torch.Generator().manual_seed(0)).tolist()
    assert sorted(order) == list(range(len(rows)))
    runs = [order[i:i + 3] for i in range(0, len(order), 3)]
    for run in runs:
        assert len({(rows[i]["articleType"], rows[i]["baseColour"]) for i in run}) == 1
        assert len({rows[i]["pattern"] for i in run}) == 3
