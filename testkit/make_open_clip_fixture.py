"""Make `tests/data/open_clip_tiny`: a tiny random open_clip CLIP in open_clip's published
folder format, with reference outputs that open_clip itself computed from that folder.

`tests/test_open_clip.py` loads the folder through `Encoder` (which converts it to a
transformers CLIP without importing open_clip) and compares. open_clip needs torchvision,
which does not import beside the CPU torch build of .venv, so this runs in a venv of its own:

    python3 -m venv /tmp/oc-venv
    /tmp/oc-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 open-clip-torch safetensors
    /tmp/oc-venv/bin/python testkit/make_open_clip_fixture.py [tests/data/open_clip_tiny]

It imports nothing of the project. What it writes, and why:
- open_clip_config.json: written by open_clip's own `save_config_for_hf` (what
  `push_to_hf_hub` uploads), so `model_cfg` and `preprocess_cfg` are as on the hub;
- open_clip_model.safetensors: the state dict, float16 to keep the folder small;
- vocab.json, merges.txt: open_clip's default tokenizer (CLIP's BPE, 49408 tokens) in the
  files Hugging Face's CLIPTokenizer reads, as the hub's open_clip repos ship them;
- reference.npz: from `create_model_and_transforms("local-dir:<folder>")` and
  `get_tokenizer(...)`, i.e. open_clip reading the saved folder: the test images (uint8),
  their preprocessed pixels (and with `squash` + `bilinear`), token ids and embeddings of
  the test texts, zero-shot probabilities, and the embeddings of the same weights run with
  QuickGELU.

Every weight is drawn at random, LayerNorm gains and biases included (open_clip initialises
those to 1 and 0, which would hide a mis-mapped bias or norm), and the vocabulary is the real
one while the towers are 16 to 64 wide: the token embedding is most of the weights.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.model import CLIP, set_model_preprocess_cfg
from open_clip.push_to_hf_hub import save_config_for_hf
from open_clip.transform import PreprocessCfg, image_transform, merge_preprocess_dict
from PIL import Image
from safetensors.torch import save_file

MODEL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32,
                   "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2,
                 "layers": 2},
}
# Not open_clip's defaults, so the test shows they are read from the config.
PREPROCESS_CFG = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.3, 0.35],
                  "interpolation": "bicubic", "resize_mode": "shortest"}
# (width, height): odd sizes, both orientations, and long sides 3 and 7 pixels over the crop,
# where torchvision's centre crop rounds the offset (1.5 -> 2) and Hugging Face's floors it.
IMAGE_SIZES = [(32, 32), (40, 57), (57, 40), (32, 35), (39, 32), (101, 33), (20, 90),
               (64, 48), (300, 200), (17, 17)]
TEXTS = ["a red dress with white dots", "Black trousers for men", "blue striped shirt!",
         "Kleid mit Punkten, größe 38", "rotes Kleid", "green jacket", "white sneakers",
         "a  photo   of a T-shirt's print (2024) #summer", "",
         " ".join(["a very long description of a woollen winter coat"] * 12)]
LABELS = ["dress", "trousers", "jacket", "sneakers", "handbag"]
TEMPLATES = ["a photo of a {}", "a product photo of a {}", "a {} on a plain background",
             "a photo of the {}", "a catalogue photo of a {}", "{}"]


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter drawn at random, at a scale that keeps activations near 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name == "logit_scale":
                p.fill_(math.log(30.0))
            elif p.ndim == 1 and ".ln" in f".{name}" and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)  # LayerNorm gains
            elif p.ndim == 1:
                p.copy_(0.2 * noise)  # biases, the class embedding
            elif name.endswith(("proj", "text_projection")) and p.ndim == 2:
                p.copy_(noise / math.sqrt(p.shape[0]))  # (width, embed_dim): x @ proj
            elif "embedding" in name:
                p.copy_(0.5 * noise)  # token and positional embeddings
            else:
                p.copy_(noise / math.sqrt(p[0].numel()))  # (out, in...) weights


def save_tokenizer(folder: Path) -> open_clip.SimpleTokenizer:
    """open_clip's default tokenizer as vocab.json + merges.txt (Hugging Face's names for its
    two special tokens, as in openai/clip-vit-base-patch32)."""
    tokenizer = open_clip.SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(token, token): i for token, i in tokenizer.encoder.items()}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    merges = sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.__getitem__)
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n", "utf-8")
    return tokenizer


def sample_images(seed: int = 0) -> list[np.ndarray]:
    """Noise and smooth pictures (colour ramps with a block), so no two look alike."""
    rng = np.random.default_rng(seed)
    images = []
    for i, (w, h) in enumerate(IMAGE_SIZES):
        if i % 2:
            images.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            continue
        y, x = np.mgrid[0:h, 0:w]
        ramp = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / (w + h)], -1)
        picture = (255 * ramp[..., rng.permutation(3)]).astype(np.uint8)
        top, left = rng.integers(0, h // 2 + 1), rng.integers(0, w // 2 + 1)
        picture[top:top + h // 3, left:left + w // 3] = rng.integers(0, 256, 3)
        images.append(picture)
    return images


@torch.no_grad()
def embeddings(model: CLIP, pixels: torch.Tensor, tokens: torch.Tensor):
    model.eval()
    return (model.encode_image(pixels, normalize=True).numpy(),
            model.encode_text(tokens, normalize=True).numpy())


@torch.no_grad()
def zero_shot(model: CLIP, tokenizer, image_embeddings: np.ndarray) -> np.ndarray:
    """The CLIP paper's prompt ensemble (as embedding/zeroshot.py): mean of the normalised
    prompt embeddings, renormalised; softmax of logit_scale times the cosine."""
    prompts = [t.format(label) for label in LABELS for t in TEMPLATES]
    text = model.encode_text(tokenizer(prompts), normalize=True)
    classes = torch.nn.functional.normalize(text.reshape(len(LABELS), len(TEMPLATES), -1)
                                            .mean(1), dim=-1)
    logits = model.logit_scale.exp() * torch.from_numpy(image_embeddings) @ classes.T
    return logits.softmax(-1).numpy()


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = CLIP(**MODEL_CFG)
    randomise(model)
    state = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    set_model_preprocess_cfg(model, merge_preprocess_dict(PreprocessCfg(), PREPROCESS_CFG))
    save_config_for_hf(model, folder / "open_clip_config.json", model_config=MODEL_CFG)
    save_tokenizer(folder)

    # The reference: open_clip reading the folder back, as a user of open_clip would.
    name = f"local-dir:{folder}"
    loaded, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    assert isinstance(tokenizer, open_clip.SimpleTokenizer), type(tokenizer)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key].float()), key
    images = sample_images()
    pixels = torch.stack([preprocess(Image.fromarray(a)) for a in images])
    squash = image_transform(32, is_train=False, mean=PREPROCESS_CFG["mean"],
                             std=PREPROCESS_CFG["std"], resize_mode="squash",
                             interpolation="bilinear")
    squashed = torch.stack([squash(Image.fromarray(a)) for a in images])
    tokens = tokenizer(TEXTS)
    image_emb, text_emb = embeddings(loaded, pixels, tokens)

    quick = CLIP(**MODEL_CFG, quick_gelu=True)
    quick.load_state_dict(loaded.state_dict())
    quick_image, quick_text = embeddings(quick, pixels, tokens)

    np.savez_compressed(
        folder / "reference.npz",
        **{f"image_{i}": a for i, a in enumerate(images)},
        pixels=pixels.numpy(), pixels_squash_bilinear=squashed.numpy(),
        texts=np.array(TEXTS), tokens=tokens.numpy().astype(np.int32),
        image_embeddings=image_emb, text_embeddings=text_emb,
        quick_gelu_image_embeddings=quick_image, quick_gelu_text_embeddings=quick_text,
        labels=np.array(LABELS), templates=np.array(TEMPLATES),
        zeroshot_probs=zero_shot(loaded, tokenizer, image_emb),
        logit_scale=np.float32(loaded.logit_scale.exp().item()),
        made_with=np.array(f"open_clip {open_clip.__version__}, torch {torch.__version__}"),
    )
    size = sum(f.stat().st_size for f in folder.iterdir())
    print(f"{folder}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/open_clip_tiny").resolve())
