"""Whole result pages of repeated queries, kept while the catalogue stands still.

A shop's first page for "red dress" is asked for all day, and between two changes to the
catalogue its answer is the same: the page is kept, keyed by everything that decides it
(the query's text and knobs, filters, paging, sort), and dropped, with every other page,
as soon as the store's `version` moves (any write, a rebuilt index). Only a store that
sees every write in this process has a version (the embedded one); on a server, where
workers write, nothing is kept. Written here because the key and the version are the
catalogue's own; a generic cache (functools.lru_cache, cachetools) knows neither.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from catalogue.schemas import SearchResults


class PageCache:
    def __init__(self, size: int):
        self.size = size
        self._pages: OrderedDict[Hashable, SearchResults] = OrderedDict()
        self._version: Hashable = None
        self._lock = threading.Lock()
        self.hits = 0  # pages answered from here, for tests and benches

    def get(self, key: Hashable | None, version: Hashable | None) -> SearchResults | None:
        if key is None or version is None or not self.size:
            return None
        with self._lock:
            if version != self._version:
                self._pages.clear()
                self._version = version
                return None
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                self.hits += 1
            return page

    def put(self, key: Hashable | None, version: Hashable | None, page: SearchResults) -> None:
        if key is None or version is None or not self.size:
            return
        with self._lock:
            if version != self._version:  # written meanwhile: the page may be stale
                return
            self._pages[key] = page
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
