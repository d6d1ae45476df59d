"""Tiny random CLIP/SigLIP models that tests and benchmarks make themselves and save to disk."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from embedding.architecture import Architecture, build_model, save_model, train_tokenizer

CORPUS = ["a red dress with white dots", "black trousers for men", "blue striped shirt",
          "Kleid mit Punkten", "rotes Kleid", "green jacket", "white sneakers"] * 20


def make_random_model(folder: Path, arch: Architecture, corpus: Iterable[str],
                      seed: int = 0) -> Path:
    """Train a tokenizer on `corpus`, build a random model and save all of it to `folder`."""
    tokenizer = train_tokenizer(corpus, arch.vocab_size, arch.context_length, arch.family)
    model, processor = build_model(arch, tokenizer, seed)
    return save_model(folder, model, processor, tokenizer)
