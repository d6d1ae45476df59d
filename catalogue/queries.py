"""Query texts into vectors, cheaply: a bounded cache, and one text-tower pass for the
queries that arrive together.

A shop's queries repeat ("red dress" all day): the cache (keyed by model and text, least
recently used out) answers a repeated one without the text tower. Queries that miss at
about the same moment share a batch: the first waits `window_s` for company, then one
forward pass encodes every text queued by then, and each caller gets its row. Written
here (a lock, a list and futures) because the batching has to live where the model is;
no serving library fits inside this process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future

import numpy as np

from embedding.encoder import Encoder


class TextQueries:
    def __init__(self, encoder: Encoder, cache_size: int = 10_000, window_s: float = 0.002,
                 max_batch: int = 64):
        self.encoder, self.cache_size = encoder, cache_size
        self.window_s, self.max_batch = window_s, max_batch
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._queued: list[tuple[str, Future[np.ndarray]]] = []
        self.passes = 0  # forward passes made, for tests and benches

    def vector(self, text: str) -> np.ndarray:
        key = (self.encoder.model_id, text)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            future: Future[np.ndarray] = Future()
            self._queued.append((text, future))
            leader = len(self._queued) == 1
        if leader:
            self._lead()
        vector = future.result()
        with self._lock:
            self._cache[key] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return vector

    def _lead(self) -> None:
        """Wait for company, then encode everything queued in one pass (or in passes of
        `max_batch`), answering each caller."""
        deadline = time.monotonic() + self.window_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._queued) >= self.max_batch:
                    break
            time.sleep(self.window_s / 4)
        with self._lock:
            batch, self._queued = self._queued, []
        for start in range(0, len(batch), self.max_batch):
            part = batch[start:start + self.max_batch]
            try:
                vectors = self.encoder.encode_texts([text for text, _ in part])
                self.passes += 1
            except BaseException as exc:
                for _, future in part:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(part, vectors, strict=True):
                future.set_result(vector)
