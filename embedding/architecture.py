"""Build CLIP-family models from scratch and save them in Hugging Face format.

No pretrained weights can be downloaded where Vitrine is developed, so the
project makes its own: tiny random models for tests, a ViT-B/32-sized random
model for timing, and a small CLIP trained on the demo catalogue. All of them
are saved with `save_pretrained` and loaded back through exactly the path a
hub id takes (`Encoder(model="path/to/folder")`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipImageProcessorPil,
    SiglipModel,
)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
# Token ids follow the order of SPECIAL_TOKENS. EOS must not be 2: CLIP treats
# eos_token_id == 2 as a legacy config and pools at argmax(input_ids) instead.
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
ALPHABET = list("abcdefghijklmnopqrstuvwxyzäöüß0123456789")


@dataclass(frozen=True)
class Architecture:
    """Sizes of a CLIP-family model; the defaults make a model of a few MB."""

    family: str = "clip"  # "clip" or "siglip"
    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_width: int = 128
    text_layers: int = 4
    text_heads: int = 4
    embed_dim: int = 128
    context_length: int = 32
    vocab_size: int = 2000

    @classmethod
    def tiny(cls, family: str = "clip") -> Architecture:
        return cls(family=family, image_size=32, patch_size=8, vision_width=32, vision_layers=2,
                   vision_heads=2, text_width=32, text_layers=2, text_heads=2, embed_dim=16,
                   context_length=16, vocab_size=300)

    @classmethod
    def vit_b32(cls) -> Architecture:
        """The sizes of OpenAI's ViT-B/32 CLIP (and FashionCLIP), for timing."""
        return cls(image_size=224, patch_size=32, vision_width=768, vision_layers=12,
                   vision_heads=12, text_width=512, text_layers=12, text_heads=8, embed_dim=512,
                   context_length=77, vocab_size=49408)


def train_tokenizer(texts: Iterable[str], vocab_size: int, context_length: int,
                    family: str = "clip") -> PreTrainedTokenizerFast:
    """Train a small lower-casing BPE tokenizer on `texts` (any language)."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=ALPHABET, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    if family == "clip":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 2), (EOS, 3)])
    else:  # SigLIP appends only an end-of-sequence token and pools the last position
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {EOS}", special_tokens=[(EOS, 3)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS,
        model_max_length=context_length)


def build_model(arch: Architecture, tokenizer: PreTrainedTokenizerFast, seed: int = 0):
    """A randomly initialised CLIP or SigLIP model and its image processor."""
    import torch

    torch.manual_seed(seed)
    text = {"vocab_size": len(tokenizer), "hidden_size": arch.text_width,
            "intermediate_size": 4 * arch.text_width, "num_hidden_layers": arch.text_layers,
            "num_attention_heads": arch.text_heads,
            "max_position_embeddings": arch.context_length,
            "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
    vision = {"image_size": arch.image_size, "patch_size": arch.patch_size,
              "hidden_size": arch.vision_width, "intermediate_size": 4 * arch.vision_width,
              "num_hidden_layers": arch.vision_layers, "num_attention_heads": arch.vision_heads}
    size = {"height": arch.image_size, "width": arch.image_size}
    model: CLIPModel | SiglipModel
    processor: CLIPImageProcessorPil | SiglipImageProcessorPil
    if arch.family == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision,
                                     projection_dim=arch.embed_dim))
        processor = CLIPImageProcessorPil(size={"shortest_edge": arch.image_size}, crop_size=size)
    elif arch.family == "siglip":
        # SigLIP has no projection layer: the embedding size is the tower width.
        text["projection_size"] = vision["hidden_size"] = arch.embed_dim
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        processor = SiglipImageProcessorPil(size=size)
    else:
        raise ValueError(f"unknown model family {arch.family!r}: use 'clip' or 'siglip'")
    return model, processor


def save_model(folder: Path, model, processor, tokenizer) -> Path:
    """Save model, image processor and tokenizer side by side, as on the hub."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
