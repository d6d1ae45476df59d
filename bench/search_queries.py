"""The queries of `bench.search_quality`, their relevant products, and how a ranking scores.

Kinds: a product's name (relevant: every product with that name), the name with one
typo (one character substituted, inserted or deleted in one word of 5+ letters), a
brand, "a red dress" (a colour and article type), "a striped shirt" (a pattern other
than plain and an article type), and "this product, but floral" (`mixed`: a held-out plain
product's photos and a pattern's words, in both phrasings, "floral" and "with flowers";
relevant: every product of its article type and colour with that pattern; the product
itself is left out, as in training.patterns). Per query: R@1, the first result relevant;
R@10, for names, typos and mixed queries a relevant product in the top 10, for the
others the relevant share of the top 10 over min(10, relevant); the reciprocal rank of
the first relevant result in the top 10 (0 if none), whose mean is MRR.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

KINDS = ("name", "typo", "brand", "colour", "pattern", "mixed")
MULTI = ("brand", "colour", "pattern")  # kinds whose R@10 is a share of the top 10
LETTERS = "abcdefghijklmnopqrstuvwxyz"
LIMIT = 10  # results per query, as one page


@dataclass
class Case:
    kind: str
    text: str
    relevant: frozenset[str]
    product: str | None = None  # the product a name, typo or mixed query was taken from
    intended: str | None = None  # a typo query's name as the catalogue spells it


def one_typo(word: str, rng: np.random.Generator) -> str:
    """`word` with one character substituted, inserted or deleted (never itself)."""
    while True:
        i = int(rng.integers(len(word)))
        edit = rng.choice(("substitute", "insert", "delete"))
        c = LETTERS[int(rng.integers(26))]
        if edit == "substitute":
            out = word[:i] + c + word[i + 1:]
        elif edit == "insert":
            out = word[:i] + c + word[i:]
        else:
            out = word[:i] + word[i + 1:]
        if out.lower() != word.lower():
            return out


def with_typo(name: str, rng: np.random.Generator) -> str:
    words = name.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    i = long[int(rng.integers(len(long)))]
    words[i] = one_typo(words[i], rng)
    return " ".join(words)


def build_cases(rows: list[dict], n: int, seed: int) -> tuple[list[Case], dict]:
    """Every kind's queries from styles.csv rows (`n` names and as many typos), and how
    many names are unique."""
    from catalogue.captions import attribute_query

    rng = np.random.default_rng(seed)
    products = [r for r in rows if not r.get("moderation")]
    by_name: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_name[r["productDisplayName"]].add(r["id"])
    sample = rng.choice(len(products), size=min(n, len(products)), replace=False)
    cases = []
    for i in sample:
        r = products[int(i)]
        name = r["productDisplayName"]
        cases.append(Case("name", name, frozenset(by_name[name]), r["id"]))
    for i in sample:
        r = products[int(i)]
        name = r["productDisplayName"]
        cases.append(Case("typo", with_typo(name, rng), frozenset(by_name[name]), r["id"],
                          name))
    groups: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for r in products:
        groups[("brand", r["brand"])].add(r["id"])
        groups[("colour", r["baseColour"], r["articleType"])].add(r["id"])
        if r["pattern"] != "plain":
            groups[("pattern", r["pattern"], r["articleType"])].add(r["id"])
    for key, ids in sorted(groups.items()):
        text = key[1] if key[0] == "brand" else attribute_query(key[1], key[2])
        cases.append(Case(key[0], text, frozenset(ids)))
    sizes = Counter(len(v) for v in by_name.values())
    names = {"products": len(products), "distinct_names": len(by_name),
             "unique_names": sizes[1],
             "products_with_unique_name": sum(1 for r in products
                                              if len(by_name[r["productDisplayName"]]) == 1),
             "largest_name_group": max(len(v) for v in by_name.values())}
    return cases, names


def mixed_cases(rows: list[dict], held_out: set[str]) -> list[Case]:
    """"This product, but {pattern}" for the held-out products (training.patterns'
    queries: every plain one, with every pattern another of its article type and colour
    carries), in both phrasings."""
    from catalogue.captions import PHRASINGS, pattern_words
    from training.patterns import mixed_queries

    products = [r for r in rows if not r.get("moderation")]
    held = [r for r in products if r["id"] in held_out]
    cases = []
    for i, pattern in mixed_queries(held):
        kind = (held[i]["articleType"], held[i]["baseColour"], pattern)
        relevant = frozenset(r["id"] for r in products
                             if (r["articleType"], r["baseColour"], r["pattern"]) == kind)
        cases += [Case("mixed", pattern_words(pattern, "en", phrasing), relevant, held[i]["id"])
                  for phrasing in PHRASINGS]
    return cases


# -- scoring ----------------------------------------------------------------------------------
def score(case: Case, ranked: list[str]) -> tuple[float, float, float]:
    """R@1, R@10 and reciprocal rank of one query's ranked product ids (module docstring)."""
    hits = [pid in case.relevant for pid in ranked[:LIMIT]]
    first = next((i for i, h in enumerate(hits) if h), None)
    r1 = float(bool(hits) and hits[0])
    if case.kind in MULTI:
        r10 = sum(hits) / min(LIMIT, len(case.relevant))
    else:
        r10 = float(first is not None)
    return r1, r10, 0.0 if first is None else 1.0 / (first + 1)
