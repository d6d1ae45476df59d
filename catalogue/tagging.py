"""Auto-tagging: fill in a product's missing attributes from its image, zero-shot.

For each configured field (category and colour by default) that an upload leaves
empty, the image embedding is classified against the values the catalogue already
uses for that field (its facet values among visible products, cached and
refreshed every few minutes), or a configured vocabulary while the catalogue has
too few. Prompts are ensembles (embedding.zeroshot); a template may name another
field ("a {colour} {}") and is used when that field is known for the product.

The prediction is stored under payload `predicted` = {field: {value, confidence,
applied}}; at or above the field's threshold the value is also written into the
field itself (applied), so shoppers' filters and facets use it. A manager who sets
the field (PATCH) replaces the prediction.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalogue.attributes import VARIANT_FIELDS, VARIANTS
from catalogue.captions import article_name
from catalogue.schemas import SHOPPER_VISIBLE
from catalogue.store.base import VectorStore
from catalogue.store.filters import Filter
from catalogue.vocabulary import COLOURS, COMMON_ARTICLE_TYPES, PATTERNS
from embedding.encoder import Encoder
from embedding.zeroshot import classify

log = logging.getLogger(__name__)

TAGGABLE = ("category", "colour", "gender", "pattern")
_REFERENCE = re.compile(r"\{([a-z_]+)\}")

DEFAULT_VOCABULARY: dict[str, list[str]] = {
    "category": list(COMMON_ARTICLE_TYPES),
    "colour": list(COLOURS),
    "pattern": list(PATTERNS),
}
DEFAULT_TEMPLATES: dict[str, list[str]] = {
    "category": ["a photo of a {}", "a product photo of a {}", "a {}", "{}",
                 "a {colour} {}", "{colour} {}"],
    "colour": ["a {} product", "a {} item of clothing", "{}", "in {}",
               "a {} {category}", "{} {category}", "{category} in {}"],
    "pattern": ["a {} product", "a {} {category}", "{} {category}"],
    "gender": ["clothing for {}", "a {category} for {}"],
}


class TaggingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_TAGGING_", extra="ignore")

    enabled: bool = True
    fields: list[str] = ["category", "colour"]
    """Fields predicted when an upload leaves them empty."""
    threshold: float = Field(0.8, ge=0, le=1)
    """Confidence at or above which the prediction is written into the field (so shoppers'
    filters use it); below, it is only stored for managers to confirm."""
    thresholds: dict[str, float] = {"category": 0.95}
    """Per-field overrides of `threshold`, as JSON. A wrong category hides a product from
    the filter shoppers use most, so it needs more confidence (bench/results/moderation.md)."""
    vocabulary: dict[str, list[str]] = DEFAULT_VOCABULARY
    """Used for a field while the catalogue holds fewer than `min_values` of its values."""
    templates: dict[str, list[str]] = DEFAULT_TEMPLATES
    min_values: int = Field(3, ge=2)
    refresh_seconds: float = Field(300.0, ge=0)
    """How long the catalogue's values of a field are cached."""
    ignore_values: list[str] = ["Unknown", "NA", "N/A", "Other", "Misc"]

    def threshold_for(self, field: str) -> float:
        return self.thresholds.get(field, self.threshold)


def prompt_name(field: str, value: str) -> str:
    """How a field's value reads in a prompt: "Tshirts" -> "t-shirt", "Navy Blue" -> "navy blue"."""
    return article_name(value) if field == "category" else value.lower()


class Vocabulary:
    """A field's candidate values: the catalogue's own, cached, else the configured ones."""

    def __init__(self, settings: TaggingSettings, store: VectorStore | None):
        self.settings, self.store = settings, store
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def values(self, field: str) -> list[str]:
        with self._lock:
            cached = self._cache.get(field)
            if cached and time.monotonic() - cached[0] < self.settings.refresh_seconds:
                return cached[1]
        values = self._from_store(field)
        if len(values) < self.settings.min_values:
            values = list(self.settings.vocabulary.get(field, []))
        with self._lock:
            self._cache[field] = (time.monotonic(), values)
        return values

    def _from_store(self, field: str) -> list[str]:
        if self.store is None:
            return []
        try:
            path = f"{VARIANTS}[].{field}" if field in VARIANT_FIELDS else field
            counts = self.store.facet(path, Filter(any={"moderation_status":
                                                         list(SHOPPER_VISIBLE)}), limit=500)
        except Exception:  # no index for this field, or the store is busy: configured words
            log.warning("could not read the values of %r from the store", field, exc_info=True)
            return []
        ignored = {v.lower() for v in self.settings.ignore_values}
        return sorted(v for v in counts if v and v.lower() not in ignored)

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()


class Tagger:
    """Ingest enricher: predicts the configured fields a payload leaves empty."""

    def __init__(self, settings: TaggingSettings, encoder: Encoder,
                 store: VectorStore | None = None):
        unknown = set(settings.fields) - set(TAGGABLE)
        if unknown:
            raise ValueError(f"cannot tag {sorted(unknown)}: choose among {TAGGABLE}")
        self.settings, self.encoder = settings, encoder
        self.vocabulary = Vocabulary(settings, store)

    def templates(self, field: str, payload: dict[str, Any]) -> tuple[str, ...]:
        """The field's templates whose references to other fields the payload fills in."""
        out = []
        for template in self.settings.templates.get(field, ["{}"]):
            refs = set(_REFERENCE.findall(template))
            known = {ref: payload[ref] for ref in refs if payload.get(ref)}
            if len(known) == len(refs):
                out.append(template.format("{}", **{r: prompt_name(r, v)
                                                    for r, v in known.items()}))
        return tuple(out) or ("{}",)

    def predict(self, field: str, payloads: Sequence[dict[str, Any]], vectors: np.ndarray
                ) -> list[tuple[str, float] | None]:
        """(value, confidence) for each payload, grouped by the templates that apply."""
        values = self.vocabulary.values(field)
        if len(values) < 2:
            return [None] * len(payloads)
        labels = [prompt_name(field, v) for v in values]
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, payload in enumerate(payloads):
            groups.setdefault(self.templates(field, payload), []).append(i)
        out: list[tuple[str, float] | None] = [None] * len(payloads)
        for templates, rows in groups.items():
            probs = classify(self.encoder, vectors[rows], labels, templates)
            for row, p in zip(rows, probs, strict=True):
                best = int(np.argmax(p))
                out[row] = (values[best], float(p[best]))
        return out

    def __call__(self, payloads: Sequence[dict[str, Any]], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, np.float32)
        for field in self.settings.fields:
            missing = [i for i, p in enumerate(payloads) if not has(p, field)]
            if not missing:
                continue
            guesses = self.predict(field, [payloads[i] for i in missing], vectors[missing])
            threshold = self.settings.threshold_for(field)
            for i, guess in zip(missing, guesses, strict=True):
                if guess is None:
                    continue
                value, confidence = guess
                applied = confidence >= threshold
                payloads[i].setdefault("predicted", {})[field] = {
                    "value": value, "confidence": round(confidence, 4), "applied": applied}
                if applied:
                    payloads[i][field] = value


def has(payload: dict[str, Any], field: str) -> bool:
    """Whether a product states `field`: itself, or every one of its variants (a feed's
    variants carry their colours, the product none)."""
    variants = payload.get(VARIANTS) or []
    return bool(payload.get(field)) or (bool(variants) and all(v.get(field)
                                                              for v in variants))


def carry_predictions(payload: dict[str, Any]) -> None:
    """On re-ingest of an unchanged image: keep predictions only for fields the new
    metadata leaves empty, and put the applied ones back into their fields."""
    predicted = {k: v for k, v in (payload.get("predicted") or {}).items()
                 if not payload.get(k)}
    payload["predicted"] = predicted
    for field, guess in predicted.items():
        if guess.get("applied"):
            payload[field] = guess["value"]
