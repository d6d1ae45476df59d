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
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import ValidationError

from catalogue import metrics
from catalogue.attributes import DEFAULT_SCHEMA
from catalogue.fetch import Fetcher, FetchPolicy
from catalogue.foreground import Foreground
from catalogue.images import ImageError, display_with, model_input_size
from catalogue.jobs import Item, JobStore, NewItem, Outcome
from catalogue.keywords import Keywords
from catalogue.media import MediaStore
from catalogue.photos import Photo, Photos, indexed_photos
from catalogue.products import normalise
from catalogue.schemas import ModerationStatus, ProductCreate
from catalogue.settings import CatalogueSettings
from catalogue.store.base import StoredPoint, VectorStore, point_id
from catalogue.tagging import carry_predictions
from embedding.encoder import Encoder

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
    """One product as received: raw metadata and the bytes of the photos sent with it (a
    feed's photos are URLs inside the metadata, fetched later by the ingest workers).

    `error` marks an upload already known bad by its reader (a catalogue row that
    can't be parsed): it is recorded as failed with that reason. `where` ("line 12")
    prefixes every reason, so a catalogue's errors point at their rows.
    """

    metadata: dict[str, Any] | Any
    images: Sequence[bytes] = ()
    error: str | None = None
    where: str | None = None


@dataclass
class Accepted:
    job_id: str
    accepted: int
    rejected: int


def _legacy_refs(item: Item) -> list[dict[str, Any]]:
    """The photo of an item queued before products had several."""
    return [{"sha256": item.image_sha256, "display_sha256": item.metadata.get(DISPLAY_KEY)}]


# What makes two stored versions of a product the same, for an import's "unchanged".
COMPARED = ("images", "variants", "min_price", "title", "description", "category", "colour",
            "gender", "brand", "pattern", "price", "tags", "link", "currency", "attributes",
            "moderation_status")


def same_product(old: StoredPoint, new: StoredPoint) -> bool:
    """Nothing a shopper or a filter sees would change (nor any vector)."""
    return (all(old.payload.get(k) == new.payload.get(k) for k in COMPARED)
            and old.vector is not None and new.vector is not None
            and old.vector.shape == new.vector.shape
            and bool(np.array_equal(old.vector, new.vector)))


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


@dataclass
class Prepared:
    """A claimed batch, read and decoded: what `Ingest.commit` encodes and writes."""

    items: list[Item]
    settled: list[Outcome]
    """Items decided without encoding: a newer version indexed, or no photo to read."""
    ready: list[tuple[Item, StoredPoint | None, list[Photo], str | None]]
    """Each item to encode: what is indexed of its product, its photos, a warning."""


# Hooks that enrich a payload from the image embedding (moderation, auto-tagging).
Enricher = Callable[[Sequence[dict[str, Any]], Any], None]
# An enricher refuses an image by setting this payload key to the reason: the item
# then fails with it and nothing is indexed (moderation: a rejected image).
REFUSED = "_refused"


class Ingest:
    def __init__(self, settings: CatalogueSettings, encoder: Encoder, store: VectorStore,
                 media: MediaStore, jobs: JobStore, enrichers: Sequence[Enricher] = (),
                 fetcher: Fetcher | None = None, foreground: Foreground | None = None,
                 keywords: Keywords | None = None):
        """`foreground`: the shoppers' requests of this process, which ingest yields to;
        `keywords`: how products' words are kept for keyword search."""
        self.settings, self.encoder, self.store = settings, encoder, store
        self.media, self.jobs = media, jobs
        self.enrichers = list(enrichers)
        self.fetcher = fetcher or Fetcher(FetchPolicy.of(settings))
        self.foreground = foreground
        self.keywords = keywords or Keywords(DEFAULT_SCHEMA)

    @cached_property
    def photos(self) -> Photos:
        """Made on first use: its decode size comes from the model, loaded by then."""
        return Photos(self.settings, self.media, self.fetcher,
                      model_input_size(self.encoder.preprocess))

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
        if not upload.images and not product.images:
            return NewItem(product.id, error="no image was sent for this product")
        displays = []
        for n, data in enumerate(upload.images):
            try:  # decoded now so a bad image is refused before anything is stored
                displays.append(display_with(self.settings, data))
            except ImageError as exc:  # DecodeBusy goes up: the whole request is a 503
                return NewItem(product.id, error=f"image {n + 1}: {exc}"
                               if len(upload.images) > 1 else str(exc))
        # Served instead of the upload: what shoppers get is what Vitrine wrote. The
        # original is kept beside it for reindexing; both durable before we acknowledge.
        refs: list[dict[str, Any]] = [
            {"display_sha256": self.media.put(display), "sha256": self.media.put(data)}
            for data, display in zip(upload.images, displays, strict=True)]
        refs += [{"url": image.url} for image in product.images]
        metadata = {**product.model_dump(exclude={"images"}), "images": refs,
                    "version": time.time()}
        return NewItem(product.id, metadata, refs[0].get("sha256"))

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
        """Fetch, decode, encode (one forward pass for the batch's new photos) and upsert
        `items`; photos already indexed by this model keep their vectors."""
        self.commit(self.read(items))

    def read(self, items: Sequence[Item]) -> Prepared:
        """The CPU half of `process`: what is indexed of each item's product, and its
        photos fetched and decoded. StoreUnavailable (the items released) if the store is
        down."""
        try:
            existing = {p.id: p for p in self.store.retrieve(
                [point_id(it.product_id) for it in items], with_vectors=True)}
        except Exception as exc:  # the store is down: leave the items queued
            for it in items:
                self.jobs.release(it)
            raise StoreUnavailable(f"vector store unreachable: {exc}") from exc
        settled: list[Outcome] = []  # decided before any encoding
        todo: list[tuple[Item, StoredPoint | None]] = []
        for it in items:
            old = existing.get(point_id(it.product_id))
            if old and old.payload.get("updated_at", 0) > it.metadata["version"]:
                settled.append(Outcome(it, change="unchanged"))  # a newer one is indexed
            else:
                todo.append((it, old))
        resolved = self.photos.resolve(
            [(it.metadata.get("images") or _legacy_refs(it), indexed_photos(old, self.model_id))
             for it, old in todo])
        ready = []
        for (it, old), photos in zip(todo, resolved, strict=True):
            good = [p for p in photos if p.error is None]
            problems = "; ".join(p.error for p in photos if p.error)
            if good:
                ready.append((it, old, good, problems or None))
            else:
                settled.append(Outcome(it, error=problems or "no photo"))
        return Prepared(list(items), settled, ready)

    def commit(self, prepared: Prepared) -> None:
        """The rest of `process`: encode the prepared photos, judge, upsert, finish the items."""
        settled, ready = prepared.settled, prepared.ready
        try:
            points = self.encode(ready)
        except Exception as exc:
            log.exception("encoding failed")
            self.jobs.finish_many(settled + [Outcome(it, error=f"encoding failed: {exc}")
                                             for it, *_ in ready])
            return
        outcomes, to_write = [], []
        for (it, old, _, warning), point in zip(ready, points, strict=True):
            refused = point.payload.pop(REFUSED, None)
            change = ("added" if old is None else "unchanged" if same_product(old, point)
                      else "updated")
            if not refused and change != "unchanged":
                to_write.append(point)
            outcomes.append(Outcome(it, error=refused, change=change, warning=warning))
        try:
            self.store.upsert(to_write)
        except Exception as exc:
            self.jobs.finish_many(settled)
            for it, *_ in ready:
                self.jobs.release(it)
            raise StoreUnavailable(f"vector store unreachable: {exc}") from exc
        self.jobs.finish_many(settled + outcomes)

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def encode(self, ready: Sequence[tuple[Item, StoredPoint | None, list[Photo], Any]]
               ) -> list[StoredPoint]:
        """One forward pass for every new photo, then the enrichers on the embeddings of
        the products whose main photo is new, then the derived fields."""
        fresh = [p for _, _, photos, _ in ready for p in photos if p.image is not None]
        # Yielding to shoppers between chunks; otherwise one pass for the whole batch.
        step = (self.foreground and self.settings.ingest_yield_chunk) or max(1, len(fresh))
        for start in range(0, len(fresh), step):
            part = fresh[start:start + step]
            if self.foreground:
                self.foreground.wait_idle(self.settings.ingest_yield_max_ms / 1000)
            vectors = self.encoder.encode_images([p.image for p in part if p.image])
            for photo, vector in zip(part, vectors, strict=True):
                photo.vector, photo.image = vector, None
        rows = [np.stack([p.vector for p in photos if p.vector is not None])
                for _, _, photos, _ in ready]
        points = [StoredPoint(point_id(it.product_id), self.payload(it, old, photos), vectors)
                  for (it, old, photos, _), vectors in zip(ready, rows, strict=True)]
        judged = [i for i, (_, old, photos, _) in enumerate(ready)
                  if not self.same_main_photo(old, photos)]
        if judged:
            mains = np.stack([rows[i][0] for i in judged])
            for enrich in self.enrichers:
                enrich([points[i].payload for i in judged], mains)
        for point in points:
            normalise(point.payload)
            point.text = self.keywords.document(point.payload)
        return points

    def same_main_photo(self, old: StoredPoint | None, photos: list[Photo]) -> bool:
        return (old is not None and old.payload.get("model") == self.model_id
                and old.payload.get("image_sha256") == photos[0].sha256)

    def payload(self, item: Item, old: StoredPoint | None, photos: list[Photo]
                ) -> dict[str, Any]:
        meta = dict(item.metadata)
        version = meta.pop("version")
        product_id = meta.pop("id")
        meta.pop(DISPLAY_KEY, None)  # items queued before several photos had one photo's
        payload = {**meta, "product_id": product_id, "images": [p.ref() for p in photos],
                   "image_sha256": photos[0].sha256, DISPLAY_KEY: photos[0].display_sha256,
                   "model": self.model_id, "updated_at": version,
                   "created_at": old.payload.get("created_at", version) if old else version,
                   "moderation_status": ModerationStatus.visible.value, "predicted": {}}
        if old and self.same_main_photo(old, photos):  # same photo: keep what was judged of it
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
            with metrics.ingest_batch(len(items)):
                self.process(items)  # StoreUnavailable: items released for a later try
        return len(items)

    def run_pending(self, on_batch: Callable[[int], None] | None = None) -> int:
        """Process queued items until none are left; returns how many were taken.
        `on_batch(n)` is told after each batch (progress bars). With read-ahead
        (VITRINE_INGEST_READ_AHEAD), the next batch is decoded while this one encodes."""
        read_ahead = self.settings.ingest_read_ahead
        if read_ahead is None:
            read_ahead = self.encoder.device.type != "cpu"
        if read_ahead:
            from catalogue.ahead import run_ahead

            return run_ahead(self, on_batch)
        taken = 0
        while n := self.run_batch():
            taken += n
            if on_batch:
                on_batch(n)
        return taken
