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

The rules have a version, `SCHEME`: a store remembers the scheme its keyword vectors were
written with (catalogue.versions), and a process that starts with other rules or another
language rewrites them from the stored products before it serves (vitrine.wiring).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import qdrant_edge as qe

from catalogue.attributes import VARIANTS, CatalogueSchema
from catalogue.store.base import Sparse

PRODUCT_WORDS = ("product_id", "title", "brand", "category", "colour", "pattern", "tags",
                 "description")
VARIANT_WORDS = ("colour", "size", "sku", "gtin", "mpn")
_HYPHENATED = re.compile(r"\w+(?:-\w+)+")
SCHEME = 2
"""The version of these word rules. Raise it with any change that gives a stored product
other words (2: hyphenated words joined up)."""


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
    def __init__(self, schema: CatalogueSchema, language: str = "english"):
        """`language`: the Snowball stemmer and stop words ("english", "german", ...);
        ValueError for one the engine doesn't know."""
        self.schema, self.language = schema, language
        self.model = qe.Bm25(qe.Bm25Config(language=language))

    @property
    def scheme(self) -> str:
        """The word rules and language a keyword vector was written with."""
        return f"{SCHEME} {self.language}"

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
        return _sparse(self.model.embed_document(with_compounds(self.words(payload))))

    def query(self, text: str) -> Sparse:
        return _sparse(self.model.embed_query(_HYPHENATED.sub(_joined, text)))


def _sparse(vector: qe.SparseVector) -> Sparse:
    return Sparse(list(vector.indices), list(vector.values))
