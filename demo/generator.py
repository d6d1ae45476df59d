"""A deterministic synthetic catalogue in the format of Kaggle's "Fashion Product Images".

Every image is drawn from its own row (article type, colour, pattern), so what a model
learns from the demo catalogue can be checked against the csv. A few prohibited images
(weapons, scenes, blanks, text) follow the products so moderation has something to reject.

    from catalogue.styles import read_styles
    from demo.generator import generate
    rows = read_styles(generate(Path("data/demo"), n_products=3000))

The words come from catalogue.vocabulary; the package is split by what it does:
plan (rows), describe (descriptions), articles (what each type looks like), garments
and prohibited (the drawings), draw (the pen), photo (backdrop, fabric, pose, light).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from catalogue.styles import MORE_IMAGES
from demo.draw import SUPERSAMPLE
from demo.photo import photograph, render_product
from demo.plan import COLUMNS, Item, plan, row
from demo.prohibited import render_blank, render_scene, render_text, render_weapon

_RENDERERS: dict[str, Callable[[Item, int, np.random.Generator], Image.Image]] = {
    "": render_product,
    "weapon": render_weapon,
    "not_a_product": render_scene,
    "blank": render_blank,
    "text_only": render_text,
}


MORE_PHOTOS = 4
"""Photos of each product besides its main one, in other poses, backdrops and light: what
a shop's product pages have, and what training draws from (training.data.PhotoCache;
what they bought the demo model: training.config.DEMO_RECIPE)."""


def picture(item: Item, image_size: int = 128, seed: int = 0,
            view: int = 0) -> tuple[Image.Image, int]:
    """The item's picture and its JPEG quality, from a random stream of its own (seeded by
    the seed, the item's id and, for a product's other photos, the view: the same product
    in another pose)."""
    rng = np.random.default_rng([seed, item.id, view] if view else [seed, item.id])
    canvas = _RENDERERS[item.moderation](item, image_size * SUPERSAMPLE, rng)
    return photograph(canvas, rng), int(rng.integers(80, 96))


def generate(
    out_dir: Path,
    n_products: int = 3000,
    seed: int = 0,
    image_size: int = 128,
    n_prohibited: int = 60,
    progress: bool = True,
    more_photos: int = MORE_PHOTOS,
) -> Path:
    """Write out_dir/styles.csv, out_dir/images/<id>.jpg and, for each product (not the
    prohibited images), `more_photos` other photos as out_dir/more_images/<id>-<k>.jpg
    (k from 1, the layout training.data.TrainingSet.from_csv reads); return the csv path.

    The same seed gives byte-identical files: each image has its own random stream,
    seeded by (seed, id) and the view.
    """
    out_dir = Path(out_dir)
    images = out_dir / "images"
    more = out_dir / MORE_IMAGES
    images.mkdir(parents=True, exist_ok=True)
    if more_photos:
        more.mkdir(exist_ok=True)
    items = plan(n_products, n_prohibited, seed)
    csv_path = out_dir / "styles.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row(item) for item in items)
    for item in tqdm(items, desc="demo catalogue", unit="product", disable=not progress):
        image, quality = picture(item, image_size, seed)
        image.save(images / f"{item.id}.jpg", "JPEG", quality=quality)
        for view in range(1, 1 + (0 if item.moderation else more_photos)):
            image, quality = picture(item, image_size, seed, view)
            image.save(more / f"{item.id}-{view}.jpg", "JPEG", quality=quality)
    return csv_path
