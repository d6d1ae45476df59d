"""The keyword side of search: a product's words as a sparse BM25 vector.

The engine does the searching (a sparse named vector with Qdrant's IDF modifier,
fused with the photo vectors by the Query API); this module only decides which
words a product is found by and turns text into sparse vectors, with
qdrant-edge-py's in-process `Bm25` (tokenizer, stop words and Snowball stemmer
for the configured language), the same for the embedded and the server store, at
ingest and at query time. A product's words: its id, title, brand, category,
colours, pattern, tags, description, its variants' SKUs, GTINs and MPNs, and the
values of the attributes the catalogue schema marks `searchable`.

Hyphenated words: the tokenizer splits at the hyphen, so "a checked t-shirt" would be
"checked", "t", "shirt", which a checked shirt answers as well as a checked T-shirt. A
product's hyphenated words count as their parts and once more joined up ("T-Shirt" is
found by "shirt" and by "tshirt"); a query's are joined only ("t-shirt" asks for "tshirt"),
since the shopper typed the compound.

Synonyms: the words of a group are one word to the keyword side, stored and searched as
its first (like stemming, after it), so a product that says "flowers" is found by
"floral" and scores as one that says "floral", and one that says both counts the word
once. A pattern's words are a group each: its adjective and its motif in English and
German ("floral", "flowers", "geblümt", "Blumen"), since descriptions say either and a
floral product without the query's word would fall behind the products with it (words
come first in hybrid search: catalogue.search). A shop adds its own (VITRINE_SYNONYMS).

The rules have a version, `SCHEME`: a store remembers the scheme its keyword vectors were
written with (catalogue.versions), and a process that starts with other rules or another
language rewrites them from the stored products before it serves (vitrine.wiring).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import qdrant_edge as qe

from catalogue.attributes import VARIANTS, CatalogueSchema
from catalogue.settings import CatalogueSettings
from catalogue.store.base import Sparse
from catalogue.vocabulary import PATTERN_DE, PATTERN_MOTIF

PRODUCT_WORDS = ("product_id", "title", "brand", "category", "colour", "pattern", "tags",
                 "description")
VARIANT_WORDS = ("colour", "size", "sku", "gtin", "mpn")
_HYPHENATED = re.compile(r"\w+(?:-\w+)+")
SCHEME = 3
"""The version of these word rules. Raise it with any change that gives a stored product
other words (2: hyphenated words joined up; 3: a pattern's words one word)."""
PATTERN_SYNONYMS = tuple((pattern, en, PATTERN_DE[pattern], de)
                         for pattern, (en, de) in PATTERN_MOTIF.items())


def synonym_groups(text: str) -> list[list[str]]:
    """VITRINE_SYNONYMS' groups: `;` between groups, spaces between the words of one."""
    return [group.split() for group in text.split(";") if group.strip()]


def _joined(word: re.Match) -> str:
    return word.group().replace("-", "")


def with_compounds(text: str) -> str:
    """`text` and, after it, each of its hyphenated words joined up."""
    return " ".join([text, *(_joined(m) for m in _HYPHENATED.finditer(text))])


def _flat(values: Iterable[Any]) -> Iterable[str]:
    for value in values:
        if isinstance(value, list):
            yield from _flat(value)
        elif value is not None and value != "":
            yield str(value)


class Keywords:
    def __init__(self, schema: CatalogueSchema, language: str = "english",
                 synonyms: str = ""):
        """`language`: the Snowball stemmer and stop words ("english", "german", ...);
        `synonyms`: a shop's groups of words, as VITRINE_SYNONYMS gives them. ValueError
        for a language the engine doesn't know, or a synonym that is not one word the
        keyword side searches (a stop word, two words)."""
        self.schema, self.language, self.synonyms = schema, language, synonyms
        self.model = qe.Bm25(qe.Bm25Config(language=language))
        self.canonical: dict[int, int] = {}  # a synonym's token -> its group's first word's
        for group in (*PATTERN_SYNONYMS, *synonym_groups(synonyms)):
            first, *others = (self._token(word) for word in group)
            first = self.canonical.get(first, first)  # a group that starts with a synonym
            self.canonical.update({token: first for token in others if token != first})

    @classmethod
    def configured(cls, schema: CatalogueSchema, settings: CatalogueSettings) -> Keywords:
        """The keyword side as the settings say: VITRINE_TEXT_LANGUAGE, VITRINE_SYNONYMS."""
        return cls(schema, settings.text_language, settings.synonyms)

    @property
    def scheme(self) -> str:
        """The word rules, language and shop synonyms a keyword vector was written with."""
        shop = hashlib.sha256(self.synonyms.encode()).hexdigest()[:12] if self.synonyms \
            else ""
        return " ".join(filter(None, (str(SCHEME), self.language, shop)))

    def words(self, payload: dict[str, Any]) -> str:
        """The text a product is found by (description last: titles and names weigh in
        BM25 through their share of a shorter text too)."""
        variants = payload.get(VARIANTS) or []
        parts = list(_flat(payload.get(k) for k in PRODUCT_WORDS))
        parts += _flat(v.get(k) for v in variants for k in VARIANT_WORDS)
        for attribute in self.schema.attributes:
            if attribute.searchable:
                parts += sorted(self.schema.values(payload, attribute))
        return " ".join(dict.fromkeys(parts))  # each distinct value once, in order

    def document(self, payload: dict[str, Any]) -> Sparse:
        return self._as_one(self.model.embed_document(with_compounds(self.words(payload))))

    def query(self, text: str) -> Sparse:
        return self._as_one(self._query_words(text))

    def _query_words(self, text: str) -> qe.SparseVector:
        """A query's tokens as typed: hyphenated words joined, stemmed, stop words out."""
        return self.model.embed_query(_HYPHENATED.sub(_joined, text))

    def _as_one(self, vector: qe.SparseVector) -> Sparse:
        """Each synonym as its group's first word; a word carried twice so weighs as the
        heavier of the two."""
        weights: dict[int, float] = {}
        for token, value in zip(vector.indices, vector.values, strict=True):
            token = self.canonical.get(token, token)
            weights[token] = max(value, weights.get(token, value))
        return Sparse(list(weights), list(weights.values()))

    def _token(self, word: str) -> int:
        indices = self._query_words(word).indices
        if len(indices) != 1:
            raise ValueError(f"synonym {word!r} is not one word that keyword search "
                             f"searches in {self.language}")
        return indices[0]
