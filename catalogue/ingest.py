"""The ingest pipeline: accept uploads, then decode, encode and upsert in batches.

Both profiles run exactly these functions: the local profile from a thread in
the API process, the cluster profile from Celery tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image
from pydantic import ValidationError

from catalogue.images import ImageError, decode_image
from catalogue.jobs import Item, JobStore, NewItem
from catalogue.media import MediaStore
from catalogue.schemas import ModerationStatus, ProductCreate
from catalogue.settings import CatalogueSettings
from catalogue.store.base import StoredPoint, VectorStore, point_id
from catalogue.tagging import carry_predictions
from embedding.encoder import Encoder, map_on_cores

log = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """The vector store could not be reached: retry later, fail nothing."""


def validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg']}"
                     for e in exc.errors())


@dataclass
class Upload:
    """One product as received: raw metadata and the bytes of its image."""

    metadata: dict[str, Any] | Any
    image: bytes | None


# Hooks that enrich a payload from the image embedding (moderation, auto-tagging).
Enricher = Callable[[Sequence[dict[str, Any]], Any], None]
# An enricher refuses an image by setting this payload key to the reason: the item
# then fails with it and nothing is indexed (moderation: a rejected image).
REFUSED = "_refused"


class Ingest:
    def __init__(self, settings: CatalogueSettings, encoder: Encoder, store: VectorStore,
                 media: MediaStore, jobs: JobStore, enrichers: Sequence[Enricher] = ()):
        self.settings, self.encoder, self.store = settings, encoder, store
        self.media, self.jobs = media, jobs
        self.enrichers = list(enrichers)

    # -- accepting ---------------------------------------------------------------------
    def prepare(self, upload: Upload) -> NewItem:
        """Validate one upload and store its original; a bad one becomes a failed item."""
        raw_id = upload.metadata.get("id") if isinstance(upload.metadata, dict) else None
        try:
            product = ProductCreate.model_validate(upload.metadata)
        except ValidationError as exc:
            return NewItem(str(raw_id) if raw_id else None,
                           error=f"invalid metadata: {validation_message(exc)}")
        if upload.image is None:
            return NewItem(product.id, error="no image was sent for this product")
        try:  # decoded now so a bad image is refused before anything is stored
            decode_image(upload.image, self.settings.max_image_bytes,
                         self.settings.max_image_pixels)
        except ImageError as exc:
            return NewItem(product.id, error=str(exc))
        digest = self.media.put(upload.image)  # durable before we acknowledge
        metadata = {**product.model_dump(), "version": time.time()}
        return NewItem(product.id, metadata, digest)

    def accept(self, uploads: Sequence[Upload], kind: str = "upload") -> str:
        """Store originals and record a job; returns its id. Nothing is encoded yet."""
        return self.jobs.create_job(kind, [self.prepare(u) for u in uploads])

    # -- processing --------------------------------------------------------------------
    def process(self, items: Sequence[Item]) -> None:
        """Decode, encode (one forward pass for the batch) and upsert `items`."""
        ready: list[tuple[Item, Image.Image | None, StoredPoint | None]] = []
        try:
            existing = {p.id: p for p in self.store.retrieve(
                [point_id(it.product_id) for it in items], with_vectors=True)}
        except Exception as exc:  # the store is down: leave the items queued
            for it in items:
                self.jobs.release(it)
            raise StoreUnavailable(f"vector store unreachable: {exc}") from exc
        to_decode: list[tuple[Item, StoredPoint | None]] = []
        for it in items:
            old = existing.get(point_id(it.product_id))
            if old and old.payload.get("updated_at", 0) > it.metadata["version"]:
                self.jobs.finish(it)  # a newer version is already indexed: keep it
            elif (old and old.vector is not None and old.payload.get("image_sha256")
                    == it.image_sha256 and old.payload.get("model") == self.encoder.model_id):
                ready.append((it, None, old))  # same image, same model: no re-encoding
            else:
                to_decode.append((it, old))
        for (it, old), image in zip(to_decode, self.decode([it for it, _ in to_decode]),
                                    strict=True):
            if isinstance(image, Exception):
                self.jobs.finish(it, str(image))
            else:
                ready.append((it, image, old))
        if not ready:
            return
        try:
            points = self.encode(ready)
        except Exception as exc:
            log.exception("encoding failed")
            for it, _, _ in ready:
                self.jobs.finish(it, f"encoding failed: {exc}")
            return
        refused = {p.id: p.payload.pop(REFUSED) for p in points if REFUSED in p.payload}
        try:
            if len(refused) < len(points):
                self.store.upsert([p for p in points if p.id not in refused])
        except Exception as exc:
            for it, _, _ in ready:
                self.jobs.release(it)
            raise StoreUnavailable(f"vector store unreachable: {exc}") from exc
        self.jobs.finish_many([(it, refused.get(point_id(it.product_id))) for it, _, _ in ready])

    def decode(self, items: Sequence[Item]) -> list[Image.Image | ImageError | KeyError]:
        """Each item's original, read and decoded, or why it can't be: on every core, since
        reading and Pillow's decoders release the GIL."""
        def one(item: Item) -> Image.Image | ImageError | KeyError:
            try:
                return decode_image(self.media.get(item.image_sha256),
                                    self.settings.max_image_bytes, self.settings.max_image_pixels)
            except (ImageError, KeyError) as exc:
                return exc

        return map_on_cores(one, items, "decode")

    def encode(self, ready: Sequence[tuple[Item, Image.Image | None, StoredPoint | None]]
               ) -> list[StoredPoint]:
        """One forward pass for every new image, then the enrichers on those embeddings."""
        fresh = [i for i, (_, image, _) in enumerate(ready) if image is not None]
        vectors = self.encoder.encode_images([ready[i][1] for i in fresh]) if fresh else None
        points = [StoredPoint(point_id(it.product_id),
                              self.payload(it, old, fresh_image=image is not None),
                              None if image is not None else old.vector)
                  for it, image, old in ready]
        for row, i in enumerate(fresh):
            points[i].vector = vectors[row]
        if fresh:
            for enrich in self.enrichers:
                enrich([points[i].payload for i in fresh], vectors)
        return points

    def payload(self, item: Item, old: StoredPoint | None, fresh_image: bool) -> dict[str, Any]:
        meta = dict(item.metadata)
        version = meta.pop("version")
        product_id = meta.pop("id")
        payload = {**meta, "product_id": product_id, "image_sha256": item.image_sha256,
                   "model": self.encoder.model_id, "updated_at": version,
                   "moderation_status": ModerationStatus.visible.value, "predicted": {}}
        if old and not fresh_image:  # same image: keep what was judged of it
            for key in ("moderation_status", "moderation", "predicted"):
                if key in old.payload:
                    payload[key] = old.payload[key]
            carry_predictions(payload)
        return payload

    def run_pending(self, batch_size: int | None = None, job_id: str | None = None) -> int:
        """Process queued items until none are left; returns how many were taken."""
        batch_size = batch_size or self.settings.ingest_batch_size
        taken = 0
        while items := self.jobs.claim(batch_size, job_id):
            taken += len(items)
            self.process(items)
        return taken
