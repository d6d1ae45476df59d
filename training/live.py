"""The live catalogue as training data: its stored products and original photos, turned
into the styles.csv rows the loop and the captions read.

Only what shoppers may see is trained on (catalogue.products decides that), each
product once, with its main photo's stored original (the one the live vectors were
encoded from), decoded as ingest decodes it. A product's fields map onto the columns
that `catalogue.importer.kaggle_metadata` reads them from, the other way round:
title -> productDisplayName, category -> articleType, colour -> baseColour, and
description, gender, pattern and brand by name.

A value the live model predicted itself (auto-tagging, `predicted` with `applied`) is not
a label: training on it would teach the model what it already thinks, mistakes
included. A product whose main photo's colour is only given by its variants takes it
from them when they agree. Captions need an article type and a colour, so a product
without both (after the above) is left out and counted, as is one whose original is
missing from the media store.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from PIL import Image
from tqdm import tqdm

from catalogue.images import decode_with, model_input_size
from catalogue.media import MediaStore
from catalogue.products import pages, visibility_filter
from catalogue.schemas import Role
from catalogue.settings import CatalogueSettings
from catalogue.store.base import StoredPoint, VectorStore
from embedding.encoder import Preprocessing
from training.data import TrainingSet

log = logging.getLogger(__name__)

PAGE = 1000
FIELDS = {"productDisplayName": "title", "description": "description",
          "articleType": "category", "baseColour": "colour", "gender": "gender",
          "pattern": "pattern", "brand": "brand"}
"""styles.csv column -> product field: catalogue.importer.kaggle_metadata backwards."""


def labelled(payload: dict[str, Any]) -> dict[str, Any]:
    """The product's fields as a manager or the catalogue gave them: values the model
    predicted and wrote in (auto-tagging) taken out again."""
    fields = dict(payload)
    for name, guess in (payload.get("predicted") or {}).items():
        if isinstance(guess, dict) and guess.get("applied") and \
                fields.get(name) == guess.get("value"):
            fields.pop(name, None)
    return fields


def main_photo_colour(fields: dict[str, Any]) -> str | None:
    """The product's own colour, or else the one its variants shown by the main photo
    (those without a photo of their own, or with photo 0) agree on."""
    if fields.get("colour"):
        return fields["colour"]
    colours = {v.get("colour") for v in fields.get("variants") or []
               if v.get("image") in (None, 0) and "colour" not in (v.get("inherited") or ())}
    colours.discard(None)
    return colours.pop() if len(colours) == 1 else None


def training_row(payload: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """The styles.csv row a stored product stands for, or None and why it can't be one."""
    fields = labelled(payload)
    fields["colour"] = main_photo_colour(fields)
    if not payload.get("image_sha256"):
        return None, "no photo"
    if not fields.get("category"):
        return None, "no category"
    if not fields.get("colour"):
        return None, "no colour"
    row = {column: str(fields.get(name) or "").strip() for column, name in FIELDS.items()}
    return {"id": str(payload["product_id"]), **row,
            "image_sha256": payload["image_sha256"], "moderation": ""}, ""


def shopper_visible(store: VectorStore) -> Iterator[StoredPoint]:
    """Every product a shopper may see, page by page."""
    for points in pages(store, visibility_filter(Role.shopper), PAGE):
        yield from points


def live_training_set(store: VectorStore, media: MediaStore, settings: CatalogueSettings,
                      source: str = "live catalogue", progress: bool = False) -> TrainingSet:
    """The live catalogue's shopper-visible products as a TrainingSet; photos are read
    from `media` as the loop caches them (once each)."""
    rows: list[dict] = []
    left_out: Counter[str] = Counter()
    total = store.count(visibility_filter(Role.shopper))
    for point in tqdm(shopper_visible(store), total=total, desc="reading the catalogue",
                      unit="product", disable=not progress, leave=False):
        row, why = training_row(point.payload)
        if row is not None and not media.exists(row["image_sha256"]):
            row, why = None, "original missing from the media store"
        if row is None:
            left_out[why] += 1
        else:
            rows.append(row)
    if left_out:
        log.info("left out of training: %s", dict(left_out))

    def open_image(row: dict, prep: Preprocessing) -> Image.Image:
        return decode_with(settings, media.get(row["image_sha256"]), model_input_size(prep),
                           background=True)

    return TrainingSet(rows, open_image, source, dict(left_out))
