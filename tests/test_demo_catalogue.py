"""The synthetic demo catalogue: format, determinism, and that images show what rows say."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalogue.styles import more_photos, read_styles
from catalogue.vocabulary import (
    ARTICLE_NAMES,
    ARTICLE_TYPES,
    COLOURS,
    GENDERS,
    GENUS_DE,
    GERMAN,
    NOUN_DE,
    PATTERNS,
)
from demo.articles import ARTICLES, PALETTE
from demo.generator import MORE_PHOTOS, generate
from demo.prohibited import PROHIBITED

N_PRODUCTS = 120
N_PROHIBITED = 8
SIZE = 96
KAGGLE_COLUMNS = [
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
]
EXTRA_COLUMNS = ["pattern", "brand", "price", "description", "description_de", "moderation"]


def _generate(out_dir: Path, seed: int = 0) -> Path:
    return generate(
        out_dir,
        n_products=N_PRODUCTS,
        seed=seed,
        image_size=SIZE,
        n_prohibited=N_PROHIBITED,
        progress=False,
    )


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def rows(catalogue: Path) -> list[dict[str, str]]:
    return read_styles(catalogue)


@pytest.fixture(scope="module")
def products(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if not r["moderation"]]


def test_the_demo_draws_and_names_every_word_of_the_vocabulary() -> None:
    assert set(ARTICLES) == set(ARTICLE_TYPES)
    assert set(PALETTE) == set(COLOURS)
    for article_type, article in ARTICLES.items():
        assert article.noun in ARTICLE_NAMES[article_type]
        assert NOUN_DE[article_type] in GENUS_DE
    assert set(GERMAN) == {*ARTICLE_TYPES, *COLOURS, *PATTERNS}


def test_csv_has_the_kaggle_columns_then_ours_in_order(catalogue: Path) -> None:
    header = catalogue.read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == KAGGLE_COLUMNS + EXTRA_COLUMNS


def test_ids_start_at_10000_and_prohibited_items_follow_the_products(
    rows: list[dict[str, str]],
) -> None:
    assert [int(r["id"]) for r in rows] == list(range(10000, 10000 + N_PRODUCTS + N_PROHIBITED))
    assert all(not r["moderation"] for r in rows[:N_PRODUCTS])
    assert all(r["moderation"] for r in rows[N_PRODUCTS:])


def test_every_row_has_an_rgb_image_at_image_size(
    catalogue: Path, rows: list[dict[str, str]]
) -> None:
    for row in rows:
        with Image.open(catalogue.parent / "images" / f"{row['id']}.jpg") as image:
            assert image.mode == "RGB"
            assert image.size == (SIZE, SIZE)


def test_a_small_catalogue_covers_every_article_type_colour_and_pattern(
    products: list[dict[str, str]],
) -> None:
    assert {r["articleType"] for r in products} == set(ARTICLE_TYPES)
    assert {r["baseColour"] for r in products} == set(COLOURS)
    assert {r["pattern"] for r in products} == set(PATTERNS)


def test_product_fields_use_the_kaggle_vocabulary(products: list[dict[str, str]]) -> None:
    for r in products:
        assert (r["masterCategory"], r["subCategory"]) == ARTICLE_TYPES[r["articleType"]]
        assert r["gender"] in GENDERS
        assert r["season"] in {"Summer", "Winter", "Spring", "Fall"}
        assert 2012 <= int(r["year"]) <= 2019
        assert r["usage"] in {"Casual", "Formal", "Sports", "Party"}
        assert r["brand"] and r["brand"] in r["productDisplayName"]
        assert r["baseColour"] in r["productDisplayName"]
        whole, cents = r["price"].split(".")
        assert float(r["price"]) > 0 and len(cents) == 2


def test_descriptions_name_the_article_and_colour_in_both_languages(
    products: list[dict[str, str]],
) -> None:
    for r in products:
        english, german = r["description"].lower(), r["description_de"]
        assert r["baseColour"].lower() in english
        assert GERMAN[r["articleType"]] in german, german
        assert GERMAN[r["baseColour"]] in german.lower(), german
    assert any("Rot" in r["description_de"] or "rot" in r["description_de"] for r in products)


ENDING_DE = {  # German noun -> nominative adjective ending after "ein" or no article
    "T-Shirt": "es", "Hemd": "es", "Kleid": "es", "Rock": "er", "Hose": "e", "Jeans": "e",
    "Shorts": "e", "Jacke": "e", "Mantel": "er", "Schuhe": "e", "Turnschuhe": "e",
    "Sandalen": "e", "Stiefel": "e", "Tasche": "e", "Hut": "er", "Schal": "er", "Socken": "e",
}  # fmt: skip


def test_german_colour_adjectives_agree_with_the_noun(products: list[dict[str, str]]) -> None:
    checked = 0
    for r in products:
        noun, stem = GERMAN[r["articleType"]], GERMAN[r["baseColour"]]
        words = r["description_de"].rstrip(".").replace(",", "").split()
        before = words[words.index(noun) - 1]
        if before.lower().startswith(stem) and stem not in {"rosa", "lila", "orange", "beige"}:
            assert before.lower() == stem + ENDING_DE[noun], r["description_de"]
            checked += 1
    assert checked > 20


def test_prohibited_rows_carry_their_category_and_placeholder_metadata(
    rows: list[dict[str, str]],
) -> None:
    bad = rows[N_PRODUCTS:]
    assert sorted(r["moderation"] for r in bad) == sorted(list(PROHIBITED) * 2)
    for r in bad:
        assert r["articleType"] == "Unknown"
        assert r["description"] and r["description_de"]


def _image_bytes(csv_path: Path) -> dict[str, bytes]:
    """Every photo of the catalogue, main and other, by its path in the folder."""
    folder = csv_path.parent
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.glob("*/*.jpg")}


def test_same_seed_gives_identical_files_and_another_seed_does_not(
    catalogue: Path, tmp_path: Path
) -> None:
    again = _generate(tmp_path / "again")
    other = _generate(tmp_path / "other", seed=1)
    assert again.read_bytes() == catalogue.read_bytes()
    assert _image_bytes(again) == _image_bytes(catalogue)
    assert other.read_bytes() != catalogue.read_bytes()
    first, second = _image_bytes(catalogue), _image_bytes(other)
    assert len(first) == N_PRODUCTS * (1 + MORE_PHOTOS) + N_PROHIBITED
    assert all(first[name] != second[name] for name in first)


def test_every_product_has_its_other_photos_and_prohibited_images_none(
    catalogue: Path, rows: list[dict[str, str]]
) -> None:
    photos = more_photos(catalogue.parent)
    assert set(photos) == {r["id"] for r in rows if not r["moderation"]}
    for product_id, paths in photos.items():
        assert [p.name for p in paths] == [f"{product_id}-{k}.jpg"
                                           for k in range(1, MORE_PHOTOS + 1)]
        main = (catalogue.parent / "images" / f"{product_id}.jpg").read_bytes()
        assert all(p.read_bytes() != main for p in paths)  # other poses, not copies


def _product_pixels(image: Image.Image) -> np.ndarray:
    """Pixels far from every background colour seen on the image border."""
    arr = np.asarray(image, dtype=np.float32)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])[::3]
    pixels = arr.reshape(-1, 3)
    nearest_border = np.min(np.linalg.norm(pixels[:, None, :] - border[None], axis=2), axis=1)
    return pixels[nearest_border > 45]


def test_plain_products_show_their_named_colour(
    catalogue: Path, products: list[dict[str, str]]
) -> None:
    # The median, not the mean: soles, seams and outlines are not the named colour, and on
    # a small sandal they are a good part of the silhouette.
    names = list(COLOURS)
    palette = np.array([PALETTE[n] for n in names], dtype=np.float32)
    plain = [r for r in products if r["pattern"] == "plain"]
    assert len(plain) >= 30
    others = more_photos(catalogue.parent)
    for r in plain:  # in every photo of the product, the other poses too
        for path in [catalogue.parent / "images" / f"{r['id']}.jpg", *others[r["id"]]]:
            with Image.open(path) as image:
                pixels = _product_pixels(image.convert("RGB"))
            assert len(pixels) > 0.04 * SIZE * SIZE, path.name
            colour = np.median(pixels, axis=0)
            nearest = names[int(np.argmin(np.linalg.norm(palette - colour, axis=1)))]
            assert nearest == r["baseColour"], (path.name, r["articleType"], colour)


def test_prohibited_blank_images_are_almost_uniform_and_products_are_not(
    catalogue: Path, rows: list[dict[str, str]]
) -> None:
    def spread(row: dict[str, str]) -> float:
        with Image.open(catalogue.parent / "images" / f"{row['id']}.jpg") as image:
            return float(np.asarray(image, dtype=np.float32).std(axis=(0, 1)).max())

    assert all(spread(r) < 5 for r in rows if r["moderation"] == "blank")
    assert all(spread(r) > 10 for r in rows if not r["moderation"])
