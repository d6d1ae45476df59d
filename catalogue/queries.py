"""Query texts into vectors, cheaply: a bounded cache, and one text-tower pass for the
queries that arrive together.

A shop's queries repeat ("red dress" all day): the cache (keyed by model and text, least
recently used out) answers a repeated one without the text tower. Queries that miss go to
one encoding thread (started with the first miss). It waits `window_s` after the first of
a quiet spell for company, then encodes everything queued (up to `max_batch`) in one
forward pass; texts that arrive while a pass runs queue up and make the next pass as soon
as the encoder frees, so under load a pass takes everything that came in during the one
before (dynamic batching, as Triton and TorchServe do it). Written here (a condition
variable, a list and futures) because the batching has to live where the model is; no
serving library fits inside this process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future

import numpy as np
from opentelemetry.context import Context

from catalogue import tracing
from embedding.encoder import Encoder

DEFAULT_ALPHA = 0.4
"""The image's weight when a photo and words are mixed into one query (embedding.encoder.
combine) and the caller gives none: the API's default, and the shop page's slider starts
there (api/static/index.html and js/shop.js; tests/test_patterns.py keeps them equal).

Below 0.5 because a photo's vector lies far nearer other photos than any words do (the
gap between CLIP's image and text vectors): mixed evenly, the photo drowns the words and
"this dress, but floral" returns the dress. On the demo model, "this product, but
{pattern}" (training.patterns) succeeded most often at 0.4 of the alphas 0.2-0.7 tried:
lower, the top 5 carry the pattern but lose the article and colour (bench/results/
training.md)."""


class TextQueries:
    def __init__(self, encoder: Encoder, cache_size: int = 10_000, window_s: float = 0.002,
                 max_batch: int = 64):
        self.encoder, self.cache_size = encoder, cache_size
        self.window_s, self.max_batch = window_s, max_batch
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        # Each text with its caller's future and trace context.
        self._queued: list[tuple[str, Future[np.ndarray], Context]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self.passes = 0  # forward passes made, for tests and benches

    def vector(self, text: str) -> np.ndarray:
        key = (self.encoder.model_id, text)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if self._closed:
                raise RuntimeError("query texts are closed (this search was replaced)")
            future: Future[np.ndarray] = Future()
            self._queued.append((text, future, tracing.current()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._encode_forever, daemon=True,
                                                name="vitrine-text-queries")
                self._thread.start()
            self._ready.notify()
        vector = future.result()
        with self._lock:
            self._cache[key] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return vector

    def close(self) -> None:
        """Stop the encoding thread once what is queued is encoded."""
        with self._lock:
            self._closed = True
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _encode_forever(self) -> None:
        while batch := self._next_batch():
            self._encode(batch)

    def _next_batch(self) -> list[tuple[str, Future[np.ndarray], Context]]:
        """What is queued, once there is some: after a quiet spell, what `window_s` more
        brings (unless the text tower encodes each text alone: then a lone query waits for
        nobody); texts that queued during the last pass go at once."""
        with self._lock:
            waited = bool(self._queued)  # these waited for the encoder already
            while not self._queued:
                if self._closed:
                    return []
                self._ready.wait()
            if not waited and self.encoder.texts_share_passes:
                deadline = time.monotonic() + self.window_s
                while len(self._queued) < self.max_batch and \
                        (left := deadline - time.monotonic()) > 0:
                    self._ready.wait(left)
            batch, self._queued = self._queued[:self.max_batch], self._queued[self.max_batch:]
            return batch

    def _encode(self, batch: list[tuple[str, Future[np.ndarray], Context]]) -> None:
        try:
            # A traced pass shows under the request that waited longest (one span, though
            # it serves the whole batch).
            with tracing.within(batch[0][2]):
                vectors = self.encoder.encode_texts([text for text, _, _ in batch])
            self.passes += 1
        except BaseException as exc:  # every caller hears it; the thread goes on
            for _, future, _ in batch:
                future.set_exception(exc)
            return
        for (_, future, _), vector in zip(batch, vectors, strict=True):
            future.set_result(vector)
