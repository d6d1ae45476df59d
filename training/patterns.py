"""Does a model see patterns? Three measures on the held-out products, in any language of
catalogue.captions, each with both phrasings a shopper uses ("floral" and "with flowers";
"geblümt" and "mit Blumen"), pooled and per phrasing:

* pattern+article precision@10: for every (pattern, article type) present among the
  held-out products, "a floral dress" / "a dress with flowers" / "ein geblümtes Kleid" /
  "ein Kleid mit Blumen"; the fraction of the top 10 with both the pattern and the article
  type, capped (divided by min(10, matching products)) and plain, as attribute precision;
* pattern-only precision@10: "floral", "with flowers", "geblümt", "mit Blumen"; the
  fraction of the top 10 carrying the pattern, whatever the article (every pattern has
  dozens of held-out products, so capped and plain are the same);
* "this product, but {pattern}": a held-out plain product's image vector mixed with the
  pattern words' text vector as the shop mixes a photo and words (embedding.encoder.combine
  at catalogue.queries.DEFAULT_ALPHA, the shop page's default), ranked over the other
  held-out products. A query is asked for every held-out plain product and every pattern
  that some other held-out product of its article type and colour carries; it succeeds
  when the top 5 hold such a product (same article type, same colour, the asked
  pattern). Reported beside it: the fraction of the top 5 that keep the article type and
  colour, and the fraction that carry the asked pattern.

Patterns are the non-plain values of the `pattern` column; a catalogue without them (a
live catalogue whose managers give no pattern) gets no pattern figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from catalogue.captions import PHRASINGS, pattern_query, pattern_words
from catalogue.queries import DEFAULT_ALPHA
from catalogue.vocabulary import PATTERN_MOTIF
from embedding import metrics
from embedding.encoder import Encoder, combine

PATTERNED = tuple(PATTERN_MOTIF)  # striped, dotted, checked, floral: every pattern but plain
MIXED_TOP = 5


def _column(rows: Sequence[dict], name: str) -> np.ndarray:
    return np.array([r.get(name, "") or "" for r in rows])


def has_patterns(rows: Sequence[dict]) -> bool:
    return bool(set(_column(rows, "pattern")) & set(PATTERNED))


def _pooled(per_phrasing: dict[str, dict], key: str) -> float:
    """The mean over every query of every phrasing (each phrasing asks the same number)."""
    return float(np.mean([m[key] for m in per_phrasing.values()]))


def pattern_article_precision(encoder: Encoder, rows: Sequence[dict], image_emb: np.ndarray,
                              language: str, k: int = 10) -> dict:
    """Precision@k of "a {pattern} {article}" queries over the images of `rows`."""
    patterns, articles = _column(rows, "pattern"), _column(rows, "articleType")
    pairs = sorted({(p, a) for p, a in zip(patterns, articles, strict=True) if p in PATTERNED})
    relevant = np.stack([(patterns == p) & (articles == a) for p, a in pairs])
    per: dict[str, dict] = {}
    for phrasing in PHRASINGS:
        queries = [pattern_query(p, a, language, phrasing) for p, a in pairs]
        relevance = metrics.ranked_relevance(encoder.encode_texts(queries) @ image_emb.T,
                                             relevant)
        per[phrasing] = {
            f"precision@{k}": metrics.precision_at_k(relevance, k, relevant.sum(1), capped=True),
            f"raw_precision@{k}": metrics.precision_at_k(relevance, k),
            "example": queries[0]}
    return {f"precision@{k}": _pooled(per, f"precision@{k}"),
            f"raw_precision@{k}": _pooled(per, f"raw_precision@{k}"),
            "queries": len(pairs) * len(PHRASINGS), "phrasings": per}


def pattern_only_precision(encoder: Encoder, rows: Sequence[dict], image_emb: np.ndarray,
                           language: str, k: int = 10) -> dict:
    """Precision@k of the pattern words alone ("floral", "with flowers")."""
    patterns = _column(rows, "pattern")
    present = [p for p in PATTERNED if (patterns == p).any()]
    relevant = np.stack([patterns == p for p in present])
    per: dict[str, dict] = {}
    for phrasing in PHRASINGS:
        queries = [pattern_words(p, language, phrasing) for p in present]
        relevance = metrics.ranked_relevance(encoder.encode_texts(queries) @ image_emb.T,
                                             relevant)
        per[phrasing] = {f"precision@{k}": metrics.precision_at_k(relevance, k),
                         "by_pattern": dict(zip(present, relevance[:, :k].mean(1).tolist(),
                                                strict=True)),
                         "example": queries[-1]}
    return {f"precision@{k}": _pooled(per, f"precision@{k}"),
            "queries": len(present) * len(PHRASINGS), "phrasings": per}


def mixed_queries(rows: Sequence[dict]) -> list[tuple[int, str]]:
    """(index of a plain product, pattern asked) for every held-out plain product and every
    pattern another product of its article type and colour carries."""
    patterns = _column(rows, "pattern")
    kinds = list(zip(_column(rows, "articleType"), _column(rows, "baseColour"), strict=True))
    carried: dict[tuple[str, str], set[str]] = {}
    for kind, pattern in zip(kinds, patterns, strict=True):
        carried.setdefault(kind, set()).add(pattern)
    return [(i, p) for i, kind in enumerate(kinds) if patterns[i] == "plain"
            for p in PATTERNED if p in carried[kind]]


def mixed_query_success(encoder: Encoder, rows: Sequence[dict], image_emb: np.ndarray,
                        language: str, alpha: float = DEFAULT_ALPHA, top: int = MIXED_TOP
                        ) -> dict:
    """"This product, but {pattern}": the share of queries whose top `top` hold a product
    of the same article type and colour with the asked pattern (module docstring)."""
    asked = mixed_queries(rows)
    if not asked:
        return {"success": float("nan"), "queries": 0, "alpha": alpha, "phrasings": {}}
    patterns = _column(rows, "pattern")
    articles, colours = _column(rows, "articleType"), _column(rows, "baseColour")
    index = np.array([i for i, _ in asked])
    wanted = np.array([p for _, p in asked])
    same_kind = (articles[index][:, None] == articles[None, :]) \
        & (colours[index][:, None] == colours[None, :])
    same_pattern = wanted[:, None] == patterns[None, :]
    per: dict[str, dict] = {}
    for phrasing in PHRASINGS:
        words = {p: pattern_words(p, language, phrasing) for p in PATTERNED}
        text = dict(zip(words, encoder.encode_texts(list(words.values())), strict=True))
        queries = np.stack([combine(text[p], image_emb[i], alpha) for i, p in asked])
        scores = queries @ image_emb.T
        scores[np.arange(len(asked)), index] = -np.inf  # the product itself is not an answer
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        kind_kept = np.take_along_axis(same_kind, order, axis=1)
        pattern_shown = np.take_along_axis(same_pattern, order, axis=1)
        per[phrasing] = {"success": float((kind_kept & pattern_shown).any(1).mean()),
                         "kept_article_and_colour": float(kind_kept.mean()),
                         "carried_pattern": float(pattern_shown.mean()),
                         "example": words["floral"]}
    return {"success": _pooled(per, "success"),
            "kept_article_and_colour": _pooled(per, "kept_article_and_colour"),
            "carried_pattern": _pooled(per, "carried_pattern"),
            "queries": len(asked) * len(PHRASINGS), "alpha": alpha, "top": top,
            "phrasings": per}


def pattern_metrics(encoder: Encoder, rows: Sequence[dict], image_emb: np.ndarray,
                    language: str, alpha: float = DEFAULT_ALPHA,
                    alphas: Sequence[float] = ()) -> dict:
    """The three measures of the module docstring in one language; `alphas` adds the mixed
    query's figures at other weights ("mixed_by_alpha"), to choose the shop's default."""
    out = {"pattern_article": pattern_article_precision(encoder, rows, image_emb, language),
           "pattern_only": pattern_only_precision(encoder, rows, image_emb, language),
           "mixed": mixed_query_success(encoder, rows, image_emb, language, alpha)}
    if alphas:
        out["mixed_by_alpha"] = {
            f"{a:g}": {k: v for k, v in mixed_query_success(encoder, rows, image_emb, language,
                                                           a).items() if k != "phrasings"}
            for a in alphas}
    return out


def format_rows(results: dict) -> list[str]:
    """Markdown table rows (metric | value) for `evaluate`'s "pattern" results."""
    def examples(measure: dict) -> str:  # one query a phrasing: "floral" / "with flowers"
        return " / ".join(f"\"{v['example']}\"" for v in measure["phrasings"].values())

    lines = []
    for language, m in results.items():
        pa, po, mx = m["pattern_article"], m["pattern_only"], m["mixed"]
        lines.append(f"| pattern+article precision@10 ({language}, {examples(pa)}, "
                     f"{pa['queries']} queries) | {pa['precision@10']:.3f} "
                     f"(plain fraction of 10: {pa['raw_precision@10']:.3f}) |")
        lines.append(f"| pattern-only precision@10 ({language}, {examples(po)}, "
                     f"{po['queries']} queries) | {po['precision@10']:.3f} |")
        lines.append(f"| \"this product, but {{pattern}}\" top-{mx.get('top', MIXED_TOP)} "
                     f"success ({language}, photo + {examples(mx)}, alpha {mx['alpha']:g}, "
                     f"{mx['queries']} queries) | {mx['success']:.3f} (top 5 keeping article "
                     f"and colour: {mx.get('kept_article_and_colour', float('nan')):.3f}; "
                     f"carrying the pattern: {mx.get('carried_pattern', float('nan')):.3f}) |")
    return lines
