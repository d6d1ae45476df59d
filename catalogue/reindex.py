"""Reindex: the catalogue re-encoded with another model, into that model's own version,
made live only when complete and checked.

`Reindexer.run` walks the live store's products in point-id order and, for each one
the new version lacks (or holds older than the live one), decodes its stored
originals (never a re-upload), encodes them with the new model in batches and upserts
the product with the same fields, predictions and moderation status. Products the live
store no longer has are removed from the new one. Passes repeat until one finds
nothing to do, so changes made meanwhile (uploads, edits, deletes) land too; a serving
process holds its writes for a last pass and the switch (`quiet`). Then the
check: the same number of products, and each of a sample of products found by its
own photos in the new store. Only then does the registry make the new version live
(one transaction); a failure anywhere leaves the live version untouched.

It resumes: a product is skipped when the new version already holds it as recent as
the live one, so a reindex killed halfway picks up where it was, and point ids are
the products' own, so nothing is doubled.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from catalogue.fetch import Fetcher, FetchPolicy
from catalogue.images import model_input_size
from catalogue.keywords import Keywords
from catalogue.media import MediaStore
from catalogue.photos import Photo, Photos
from catalogue.products import pages
from catalogue.settings import CatalogueSettings
from catalogue.store.base import StoredPoint, VectorStore
from catalogue.versions import ModelVersion, Versions
from embedding.encoder import Encoder

log = logging.getLogger(__name__)
PAGE = 64  # products read, decoded and encoded together
SAMPLE_CHECKS = 20


class ReindexFailed(RuntimeError):
    """The new version did not pass its check; the live version is untouched."""


@dataclass
class Progress:
    done: int = 0  # products encoded into the new version, this run
    skipped: int = 0  # already there (a resumed run)
    removed: int = 0
    failed: int = 0  # products whose originals could not be read or decoded
    total: int = 0


class Reindexer:
    def __init__(self, settings: CatalogueSettings, live: VectorStore, target: VectorStore,
                 encoder: Encoder, media: MediaStore, keywords: Keywords):
        self.settings, self.live, self.target = settings, live, target
        self.encoder, self.media, self.keywords = encoder, media, keywords
        self.failures: dict[str, str] = {}
        self.photos = Photos(settings, media, Fetcher(FetchPolicy.of(settings)),
                             model_input_size(encoder.preprocess))

    def run(self, versions: Versions, version: ModelVersion,
            on_page: Callable[[Progress], None] | None = None,
            quiet: AbstractContextManager | None = None,
            on_live: Callable[[], None] | None = None) -> Progress:
        """Re-encode everything into `version`'s store, check it, make it live.

        `quiet`, entered once the passes have caught up, stops writes to the live store
        (a serving process's ingest and edits) until `on_live` has put the new version
        into service: the last pass, taken inside it, then misses nothing."""
        versions.set_state(version.id, "building")
        progress = Progress(total=self.live.count())
        # Uploads arriving steadily would keep every pass busy: with writes to be held,
        # a pass with no more than a page to do is close enough; the last one is quiet.
        self.catch_up(progress, on_page, enough=PAGE if quiet else 0)
        with quiet or nullcontext():
            self.catch_up(progress, on_page)
            self.check()
            versions.make_live(version.id)
            if on_live:
                on_live()
        return progress

    def catch_up(self, progress: Progress, on_page: Callable[[Progress], None] | None,
                 enough: int = 0) -> None:
        """Passes until one finds no more than `enough` to do."""
        while self.sweep(progress, on_page) > enough:
            progress.total = self.live.count()
        progress.total = self.live.count()

    def sweep(self, progress: Progress, on_page: Callable[[Progress], None] | None) -> int:
        """One pass over the live store; returns how many products it changed."""
        changed = 0
        seen: set[str] = set()
        for points in pages(self.live, size=PAGE):
            seen.update(p.id for p in points)
            have = {p.id: p.payload.get("updated_at", 0) for p in self.target.retrieve(
                [p.id for p in points])}
            todo = [p for p in points if p.id not in self.failures
                    and have.get(p.id, -1) < p.payload.get("updated_at", 0)]
            progress.skipped += len(points) - len(todo)
            encoded = self.encode(todo, progress)
            self.target.upsert(encoded)
            changed += len(encoded)
            if on_page:
                on_page(progress)
        gone = [p.id for p in self.all_points(self.target) if p.id not in seen]
        self.target.delete(gone)
        progress.removed += len(gone)
        return changed + len(gone)

    def encode(self, points: Sequence[StoredPoint], progress: Progress) -> list[StoredPoint]:
        """The products' stored originals decoded (as ingest decodes them) and encoded
        with the new model; a product whose original can't be read is a failure."""
        photos = [[Photo(sha256=ref["sha256"]) for ref in p.payload.get("images") or
                   [{"sha256": p.payload["image_sha256"]}]] for p in points]
        self.photos.decode([photo for each in photos for photo in each])
        ready = []
        for point, each in zip(points, photos, strict=True):
            errors = [photo.error for photo in each if photo.error]
            if errors:
                self.failures[point.id] = f"original unreadable: {errors[0]}"
                progress.failed += 1
            else:
                ready.append((point, [photo.image for photo in each if photo.image]))
        if not ready:
            return []
        vectors = self.encoder.encode_images([image for _, images in ready for image in images])
        out, row = [], 0
        for point, images in ready:
            rows = vectors[row:row + len(images)]
            row += len(images)
            payload = {**point.payload, "model": self.encoder.model_id}
            out.append(StoredPoint(point.id, payload, np.asarray(rows),
                                   self.keywords.document(payload)))
        progress.done += len(out)
        return out

    @staticmethod
    def all_points(store: VectorStore) -> list[StoredPoint]:
        return [p for page in pages(store) for p in page]

    def check(self) -> None:
        """Complete (as many products as live, less those that could not be re-encoded) and
        answering (for a sample of products, a search by their own photo finds a photo as
        close as theirs: products may share photos, so not necessarily theirs)."""
        live, new = self.live.count(), self.target.count()
        if new != live - len(self.failures):
            raise ReindexFailed(f"the new version holds {new} products, the live one {live}"
                                f" ({len(self.failures)} could not be re-encoded)")
        sample = self.all_points(self.target)
        for point in random.Random(0).sample(sample, min(SAMPLE_CHECKS, len(sample))):
            [stored] = self.target.retrieve([point.id], with_vectors=True)
            assert stored.vector is not None
            hits = self.target.search(stored.vector[0], limit=1)
            if not hits or hits[0].score < 0.99:
                raise ReindexFailed(f"a search by product {point.payload.get('product_id')}'s "
                                    "own photo finds nothing as close in the new version")
