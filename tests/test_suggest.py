"""Typeahead completions over a real embedded store: prefixes, several words, one typo in
long words only, visibility, counts, ranking, refresh and limit."""

from __future__ import annotations

import numpy as np
import pytest

from catalogue.store.base import StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.suggest import Suggester, Suggestion, _Index

PRODUCTS = [  # title, brand, category
    ("Red Dress with Pockets", "Zara", "Dresses"),
    ("Red Midi Dress", "Mango", "Dresses"),
    ("Floral Wrap Dress", "Massimo Dutti", "Dresses"),
    ("Blue Denim Jacket", "Levi's", "Jackets"),
    ("Black Leather Jacket", "Zara", "Jackets"),
    ("Levi's 501 Jeans", "Levi's", "Jeans"),
    ("jeans", "Massimo Dutti", "Jeans"),
    ("Crème Brûlée Sweater", "Zara", "Knitwear"),
    ("Running Shoes", "Jacky", "Shoes"),
]
FLAGGED = ("Secret Drone Dress", "Hidden Label", "Dresses")


def add(store: EdgeStore, products, status: str = "visible", start: int = 0) -> None:
    rng = np.random.default_rng(start)
    points = []
    for i, (title, brand, category) in enumerate(products, start):
        vector = rng.normal(size=(1, 8)).astype(np.float32)
        payload = {"product_id": f"p{i}", "title": title, "brand": brand,
                   "category": category, "moderation_status": status}
        points.append(StoredPoint(point_id(f"p{i}"), payload,
                                  vector / np.linalg.norm(vector)))
    store.upsert(points)


@pytest.fixture(scope="module")
def suggester(tmp_path_factory):
    store = EdgeStore(tmp_path_factory.mktemp("suggest"), dim=8,
                      indexes=[("moderation_status", "keyword")])
    add(store, PRODUCTS)
    add(store, [FLAGGED], status="flagged", start=100)
    yield Suggester(store)
    store.close()


def texts(found: list[Suggestion]) -> list[str]:
    return [s.text for s in found]


def test_a_prefix_completes_categories_and_titles(suggester):
    found = suggester.suggest("dre")
    assert found[0] == Suggestion("Dresses", "category", 3)
    assert set(texts(found[1:])) == {"Red Dress with Pockets", "Red Midi Dress",
                                     "Floral Wrap Dress"}


def test_earlier_words_match_whole_words_in_any_order(suggester):
    assert set(texts(suggester.suggest("red dr"))) == {"Red Dress with Pockets",
                                                       "Red Midi Dress"}
    assert texts(suggester.suggest("dress re")) == texts(suggester.suggest("red dr"))
    assert suggester.suggest("re dr") == []  # "re" is not a whole word of any entry
    assert texts(suggester.suggest("red ")) == texts(suggester.suggest("red"))


def test_apostrophes_and_accents_fold_away(suggester):
    """ "Levi's" is the one word "levis": "levi", "levis" and "levi's" all reach it."""
    for q in ("lev", "levi", "levis", "LEVI'S", "levi’s"):
        assert suggester.suggest(q)[0] == Suggestion("Levi's", "brand", 2), q
    assert texts(suggester.suggest("levis 50")) == ["Levi's 501 Jeans"]
    assert texts(suggester.suggest("creme brul")) == ["Crème Brûlée Sweater"]
    assert texts(suggester.suggest("BRÛLÉE")) == ["Crème Brûlée Sweater"]


def test_one_typo_in_a_long_word(suggester):
    assert texts(suggester.suggest("jaket")) == ["Jackets", "Blue Denim Jacket",
                                                 "Black Leather Jacket"]
    assert "Jackets" in texts(suggester.suggest("jcaket"))  # neighbours swapped
    assert "Jackets" in texts(suggester.suggest("jackret"))  # one letter too many
    assert "Jackets" in texts(suggester.suggest("jazket"))  # one letter wrong
    assert texts(suggester.suggest("lether jack")) == ["Black Leather Jacket"]
    assert suggester.suggest("jeens")[0] == Suggestion("Jeans", "category", 2)
    assert suggester.suggest("jackxxt") == []  # two edits


def test_no_typo_in_a_short_word(suggester):
    assert suggester.suggest("jeen") == []
    assert suggester.suggest("jeans lether") == suggester.suggest("jeans leathr") == []
    assert suggester.suggest("red dres") != suggester.suggest("red drss") == []


def test_hidden_products_are_never_suggested(suggester):
    assert suggester.suggest("hidden") == []
    assert suggester.suggest("secret") == []
    assert "Secret Drone Dress" not in texts(suggester.suggest("dress", limit=50))
    assert suggester.suggest("dresses")[0].count == 3  # the flagged one is not counted


def test_brands_are_counted(suggester):
    assert suggester.suggest("zara")[0] == Suggestion("Zara", "brand", 3)
    assert suggester.suggest("massimo")[0] == Suggestion("Massimo Dutti", "brand", 2)


def test_ranking(suggester):
    # More products first, even when longer: Massimo Dutti (2) before Mango (1).
    assert texts(suggester.suggest("ma")) == ["Massimo Dutti", "Mango"]
    # Exact prefixes before typos (the brand "Jacky" is one edit from "jacke"); brands
    # and categories before titles; then shorter text.
    assert texts(suggester.suggest("jacke")) == ["Jackets", "Blue Denim Jacket",
                                                 "Black Leather Jacket", "Jacky"]
    # A title with a category's text is suggested once, as the category.
    assert texts(suggester.suggest("jeans")) == ["Jeans", "Levi's 501 Jeans"]


def test_limit(suggester):
    everything = suggester.suggest("d", limit=50)
    assert len(everything) > 3
    assert suggester.suggest("d", limit=3) == everything[:3]
    assert suggester.suggest("d", limit=0) == []
    assert suggester.suggest("   ") == [] and suggester.suggest("") == []


def test_the_index_follows_the_catalogue(tmp_path):
    now = [0.0]
    store = EdgeStore(tmp_path, dim=8, indexes=[("moderation_status", "keyword")])
    try:
        add(store, PRODUCTS)
        suggester = Suggester(store, refresh_seconds=60, clock=lambda: now[0])
        assert suggester.suggest("wool") == []  # the first call builds the index
        add(store, [("Wool Coat", "Zara", "Coats")], start=50)
        now[0] = 59.0
        assert suggester.suggest("wool") == []  # not stale yet
        now[0] = 60.0
        assert suggester.suggest("wool") == []  # the old index answers while it rebuilds
        suggester.wait_for_refresh(timeout=10)
        assert texts(suggester.suggest("wool")) == ["Wool Coat"]
        assert suggester.suggest("zara")[0].count == 4

        add(store, [("Wool Scarf", "Zara", "Accessories")], start=60)
        suggester.refresh()  # forced, whatever the clock says
        assert texts(suggester.suggest("wool")) == ["Wool Coat", "Wool Scarf"]
    finally:
        store.close()


def test_spelling_fixes_unknown_words_of_long_words_only(suggester):
    assert suggester.spell("Red lether jaket") == "red leather jacket"
    assert suggester.spell("floal drss") == "floral dress"  # letters left out
    assert suggester.spell("Red Dress") is None  # known words
    assert suggester.spell("jen") is None  # the meant word is under five letters
    assert suggester.spell("jackxxt") is None  # two edits


def test_spelling_follows_the_other_words():
    index = _Index([("Sports Shoes", "title", 1), ("Beige Shorts", "title", 1),
                    ("Blue Shorts", "title", 1), ("Red Shorts", "title", 1)])
    assert index.spell(["sorts"]) == ["shorts"]  # alone: the word more entries hold
    assert index.spell(["sorts", "shoes"]) == ["sports", "shoes"]  # the one beside shoes
