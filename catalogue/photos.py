"""A product's photos on their way to vectors: uploaded, given by URL, or already indexed.

Each ingest item lists its photos as references: `{"sha256", "display_sha256"}`
for a photo uploaded with it (stored before the 202), `{"url"}` for one a feed
gives by URL. `Photos.resolve` turns a batch's references into photos with a
vector to reuse or an image to encode:
- a photo the product already has indexed, by the same model (the same digest,
  or the same URL), keeps its vector: nothing is fetched, decoded or encoded (a new
  URL is fetched, but content the product already has is not encoded again);
- a URL is fetched here, by the ingest worker, never by the API (`catalogue.fetch`:
  timeouts, size cap, retries, redirects, the address guard), then stored like an
  upload (the original, and the display copy shoppers get);
- what is left is decoded at about the model's input size, on every core.
A photo that fails carries its reason; the item decides what that means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from catalogue.fetch import Fetcher, FetchError, fetch_all
from catalogue.images import ImageError, decode_with, display_with
from catalogue.media import MediaStore
from catalogue.settings import CatalogueSettings
from catalogue.store.base import StoredPoint
from embedding.encoder import map_on_cores


@dataclass
class Photo:
    url: str | None = None
    sha256: str | None = None
    display_sha256: str | None = None
    vector: np.ndarray | None = None  # reused from the indexed product
    image: Image.Image | None = None  # decoded, to encode
    data: bytes | None = None  # fetched, until decoded
    error: str | None = None

    def ref(self) -> dict[str, Any]:
        """How the stored product lists it."""
        ref = {"sha256": self.sha256, "display_sha256": self.display_sha256, "url": self.url}
        return {k: v for k, v in ref.items() if v is not None}


def indexed_photos(old: StoredPoint | None, model_id: str) -> list[Photo]:
    """The photos of an indexed product with their vectors, if the same model made them."""
    if old is None or old.vector is None or old.payload.get("model") != model_id:
        return []
    images = old.payload.get("images") or []
    if len(images) != len(old.vector):
        return []
    return [Photo(ref.get("url"), ref["sha256"], ref.get("display_sha256"), row)
            for ref, row in zip(images, old.vector, strict=True)]


class Photos:
    def __init__(self, settings: CatalogueSettings, media: MediaStore, fetcher: Fetcher,
                 target: tuple[int, int]):
        self.settings, self.media, self.fetcher, self.target = settings, media, fetcher, target

    def resolve(self, batch: Sequence[tuple[Sequence[dict[str, Any]], list[Photo]]]
                ) -> list[list[Photo]]:
        """Each item's references (with its indexed photos) -> its photos, in order."""
        result = [[self._match(ref, indexed) for ref in refs] for refs, indexed in batch]
        every = [p for photos in result for p in photos]
        self._fetch([p for p in every if p.sha256 is None and p.error is None])
        for photos, (_, indexed) in zip(result, batch, strict=True):
            for photo in photos:  # fetched from a new URL, but a photo already indexed
                same = next((o for o in indexed if photo.vector is None
                             and o.sha256 == photo.sha256), None)
                if same is not None:
                    photo.vector, photo.data = same.vector, None
        self.decode([p for p in every if p.vector is None and p.error is None])
        return result

    @staticmethod
    def _match(ref: dict[str, Any], indexed: list[Photo]) -> Photo:
        for old in indexed:
            if (ref.get("sha256") and ref["sha256"] == old.sha256) or \
                    (ref.get("url") and ref["url"] == old.url):
                return Photo(ref.get("url", old.url), old.sha256,
                             ref.get("display_sha256", old.display_sha256), old.vector)
        return Photo(ref.get("url"), ref.get("sha256"), ref.get("display_sha256"))

    def _fetch(self, photos: list[Photo]) -> None:
        fetched = fetch_all(self.fetcher, [p.url or "" for p in photos],
                            self.settings.fetch_concurrency)
        for photo, data in zip(photos, fetched, strict=True):
            if isinstance(data, FetchError):
                photo.error = str(data)
                continue
            try:
                display = display_with(self.settings, data, background=True)
            except ImageError as exc:
                photo.error = f"{photo.url}: {exc}"
                continue
            photo.display_sha256 = self.media.put(display)
            photo.sha256 = self.media.put(data)
            photo.data = data

    def decode(self, photos: list[Photo]) -> None:
        """Each photo's original (fetched, or from the media store) decoded at about the model's
        input size, on every core; a photo that can't be carries its reason."""
        def one(photo: Photo) -> None:
            try:
                data = photo.data if photo.data is not None else self.media.get(photo.sha256 or "")
                photo.image = decode_with(self.settings, data, self.target, background=True)
            except (ImageError, KeyError) as exc:
                photo.error = f"{photo.url}: {exc}" if photo.url else str(exc)
            photo.data = None

        map_on_cores(one, photos, "decode")
