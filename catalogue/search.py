"""Shopper search: what a query asks for, and the pages that answer it.

A query is text, a photo, a product's photos, or a mix (`Search.ask`); by default it
is searched in both ways the engine knows, photo vectors and keywords, fused
(`mode`: hybrid, semantic, keyword; catalogue.keywords, catalogue.store.base.Query).
A query that names a product's SKU, GTIN, MPN or id finds that product first (pinned
above the fused results, on the first page). Results page by offset or by cursor
(catalogue.cursor), by relevance or in a sort order of the catalogue schema;
diverse results (MMR) page by offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from catalogue.attributes import (
    DEFAULT_SCHEMA,
    IDENTIFIERS,
    VARIANTS,
    CatalogueSchema,
    InvalidFilter,
)
from catalogue.cursor import decode_cursor, encode_cursor
from catalogue.foreground import Foreground
from catalogue.page_cache import PageCache
from catalogue.products import ProductRepository, visibility_filter
from catalogue.queries import DEFAULT_ALPHA, TextQueries
from catalogue.results import explain, show, words_of
from catalogue.schemas import Role, SearchResults
from catalogue.settings import CatalogueSettings
from catalogue.store.base import Hit, Query, VectorStore
from catalogue.store.filters import Filter
from catalogue.store.paging import After
from embedding.encoder import Encoder, combine

# Facets are counted over at most this many hits when a relevance cutoff applies.
FACET_WINDOW = 1000
# A query sorted by price (or newest...) orders at most this many of its most relevant hits.
SORT_WINDOW = 1000
MODES = ("hybrid", "semantic", "keyword")
PIN_SCORE = 1000.0  # above any fused or cosine score: exact identifiers come first
WORDS_SCORE = 100.0  # added to the score of hybrid hits the words found (words first)
IDENTIFIER = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9._:/-]{2,}$")  # has a digit, >= 3


@dataclass
class Ask:
    """A shopper's query, ready for the store: `text` is what they typed."""

    query: Query
    text: str | None = None
    mode: str = "semantic"
    words: str | None = None
    """What the keyword side searched: the text, and its spelling where that differs."""
    key: Hashable | None = None
    """Everything that decided `query`, where that is not a photo (the page cache's key)."""
    photo: bool = False
    """The query has a photo (uploaded, or a product's): its words narrow, its looks order."""


def store_filter(filters: Filter | None, role: Role = Role.shopper,
                 exclude_ids: Sequence[str] = ()) -> Filter:
    """The shop's filters (CatalogueSchema.filter), narrowed to what `role` may see."""
    f = visibility_filter(role)
    if filters is not None:
        f.match |= filters.match
        f.any |= filters.any
        f.range |= filters.range
        f.nested |= filters.nested
    f.exclude_ids = list(exclude_ids)
    return f


class Search:
    def __init__(self, encoder: Encoder, store: VectorStore, products: ProductRepository,
                 schema: CatalogueSchema = DEFAULT_SCHEMA, foreground: Foreground | None = None,
                 settings: CatalogueSettings | None = None,
                 spelling: Callable[[str], str | None] | None = None):
        """`foreground`: told while a query is encoded and searched, so background ingest
        in this process waits (catalogue.foreground). `spelling`: a query text as the catalogue
        spells it, or None (Suggester.spell): its vector is the spelled text's, and the
        keyword side searches both."""
        self.encoder, self.store, self.products, self.schema = encoder, store, products, schema
        self.spelling = spelling
        self.foreground = foreground or Foreground()
        self.settings = settings or CatalogueSettings()
        self.keywords = products.keywords
        self.texts = TextQueries(encoder, self.settings.query_cache_size,
                                 self.settings.query_batch_window_ms / 1000)
        self.pages = PageCache(self.settings.page_cache_size)

    def close(self) -> None:
        self.texts.close()

    # -- what is asked ---------------------------------------------------------------
    def ask(self, text: str | None = None, image: Image.Image | None = None,
            product_id: str | None = None, alpha: float = DEFAULT_ALPHA,
            negative: str | None = None, negative_weight: float = 0.5, mode: str | None = None,
            keyword_weight: float | None = None, diversity: float = 0.0) -> Ask:
        """A query from text, an uploaded photo or a stored product's photos (mixed by
        alpha), in a mode; the keyword side needs text."""
        mode = mode or self.settings.search_mode
        if mode not in MODES:
            raise InvalidFilter(f"mode must be one of {', '.join(MODES)}")
        if mode == "keyword" and not text:
            raise InvalidFilter("keyword mode needs a query text (q)")
        spelled = self.spelling(text) if text and self.spelling else None
        with self.foreground.serving():  # in keyword mode, for the relevance cutoff only
            dense = self.query_vector(spelled or text, image, product_id, alpha, negative,
                                      negative_weight)
        words = " ".join(filter(None, (text, spelled))) if mode != "semantic" else None
        sparse = self.keywords.query(words) if words else None
        weight = self.settings.keyword_weight if keyword_weight is None else keyword_weight
        query = Query(dense, sparse, self.settings.fusion, weight,
                      self.settings.hybrid_candidates, diversity, words_only=mode == "keyword",
                      words_first=self.settings.hybrid_words_first)
        key = None if image is not None else (
            text, product_id, alpha, negative, negative_weight, mode, spelled, query.fusion,
            weight, query.candidates, diversity, query.words_first, Query.RRF_K)
        return Ask(query, text, mode, words, key, image is not None or bool(product_id))

    def like(self, positive_ids: Sequence[str], negative_ids: Sequence[str] = ()) -> Ask:
        """More like these products, less like those: each is the one vector of all its
        photos, so scores stay cosines (a product's best photo against it)."""
        def vectors(ids: Sequence[str]) -> list[np.ndarray]:
            return [self.products.vector(i, Role.shopper) for i in ids]

        with self.foreground.serving():
            return Ask(Query(positives=vectors(positive_ids), negatives=vectors(negative_ids),
                             candidates=self.settings.hybrid_candidates))

    def query_vector(self, text: str | None = None, image: Image.Image | None = None,
                     product_id: str | None = None, alpha: float = DEFAULT_ALPHA,
                     negative: str | None = None, negative_weight: float = 0.5) -> np.ndarray:
        """Text, an uploaded image or a stored product's photos, mixed by alpha."""
        text_vec = self.texts.vector(text) if text else None
        if image is not None:
            image_vec = self.encoder.encode_images([image])[0]
        elif product_id:
            image_vec = self.products.vector(product_id, Role.shopper)
        else:
            image_vec = None
        negative_vec = self.texts.vector(negative) if negative else None
        return combine(text_vec, image_vec, alpha, negative_vec, negative_weight)

    # -- the pages -------------------------------------------------------------------
    def search(self, ask: Ask | np.ndarray | None, filters: Filter | None = None,
               limit: int = 20, offset: int = 0, min_score: float | None = None,
               exclude_ids: Sequence[str] = (), cursor: str | None = None,
               sort: str = "relevance", explained: bool = False) -> SearchResults:
        """A page from `offset`, or after `cursor` (a next_cursor; InvalidCursor if it is
        not one), by relevance or in a sort order of the schema's. Either way the page
        says its offset and both ways to the next one."""
        text, page = self._page(ask, filters, limit, offset, min_score, exclude_ids, cursor,
                                sort, explained)
        return page if page is not None else SearchResults.model_validate_json(text)

    def search_json(self, *args: Any, **kwargs: Any) -> str:
        """`search`'s page (the same arguments) as JSON, for a response: one kept in the
        page cache is sent as it is kept, never made into objects."""
        return self._page(*args, **kwargs)[0]

    def _page(self, ask: Ask | np.ndarray | None, filters: Filter | None = None,
              limit: int = 20, offset: int = 0, min_score: float | None = None,
              exclude_ids: Sequence[str] = (), cursor: str | None = None,
              sort: str = "relevance", explained: bool = False
              ) -> tuple[str, SearchResults | None]:
        """The page's JSON, and the page where it was made now (None: from the cache)."""
        if isinstance(ask, np.ndarray):
            ask = Ask(Query(dense=ask))
        key = None if ask is not None and ask.key is None else (
            ask and ask.key, repr(filters), limit, offset, min_score, tuple(exclude_ids),
            cursor, sort, explained)
        version = self.store.version()
        if (kept := self.pages.get(key, version)) is not None:
            return kept, None
        with self.foreground.serving():
            page = self._search(ask, filters, limit, offset, min_score, exclude_ids, cursor,
                                sort, explained)
        text = page.model_dump_json()
        self.pages.put(key, version, text)
        return text, page

    def _search(self, ask: Ask | None, filters: Filter | None, limit: int, offset: int,
                min_score: float | None, exclude_ids: Sequence[str], cursor: str | None,
                sort: str, explained: bool) -> SearchResults:
        after = decode_cursor(cursor) if cursor is not None else None
        if after is not None and ask is not None and ask.query.diversity:
            raise InvalidFilter("diverse results page by offset: give offset, not cursor")
        f = store_filter(filters, exclude_ids=exclude_ids)
        order = self.schema.sort_key(sort)
        pins: list[Hit] = []
        if order is None:
            if ask is None:
                raise InvalidFilter("relevance needs a query: give q, an image or a product, "
                                    "or another sort order")
            pins = self.pinned(ask, f)
            reach = None if after is not None else offset + limit + 1
            head = pins + self.worded(ask, f, pins, min_score, reach)
            hits = self.relevant(ask, f, head, limit + 1, offset, min_score, after)
        elif ask is None:
            hits = self.store.order(order[0], order[1], f, limit + 1, offset, after)
        else:
            hits = self.sorted_by_value(ask, f, order, limit + 1, offset, min_score, after)
        page = hits[:limit]
        if after is not None:  # where the page starts in today's order
            offset = (page[0].position or 0) if page else after.position + 1
        more = len(hits) > limit
        cheapest = order is not None and order[0] == "min_price"
        return SearchResults(
            results=self.present(page, ask, filters, {p.id for p in pins}, explained, cheapest),
            limit=limit, offset=offset, next_offset=offset + limit if more else None,
            next_cursor=encode_cursor(page[-1]) if more and not (
                ask and ask.query.diversity) else None)

    def pinned(self, ask: Ask, f: Filter) -> list[Hit]:
        """Products whose id, SKU, GTIN or MPN the query text names, above everything."""
        if not ask.text or ask.mode == "semantic":
            return []
        whole = ask.text.strip()  # a query of one token may be any id, short ones too
        names = {w for w in words_of(ask.text) if IDENTIFIER.match(w)} | (
            {whole} if whole and not any(c.isspace() for c in whole) else set())
        if not names:
            return []
        found: dict[str, Hit] = {}
        by_field = [Filter(any={"product_id": sorted(names)})] + [
            Filter(nested={VARIANTS: Filter(any={key: sorted(names)})})
            for key in IDENTIFIERS]
        for condition in by_field:
            for point in self.store.scroll(f.both(condition), limit=10)[0]:
                found.setdefault(point.id, Hit(point.id, 0.0, point.payload))
        pins = sorted(found.values(), key=lambda h: h.id)
        for i, hit in enumerate(pins):
            hit.score, hit.position = PIN_SCORE - i, i
        return pins

    def worded(self, ask: Ask, f: Filter, pins: list[Hit], min_score: float | None,
               reach: int | None = None) -> list[Hit]:
        """Hybrid mode, words first (VITRINE_HYBRID_WORDS_FIRST): the products the words
        find (the keyword side's best `candidates`) rank above those only the photo side
        finds, which follow; a text query orders them fused. A query with a photo is the
        photo's look, narrowed by its words (a brand, "floral"): the words also find
        every one of the photo side's best `candidates` they match, and the vectors alone
        order them. A word many products carry then keeps the look-alikes that carry it,
        where the keyword side's own cut among near-equal scores falls by description
        length; and fusion, which stretches each side to its spread, would let that
        length noise outweigh the looks.

        With `reach` (a page by offset: offset + limit + 1), at most that many: fewer
        are all the words found, and that many hold the page, which then needs nothing
        after them (turning the engine's 200 hits into Python cost more than finding
        them). One more is asked, to see that no equal score crosses the edge."""
        query = ask.query
        if (ask.mode != "hybrid" or query.sparse is None or query.dense is None
                or query.diversity or not query.words_first):
            return []
        rest = f.both(Filter(exclude_ids=[p.id for p in pins]))
        head = replace(query, head="looks" if ask.photo else "fused")  # one engine query
        every = query.candidates
        if reach is None or reach >= every:
            hits = self.store.top(head, rest, every, min_score)
        else:
            hits = self.store.top(head, rest, reach + 1, min_score)
            if len(hits) > reach and hits[-1].score == hits[reach - 1].score:
                # Equal scores across the edge, in id order among only those the engine
                # kept, could differ from the next page's: all of them, then.
                hits = self.store.top(head, rest, every, min_score)
            else:
                hits = hits[:reach]
        for i, hit in enumerate(hits):
            hit.score, hit.position = WORDS_SCORE + hit.score, len(pins) + i
        return hits

    def relevant(self, ask: Ask, f: Filter, head: list[Hit], limit: int, offset: int,
                 min_score: float | None, after: After | None) -> list[Hit]:
        """The `head` (pinned products, then those the words found) first, then the
        engine's hits without them; positions count both, so offsets and cursors move
        through one list."""
        n = len(head)
        rest = f.both(Filter(exclude_ids=[h.id for h in head]))
        ended_in_head = after is not None and after.position < n and \
            head[after.position].id == after.id
        if after is not None and ended_in_head:  # a page that ended in the head
            offset, after = after.position + 1, None
        if after is not None:
            shifted = After(after.score, after.id, max(0, after.position - n))
            hits = self.store.search(ask.query, rest, limit, 0, min_score, after=shifted)
            first: list[Hit] = []
        else:
            first = head[offset:offset + limit]
            hits = self.store.search(ask.query, rest, limit - len(first), max(0, offset - n),
                                     min_score)
        for hit in hits:
            hit.position = (hit.position or 0) + n
        return first + hits

    def sorted_by_value(self, ask: Ask, f: Filter, order: tuple[str, bool], limit: int,
                        offset: int, min_score: float | None, after: After | None
                        ) -> list[Hit]:
        """The relevant hits (above `min_score`, at most SORT_WINDOW of them) in a value
        order, equal values by point id; each hit's score becomes its value, so a cursor
        continues in this order."""
        path, descending = order
        sign = -1.0 if descending else 1.0
        relevant = self.store.search(ask.query, f, limit=SORT_WINDOW, score_threshold=min_score)
        keyed = [Hit(h.id, value, h.payload) for h in relevant
                 if (value := value_at(h.payload, path)) is not None]
        keyed.sort(key=lambda h: (sign * h.score, h.id))
        start = offset
        if after is not None:
            start = next((i for i, h in enumerate(keyed)
                          if (sign * h.score, h.id) > (sign * after.score, after.id)),
                         len(keyed))
        page = keyed[start:start + limit]
        for i, hit in enumerate(page):
            hit.position = start + i
        return page

    def present(self, page: list[Hit], ask: Ask | None, filters: Filter | None,
                pinned: set[str], explained: bool, cheapest: bool = False) -> list:
        vectors = explained or self.store.photos != 1  # to pick a photo, or to explain
        points = {p.id: p for p in self.store.retrieve([h.id for h in page], with_vectors=vectors,
                                                       words=explained)}
        for hit in page:  # hits of candidate sets come without
            if not hit.payload and hit.id in points:
                hit.payload = points[hit.id].payload
        page = [h for h in page if h.payload]  # one deleted since it was found
        vector = ask.query.dense if ask else None
        results = []
        keyword = self.keyword_scores(ask, page) if explained else {}
        terms = ({w: self.keywords.query(w).indices for w in words_of(ask.words)}
                 if explained and ask and ask.words else {})
        for hit in page:
            point = points.get(hit.id)
            rows = point.vector if point else None
            result = show(hit, rows, vector, filters, cheapest)
            if explained:
                result = explain(result, rows, vector, point.text if point else None,
                                 keyword.get(hit.id), terms, hit.id in pinned)
            results.append(result)
        return results

    def keyword_scores(self, ask: Ask | None, page: list[Hit]) -> dict[str, float]:
        """The keyword side's scores of the page's products, as the engine scores them."""
        if not page or ask is None or not ask.text:
            return {}
        these = Filter(ids=[h.id for h in page])
        hits = self.store.search(Query(sparse=self.keywords.query(ask.words or ask.text)),
                                 these, len(page))
        return {h.id: h.score for h in hits}

    def facets(self, filters: Filter | None = None, ask: Ask | None = None,
               min_score: float | None = None) -> tuple[dict[str, dict[str, int]], int]:
        """Products per value of each facetable attribute, and the total, under the filters;
        with a relevance cutoff, among the hits above it."""
        with self.foreground.serving():
            f = store_filter(filters)
            attributes = self.schema.facetable
            if ask is None or min_score is None:
                return ({a.name: self.store.facet(a.path, f) for a in attributes},
                        self.store.count(f))
            hits = self.store.search(ask.query, f, limit=FACET_WINDOW, score_threshold=min_score)
        counts: dict[str, dict[str, int]] = {a.name: {} for a in attributes}
        for h in hits:
            for a in attributes:
                for value in self.schema.values(h.payload, a):
                    counts[a.name][value] = counts[a.name].get(value, 0) + 1
        return ({k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in counts.items()},
                len(hits))


def value_at(payload: dict, path: str) -> float | None:
    """A product's number at a payload path (sorting), None where it has none."""
    value: object = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
