"""The one ingest path: accept uploads, then claim, decode, encode and upsert in batches.

`Ingest.accept` is the only way in: the upload routes, catalogue imports (HTTP
and `vitrine import`) all call it. `Ingest.run_batch` is the only driver: it
claims a batch from the job store and processes it; the local runner and
`vitrine import` call it until nothing is left (`run_pending`), a Celery task
calls it once per delivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image
from pydantic import ValidationError

from catalogue.images import ImageError, decode_with, display_with, model_input_size
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


# The payload (and item metadata) key of the display copy's digest: see catalogue.images.
DISPLAY_KEY = "display_sha256"

POLL_SECONDS = 0.02  # how often a batch waiting for company looks for more uploads


class UploadRejected(ValueError):
    """A single upload that can't be accepted (422): nothing was stored or recorded."""


@dataclass
class Upload:
    """One product as received: raw metadata and the bytes of its image.

    `error` marks an upload already known bad by its reader (a catalogue row that
    can't be parsed): it is recorded as failed with that reason. `where` ("line 12")
    prefixes every reason, so a catalogue's errors point at their rows.
    """

    metadata: dict[str, Any] | Any
    image: bytes | None
    error: str | None = None
    where: str | None = None


@dataclass
class Accepted:
    job_id: str
    accepted: int
    rejected: int


def take_batch(jobs: JobStore, size: int, wait_s: float = 0, owner: str | None = None
               ) -> list[Item]:
    """Claim a batch: up to `size` fresh items, topped up for `wait_s`; or one suspect alone
    (an item tried before, whose worker may have died on it: it takes no company)."""
    items = jobs.claim(size, owner=owner)
    if not items or items[0].attempts > 1:
        return items
    deadline = time.monotonic() + wait_s
    while len(items) < size and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, POLL_SECONDS))
        items += jobs.claim(size - len(items), owner=owner, fresh_only=True)
    return items


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
        item = self._prepare(upload)
        if item.error and upload.where:
            item.error = f"{upload.where}: {item.error}"
        return item

    def _prepare(self, upload: Upload) -> NewItem:
        raw_id = upload.metadata.get("id") if isinstance(upload.metadata, dict) else None
        if upload.error:
            return NewItem(str(raw_id) if raw_id not in (None, "") else None, error=upload.error)
        try:
            product = ProductCreate.model_validate(upload.metadata)
        except ValidationError as exc:
            return NewItem(str(raw_id) if raw_id else None,
                           error=f"invalid metadata: {validation_message(exc)}")
        if upload.image is None:
            return NewItem(product.id, error="no image was sent for this product")
        try:  # decoded now so a bad image is refused before anything is stored
            display_bytes = display_with(self.settings, upload.image)
        except ImageError as exc:  # DecodeBusy goes up: the whole request is a 503
            return NewItem(product.id, error=str(exc))
        # Served instead of the upload: what shoppers get is what Vitrine wrote. The
        # original is kept beside it for reindexing.
        display = self.media.put(display_bytes)
        digest = self.media.put(upload.image)  # durable before we acknowledge
        metadata = {**product.model_dump(), "version": time.time(), DISPLAY_KEY: display}
        return NewItem(product.id, metadata, digest)

    def accept(self, uploads: Iterable[Upload], kind: str = "upload",
               strict: bool = False) -> Accepted:
        """Validate each upload, store its original durably and record one job; nothing is
        encoded yet. A bad upload becomes a failed item with its reason, or, with `strict`
        (a single product), UploadRejected before anything is recorded. `uploads` is read
        lazily, so a large catalogue is never held in memory."""
        items: list[NewItem] = []
        first: dict[str, int] = {}  # product id -> the item accepted with it
        for upload in uploads:
            item = self.prepare(upload)
            if strict and item.error:
                raise UploadRejected(item.error)
            product_id = item.product_id
            if not item.error and product_id is not None:
                # Two items of one job on one point: both would report success, the later
                # silently replacing the earlier. The first is kept, the others fail.
                if product_id in first:
                    reason = (f"duplicate id {product_id} in this batch "
                              f"(item {first[product_id]} has it)")
                    item = NewItem(product_id, error=(f"{upload.where}: {reason}"
                                                      if upload.where else reason))
                else:
                    first[product_id] = len(items)
            items.append(item)
        rejected = sum(1 for it in items if it.error)
        return Accepted(self.jobs.create_job(kind, items), len(items) - rejected, rejected)

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
        reading and Pillow's decoders release the GIL. Decoded at about the model's input
        size, within the process's decode budget."""
        target = model_input_size(self.encoder.preprocess)

        def one(item: Item) -> Image.Image | ImageError | KeyError:
            try:
                return decode_with(self.settings, self.media.get(item.image_sha256),
                                   target, background=True)
            except (ImageError, KeyError) as exc:
                return exc

        return map_on_cores(one, items, "decode")

    def encode(self, ready: Sequence[tuple[Item, Image.Image | None, StoredPoint | None]]
               ) -> list[StoredPoint]:
        """One forward pass for every new image, then the enrichers on those embeddings."""
        points = [StoredPoint(point_id(it.product_id),
                              self.payload(it, old, fresh_image=image is not None),
                              old.vector if image is None and old is not None else None)
                  for it, image, old in ready]
        fresh = [(i, image) for i, (_, image, _) in enumerate(ready) if image is not None]
        if fresh:
            vectors = self.encoder.encode_images([image for _, image in fresh])
            for row, (i, _) in enumerate(fresh):
                points[i].vector = vectors[row]
            for enrich in self.enrichers:
                enrich([points[i].payload for i, _ in fresh], vectors)
        return points

    def payload(self, item: Item, old: StoredPoint | None, fresh_image: bool) -> dict[str, Any]:
        meta = dict(item.metadata)
        version = meta.pop("version")
        product_id = meta.pop("id")
        display = meta.pop(DISPLAY_KEY, None)  # absent for items queued before display copies
        payload = {**meta, "product_id": product_id, "image_sha256": item.image_sha256,
                   "model": self.encoder.model_id, "updated_at": version,
                   "moderation_status": ModerationStatus.visible.value, "predicted": {}}
        if display:
            payload[DISPLAY_KEY] = display
        if old and not fresh_image:  # same image: keep what was judged of it
            for key in ("moderation_status", "moderation", "predicted"):
                if key in old.payload:
                    payload[key] = old.payload[key]
            carry_predictions(payload)
        return payload

    # -- the driver --------------------------------------------------------------------
    def run_batch(self, size: int | None = None, wait_s: float = 0, owner: str | None = None,
                  before_process: Callable[[list[Item]], None] | None = None) -> int:
        """Claim one batch of queued items (of any job) and process it; returns how many
        were taken. `owner` (a Celery task id) lets a redelivery find what it held;
        `before_process` lets tests act between the claim and the work."""
        items = take_batch(self.jobs, size or self.settings.ingest_batch_size, wait_s, owner)
        if items:
            if before_process:
                before_process(items)
            self.process(items)  # StoreUnavailable: items released for a later try
        return len(items)

    def run_pending(self, on_batch: Callable[[int], None] | None = None) -> int:
        """Process queued items until none are left; returns how many were taken.
        `on_batch(n)` is told after each batch (progress bars)."""
        taken = 0
        while n := self.run_batch():
            taken += n
            if on_batch:
                on_batch(n)
        return taken
