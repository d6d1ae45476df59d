"""Zero-shot classification with prompt ensembles, as in the CLIP paper (section 3.1.4).

A label's embedding is the mean of its normalised prompt embeddings ("a photo
of a dress", "a product photo of a dress", ...), renormalised. Images are
classified by a softmax over the model's logit scale times the cosine to each
label. Moderation and auto-tagging use the same two functions.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from embedding.encoder import Encoder, l2_normalise

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a product photo of a {}",
    "a {} on a plain background",
    "a photo of the {}",
    "a catalogue photo of a {}",
    "{}",
)

# Per encoder (so per loaded model), per (model id, labels, templates). Weak keys:
# dropping an encoder drops its cached label embeddings with it. Bounded, least
# recently used out first: shoppers can send any labels to /v1/classify.
CACHE_SIZE = 256
_cache: weakref.WeakKeyDictionary[Encoder, OrderedDict[tuple, np.ndarray]] = (
    weakref.WeakKeyDictionary())


def class_embeddings(encoder: Encoder, labels: Sequence[str],
                     templates: Sequence[str] = DEFAULT_TEMPLATES) -> np.ndarray:
    """(labels, dim) unit vectors: each label's prompt embeddings averaged and renormalised."""
    if not labels:
        raise ValueError("zero-shot classification needs at least one label")
    if not templates or any("{}" not in t for t in templates):
        raise ValueError("templates must be non-empty and each hold one '{}'")
    key = (encoder.model_id, tuple(labels), tuple(templates))
    per_encoder = _cache.setdefault(encoder, OrderedDict())
    if key in per_encoder:
        per_encoder.move_to_end(key)
        return per_encoder[key]
    prompts = [t.format(label) for label in labels for t in templates]
    emb = encoder.encode_texts(prompts).reshape(len(labels), len(templates), -1)
    per_encoder[key] = l2_normalise(emb.mean(1))
    if len(per_encoder) > CACHE_SIZE:
        per_encoder.popitem(last=False)
    return per_encoder[key]


def classify(encoder: Encoder, image_embeddings: np.ndarray, labels: Sequence[str],
             templates: Sequence[str] = DEFAULT_TEMPLATES) -> np.ndarray:
    """(images, labels) probabilities: softmax of logit_scale * cosine; rows sum to 1."""
    classes = class_embeddings(encoder, labels, templates)
    logits = encoder.logit_scale * np.asarray(image_embeddings, np.float32) @ classes.T
    logits -= logits.max(1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(1, keepdims=True)
