"""Whole result pages of repeated queries, kept while the catalogue stands still.

A shop's first page for "red dress" is asked for all day, and between two changes to the
catalogue its answer is the same: the page is kept, keyed by everything that decides it
(the query's text and knobs, filters, paging, sort), and dropped, with every other page,
as soon as the store's `version` moves (any write, a rebuilt index). Only a store that
sees every write in this process has a version (the embedded one); on a server, where
workers write, nothing is kept. Written here because the key and the version are the
catalogue's own; a generic cache (functools.lru_cache, cachetools) knows neither.

A page is kept as its JSON, not as its objects. A page of 20 products is some 180 objects
the garbage collector tracks, so a full cache held as many as the rest of a served process
(embedding.runtime.frozen_heap), and each full collection walked them: 80-160 ms stalls
over HTTP, one every few hundred cold searches. As JSON (12 KB) it is one object it never
walks. A response sends it as kept (`Search.search_json`); a caller wanting the page gets
a fresh one made from it (0.09 ms), so no caller can change the kept page.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class PageCache:
    def __init__(self, size: int):
        self.size = size
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._version: Hashable = None
        self._lock = threading.Lock()
        self.hits = 0  # pages answered from here, for tests and benches

    def get(self, key: Hashable | None, version: Hashable | None) -> str | None:
        """The page's JSON, where it is kept for this version of the store."""
        if key is None or version is None or not self.size:
            return None
        with self._lock:
            if version != self._version:
                self._pages.clear()
                self._version = version
                return None
            kept = self._pages.get(key)
            if kept is None:
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return kept

    def put(self, key: Hashable | None, version: Hashable | None, page: str) -> None:
        """Keep a page's JSON (SearchResults.model_dump_json)."""
        if key is None or version is None or not self.size:
            return
        with self._lock:
            if version != self._version:  # written meanwhile: the page may be stale
                return
            self._pages[key] = page
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
