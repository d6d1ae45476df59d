"""Typeahead completions: titles, brands and categories of the shopper-visible catalogue.

Matching. Text is folded (NFKD without combining marks, casefolded, apostrophes dropped:
"Levi's" is the word "levis", found by "levi", "levis" or "levi's"; other non-word
characters split words: "T-Shirt" is "t" "shirt"). An entry matches when each query word
matches one of its words, the last as a prefix (unless the query ends in a space), the
others whole; a query word of 5+ letters may be one edit (insert, delete, substitute, swap
neighbours) away. Ranking: exact before typo matches, brands and categories before titles,
more products, shorter text, alphabetical; one suggestion per folded text. The same
index spells queries for search (`spell`): a word no entry holds becomes the known word
(of 5+ letters) one edit away that the most entries hold beside the query's other words.

Index. Entries are numbered in that static order; each distinct word keeps the numbers of
the entries holding it, in one flat array ordered like the sorted word list, so all words
with a prefix are one contiguous slice (two bisects). A query marks each word's entries in
a boolean mask, intersects the masks and takes the first `limit` set bits: no scoring, no
sorting. Typo candidates come from walking the sorted word list as an implicit trie: at
each position only the letters some word continues with are tried (a bisect jump each), so
there is no deletion index to build or hold (SymSpell-style deletions of every word prefix
would be millions of keys at 100k titles).

Hand-written because symspellpy corrects whole words against a frequency dictionary (no
prefix completion, no counts) and rapidfuzz scores a query against every choice (a scan per
keystroke); neither indexes a catalogue that is rebuilt every minute.

The index is rebuilt when older than `refresh_seconds`, in a background thread while the
old one answers (the first call builds it before answering). At 100k synthetic products
("<colour> <pattern> <article> by <brand>", a busy 2-core box): build 1.6-2 s (scroll ~1 s),
11-18 MB; query p50 0.12-0.18 ms, p99 0.3-5 ms; p99 ~6 ms while a rebuild runs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from catalogue.products import pages, visibility_filter
from catalogue.schemas import Role
from catalogue.store.base import VectorStore

log = logging.getLogger(__name__)

KINDS = ("brand", "category", "title")  # payload fields, and the kind of a suggestion
MAX_ENTRIES = 200_000  # distinct entries kept; titles beyond it are left out
TYPO_MIN_LETTERS = 5
_APOSTROPHES = str.maketrans("", "", "'’ʼ`")
_WORD = re.compile(r"\w+")
_PAGE = 256


def fold(text: str) -> str:
    """Lower case without accents or apostrophes: the form every comparison uses."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c))
    return text.casefold().translate(_APOSTROPHES)


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def _after(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))


def _rank(entry: tuple[str, str, int]) -> str:
    """The static order, as one string: those sort twice as fast as tuples (GIL held)."""
    text, kind, count = entry
    return f"{int(kind == 'title')}{10**9 - count:010d}{len(text):06d}{text.casefold()}\0{text}"


@dataclass
class Suggestion:
    text: str  # the completion as shown
    kind: str  # "title" | "brand" | "category"
    count: int  # visible products that have it


class _Index:
    """Entries in ranking order and, per distinct word, the entries holding it."""

    def __init__(self, entries: Iterable[tuple[str, str, int]]):
        self.entries = sorted(entries, key=_rank)
        self.keys: list[str] = []
        holders: dict[str, list[int]] = {}
        for number, (text, _, _) in enumerate(self.entries):
            if number % 512 == 0:
                time.sleep(0)  # hand over the GIL: queries waited up to 10 ms without
            found = words(text)
            self.keys.append(" ".join(found))
            for word in dict.fromkeys(found):
                holders.setdefault(word, []).append(number)
        self.words = sorted(holders)
        self.position = {w: i for i, w in enumerate(self.words)}
        sizes = [len(holders[w]) for w in self.words]
        self.offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        self.postings = np.fromiter((n for w in self.words for n in holders[w]), np.int32,
                                    count=int(self.offsets[-1]))

    def _span(self, prefix: str) -> tuple[int, int]:
        """The words starting with `prefix`, as a range of the sorted word list."""
        if not prefix:
            return 0, len(self.words)
        lo = bisect_left(self.words, prefix)
        return lo, bisect_left(self.words, _after(prefix), lo)

    def _branches(self, stem: str) -> Iterator[str]:
        """The letters that some word continues `stem` with, each once."""
        i, hi = self._span(stem)
        if i < hi and self.words[i] == stem:
            i += 1
        while i < hi:
            letter = self.words[i][len(stem)]
            yield letter
            i = bisect_left(self.words, _after(stem + letter), i, hi)

    def _one_edit(self, word: str, prefix: bool) -> Iterator[str]:
        """Strings one edit from `word` that words (or, with `prefix`, word prefixes) can be."""
        for i in range(len(word)):
            yield word[:i] + word[i + 1:]
            if i + 1 < len(word) and word[i] != word[i + 1]:
                yield word[:i] + word[i + 1] + word[i] + word[i + 2:]
        # Insertions and substitutions (inserting at a prefix's end finds what it finds).
        for i in range(len(word) + (0 if prefix else 1)):
            stem = word[:i]
            branches = list(self._branches(stem))
            if not branches:
                break  # no word starts with `stem`, nor with anything longer
            for letter in branches:
                yield stem + letter + word[i:]
                if i < len(word) and letter != word[i]:
                    yield stem + letter + word[i + 1:]

    def _spans(self, word: str, prefix: bool, typo: bool) -> list[tuple[int, int]]:
        if not typo:
            if prefix:
                return [self._span(word)]
            i = self.position.get(word)
            return [] if i is None else [(i, i + 1)]
        found = set()
        for variant in set(self._one_edit(word, prefix)):
            if prefix:
                found.add(self._span(variant))
            elif (i := self.position.get(variant)) is not None:
                found.add((i, i + 1))
        return sorted(found)

    def _mask(self, spans: list[tuple[int, int]]) -> np.ndarray:
        mask = np.zeros(len(self.entries), bool)
        for lo, hi in spans:
            mask[self.postings[self.offsets[lo]:self.offsets[hi]]] = True
        return mask

    def spell(self, typed: list[str]) -> list[str]:
        """Each word no entry holds replaced by the known word one edit away, when the word
        meant has 5+ letters (a typed "bige" may be "beige"): the one most entries hold
        together with the query's known words ("sorts shoes": "sports", not "shorts"),
        then the one most entries hold at all."""
        unknown = [w for w in typed if w not in self.position
                   and len(w) >= TYPO_MIN_LETTERS - 1]
        if not unknown:
            return typed
        context = np.ones(len(self.entries), bool)
        for word in typed:
            if word in self.position:
                context &= self._mask(self._spans(word, prefix=False, typo=False))

        def rank(word: str) -> tuple[int, int, str]:
            i = self.position[word]
            held = self.postings[self.offsets[i]:self.offsets[i + 1]]
            return -int(context[held].sum()), -len(held), word

        fixed = {}
        for word in unknown:
            near = [v for v in set(self._one_edit(word, prefix=False))
                    if v in self.position and len(v) >= TYPO_MIN_LETTERS]
            fixed[word] = min(near, key=rank, default=word)
        return [fixed.get(w, w) for w in typed]

    def match(self, q: str, limit: int) -> list[Suggestion]:
        typed = words(q)
        if not typed or limit <= 0 or not self.entries:
            return []
        exact = np.ones(len(self.entries), bool)
        near = exact.copy()
        for i, word in enumerate(typed):
            prefix = i == len(typed) - 1 and not q[-1].isspace()
            here = self._mask(self._spans(word, prefix, typo=False))
            exact &= here
            if len(word) >= TYPO_MIN_LETTERS:
                here |= self._mask(self._spans(word, prefix, typo=True))
            near &= here
            if not near.any():
                return []
        found: list[Suggestion] = []
        seen: set[str] = set()
        for numbers in (np.flatnonzero(exact), np.flatnonzero(near & ~exact)):
            for n in numbers:
                if len(found) == limit:
                    return found
                if self.keys[n] not in seen:
                    seen.add(self.keys[n])
                    found.append(Suggestion(*self.entries[n]))
        return found


class Suggester:
    """Completions over `store`'s shopper-visible catalogue, read anew every `refresh_seconds`."""

    def __init__(self, store: VectorStore, refresh_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.store, self.refresh_seconds, self._clock = store, refresh_seconds, clock
        self._state: tuple[_Index, float] | None = None  # the index and when it was read
        self._lock = threading.Lock()  # starting a build
        self._building = threading.Lock()  # builds run one at a time: the newest wins
        self._worker: threading.Thread | None = None

    def suggest(self, q: str, limit: int = 10) -> list[Suggestion]:
        """Up to `limit` completions of `q`, best first."""
        return self._current().match(q, limit)

    def spell(self, q: str) -> str | None:
        """`q` as the catalogue spells it (folded: "Floarl dress" -> "floral dress"), each
        word no title, brand or category holds replaced by a known word one edit away
        (_Index.spell); None when no word changed."""
        typed = words(q)
        fixed = self._current().spell(typed)
        return " ".join(fixed) if fixed != typed else None

    def refresh(self) -> None:
        """Rebuild the index from the store now."""
        with self._building:
            started = self._clock()
            self._state = _Index(self._read()), started

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Wait for a background rebuild, if one runs, at most `timeout` seconds."""
        if (worker := self._worker) is not None:
            worker.join(timeout)

    def _current(self) -> _Index:
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    self.refresh()
                state = self._state
            assert state is not None
        elif self._clock() - state[1] >= self.refresh_seconds:
            self._refresh_in_background()
        return state[0]

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker = threading.Thread(target=self._refresh_quietly, daemon=True,
                                            name="suggest-refresh")
            self._worker.start()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception:
            # The old index answers on; the next try is a period later, not next keystroke.
            log.exception("suggestions: rebuilding the index failed")
            if self._state is not None:
                self._state = self._state[0], self._clock()

    def _read(self) -> list[tuple[str, str, int]]:
        """(text, kind, count) of each distinct brand, category and title a shopper sees."""
        shown: dict[tuple[str, str], str] = {}  # (kind, text casefolded) -> text as first seen
        counts: Counter[tuple[str, str]] = Counter()
        for points in pages(self.store, visibility_filter(Role.shopper), _PAGE):
            time.sleep(0)  # hand over the GIL: queries waited up to 170 ms without
            for point in points:
                for kind in KINDS:
                    text = point.payload.get(kind)
                    if not isinstance(text, str) or not text.strip():
                        continue
                    key = kind, " ".join(text.casefold().split())
                    if key not in shown and (kind != "title" or len(shown) < MAX_ENTRIES):
                        shown[key] = " ".join(text.split())
                    if key in shown:
                        counts[key] += 1
        return [(text, key[0], counts[key]) for key, text in shown.items()]
