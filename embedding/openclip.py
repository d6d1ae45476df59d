"""open_clip models (Marqo-FashionCLIP, LAION's CLIPs...) as ordinary transformers CLIPs.

The strongest public fashion models are published in open_clip's format: a hub repo or a
folder with `open_clip_config.json` (`model_cfg`, `preprocess_cfg`) beside
`open_clip_model.safetensors` or `open_clip_pytorch_model.bin`. open_clip itself needs
torchvision, whose PyPI wheels do not import beside the CPU build of torch that Vitrine
installs, so the weights are mapped onto `transformers.CLIPModel` at load time instead: the
same tensors under other names, q, k and v split out of the fused attention projection and
the output projections transposed. Everything downstream then sees an ordinary CLIP.

Supported: open_clip's standard CLIP (ViT image tower, its own text transformer, CLIP's
BPE tokenizer), as `hf-hub:org/name` or a folder (`local-dir:` optional). Anything else
(timm towers such as SigLIP's, Hugging Face text towers, ResNets, CoCa, layer scale,
custom attention blocks, `longest` resizing) is refused with ModelLoadError, never loaded
approximately.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from embedding.encoder import ModelLoadError, Preprocessing

HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"
CONFIG_NAME = "open_clip_config.json"
# open_clip's own order of preference (factory._find_checkpoint_in_dir).
WEIGHTS_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                 "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth")
TOKENIZER_NAMES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")
# open_clip's PreprocessCfg defaults (OpenAI's mean and std), under preprocess_cfg.
PREPROCESS_DEFAULTS: dict[str, Any] = {
    "mean": (0.48145466, 0.4578275, 0.40821073), "std": (0.26862954, 0.26130258, 0.27577711),
    "interpolation": "bicubic", "resize_mode": "shortest"}
# Options of open_clip's towers that change what the model computes and that
# transformers' CLIP cannot express, with the values it can: (section, key) -> allowed.
_SUPPORTED_ONLY: dict[tuple[str, str], tuple[Any, ...]] = {
    ("vision_cfg", "ls_init_value"): (None,),  # layer scale
    ("vision_cfg", "attentional_pool"): (False, None),
    ("vision_cfg", "no_ln_pre"): (False, None),
    ("vision_cfg", "pos_embed_type"): ("learnable", None),
    ("vision_cfg", "pool_type"): ("tok", None),
    ("text_cfg", "ls_init_value"): (None,),
    ("text_cfg", "embed_cls"): (False, None),
    ("text_cfg", "no_causal_mask"): (False, None),
    ("text_cfg", "pool_type"): ("argmax", None),  # the end-of-text token has the highest id
    ("text_cfg", "proj_bias"): (False, None),
    ("text_cfg", "proj_type"): ("linear", None),
    **{(tower, key): (False, None) for tower in ("vision_cfg", "text_cfg")
       for key in ("qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner",
                   "scale_attn", "scale_fc")},
    **{(tower, "block_type"): ("default", None) for tower in ("vision_cfg", "text_cfg")},
    **{(tower, "act_kwargs"): (None,) for tower in ("vision_cfg", "text_cfg")},
}
# Fixed positions in both state dicts (after `_standard_keys`); the blocks are mapped below.
_RENAMES = {
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
}
_TRANSPOSED = {"visual.proj": "visual_projection.weight",  # x @ proj in open_clip
               "text_projection": "text_projection.weight"}
_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
          "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
_TOWERS = {"visual.transformer.resblocks.": "vision_model.encoder.layers.",
           "transformer.resblocks.": "text_model.encoder.layers."}
# Kept in some checkpoints, used by nothing here: the causal mask (rebuilt by transformers),
# OpenAI's JIT metadata, and a sigmoid loss's bias (a constant shift of every logit).
_IGNORED = {"attn_mask", "input_resolution", "context_length", "vocab_size", "logit_bias"}


class OpenClipModel(NamedTuple):
    model: Any  # transformers.CLIPModel, eval mode, in the asked dtype
    tokenizer: Any  # transformers.CLIPTokenizer
    preprocess: Preprocessing  # exactly open_clip's eval transform
    image_processor: Any  # the nearest transformers processor, to save the model with


def is_open_clip(name: str | os.PathLike) -> bool:
    """An `hf-hub:` id, or a folder (`local-dir:` optional) holding open_clip_config.json."""
    name = os.fspath(name)
    if name.startswith(HUB_PREFIX):
        return True
    return (Path(name.removeprefix(LOCAL_PREFIX)) / CONFIG_NAME).is_file()


def resolve(name: str | os.PathLike, weights: bool = True) -> Path:
    """The local folder of an open_clip model: the folder itself, or the hub snapshot
    (config and tokenizer files only unless `weights`; one weights file, safetensors first).
    Hub errors are OSErrors, as transformers' are."""
    name = os.fspath(name)
    if not name.startswith(HUB_PREFIX):
        return Path(name.removeprefix(LOCAL_PREFIX))
    import huggingface_hub  # the module, not the function: tests replace the function

    repo = name.removeprefix(HUB_PREFIX)
    small = [CONFIG_NAME, *TOKENIZER_NAMES]
    folder = Path(huggingface_hub.snapshot_download(repo, allow_patterns=small))
    if weights and not any((folder / n).is_file() for n in WEIGHTS_NAMES):
        for weights_name in WEIGHTS_NAMES:  # repos often hold two copies: fetch one
            folder = Path(huggingface_hub.snapshot_download(
                repo, allow_patterns=[*small, weights_name]))
            if (folder / weights_name).is_file():
                break
    return folder


def read_config(folder: Path) -> dict:
    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{folder} has no {CONFIG_NAME}: not an open_clip model") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not read {path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("model_cfg"), dict):
        raise ModelLoadError(f"{path} has no model_cfg")
    return config


def clip_config(config: dict) -> Any:
    """The transformers CLIPConfig of an open_clip config; ModelLoadError for architectures
    transformers' CLIP does not have."""
    from transformers import CLIPConfig

    cfg = config["model_cfg"]
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    unsupported = []
    if vision.get("timm_model_name"):
        unsupported.append(f"a timm image tower ({vision['timm_model_name']}: SigLIP, "
                           "ConvNeXt, EVA...)")
    if text.get("hf_model_name"):
        unsupported.append(f"a Hugging Face text tower ({text['hf_model_name']})")
    if text.get("hf_tokenizer_name"):
        unsupported.append(f"a tokenizer other than CLIP's BPE ({text['hf_tokenizer_name']})")
    if isinstance(vision.get("layers"), (list, tuple)):
        unsupported.append("a ResNet image tower")
    if cfg.get("multimodal_cfg"):
        unsupported.append("CoCa")
    for (section, key), allowed in _SUPPORTED_ONLY.items():
        value = cfg.get(section, {}).get(key)
        if value not in allowed and value != {}:
            unsupported.append(f"{section}.{key}={value!r}")
    image_size = _square(vision.get("image_size", 224), "image_size", unsupported)
    patch_size = _square(vision.get("patch_size", 16), "patch_size", unsupported)
    if unsupported:
        raise ModelLoadError("this open_clip model is not the standard CLIP architecture "
                             "that Vitrine converts to transformers' CLIP: it has "
                             + "; ".join(unsupported))
    act = "quick_gelu" if cfg.get("quick_gelu") else "gelu"  # the flag alone, as open_clip
    vocab_size = int(text.get("vocab_size", 49408))
    width, text_width = int(vision.get("width", 768)), int(text.get("width", 512))
    return CLIPConfig(
        projection_dim=int(cfg["embed_dim"]),
        vision_config={
            "hidden_size": width, "image_size": image_size, "patch_size": patch_size,
            "num_hidden_layers": int(vision.get("layers", 12)),
            "num_attention_heads": width // int(vision.get("head_width", 64)),
            "intermediate_size": int(width * float(vision.get("mlp_ratio", 4.0))),
            "hidden_act": act, "layer_norm_eps": _eps(vision)},
        text_config={
            "hidden_size": text_width, "vocab_size": vocab_size,
            "max_position_embeddings": int(text.get("context_length", 77)),
            "num_hidden_layers": int(text.get("layers", 12)),
            "num_attention_heads": int(text.get("heads", 8)),
            "intermediate_size": int(text_width * float(text.get("mlp_ratio", 4.0))),
            "hidden_act": act, "layer_norm_eps": _eps(text),
            # CLIP's BPE puts its two special tokens last; the text is pooled at the end one.
            "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1,
            "pad_token_id": vocab_size - 1})


def _square(value, what: str, unsupported: list[str]) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            unsupported.append(f"a non-square {what} {tuple(value)}")
            return 0
        value = value[0]
    return int(value)


def _eps(tower: dict) -> float:
    return float((tower.get("norm_kwargs") or {}).get("eps", 1e-5))


def preprocess_config(config: dict) -> dict:
    """open_clip's eval preprocessing settings: its defaults, the file's `preprocess_cfg`
    over them, and the size of the image tower (open_clip takes it from the model)."""
    given = {k: v for k, v in (config.get("preprocess_cfg") or {}).items() if v is not None}
    merged = {**PREPROCESS_DEFAULTS, **given}
    size = config["model_cfg"].get("vision_cfg", {}).get("image_size", 224)
    merged["size"] = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    for key in ("mean", "std"):
        value = merged[key]
        merged[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,) * 3
    return merged


def preprocessing(config: dict) -> Preprocessing:
    """open_clip's eval transform as a Preprocessing: `shortest` is a resize of the short
    side and a centre crop (with torchvision's rounding of the crop offset), `squash` a
    resize straight to the input size; `bilinear` or else bicubic resampling."""
    pp = preprocess_config(config)
    height, width = pp["size"]
    resample = (Image.Resampling.BILINEAR if pp["interpolation"] == "bilinear"
                else Image.Resampling.BICUBIC)  # as open_clip: "random" is bicubic at eval
    mean = np.asarray(pp["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pp["std"], np.float32).reshape(1, 3, 1, 1)
    if pp["resize_mode"] == "squash":
        return Preprocessing(resize_shortest=None, resize_to=(height, width), crop=None,
                             mean=mean, std=std, resample=int(resample))
    if pp["resize_mode"] != "shortest" or height != width:
        raise ModelLoadError(f"open_clip preprocessing resize_mode={pp['resize_mode']!r} at "
                             f"{height}x{width} is not supported: only 'shortest' (square) "
                             "and 'squash'")
    return Preprocessing(resize_shortest=height, resize_to=None, crop=(height, width),
                         mean=mean, std=std, resample=int(resample), round_crop=True)


def image_processor(config: dict) -> Any:
    """The transformers processor nearest to open_clip's transform, for saving the converted
    model in transformers' format. It floors a centre crop's offset where torchvision rounds
    it: one pixel apart when the long side is an odd number of pixels over the crop."""
    from transformers import CLIPImageProcessorPil

    pre = preprocessing(config)
    mean, std = pre.mean.ravel().tolist(), pre.std.ravel().tolist()
    if pre.resize_shortest:
        height, width = pre.crop or (pre.resize_shortest, pre.resize_shortest)
        return CLIPImageProcessorPil(size={"shortest_edge": pre.resize_shortest},
                                     crop_size={"height": height, "width": width},
                                     image_mean=mean, image_std=std, resample=pre.resample)
    height, width = pre.resize_to or (0, 0)
    return CLIPImageProcessorPil(size={"height": height, "width": width}, do_center_crop=False,
                                 image_mean=mean, image_std=std, resample=pre.resample)


def tokenizer(folder: Path, context_length: int) -> Any:
    """open_clip's default tokenizer is CLIP's BPE, which is transformers' CLIPTokenizer:
    read from the folder's tokenizer.json, or vocab.json and merges.txt; nothing downloaded."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        missing = [n for n in ("vocab.json", "merges.txt") if not (folder / n).is_file()]
        if missing:
            raise ModelLoadError(
                f"{folder} has no tokenizer for its open_clip model: it lacks "
                f"{' and '.join(missing)} (or tokenizer.json). The model uses open_clip's "
                "default tokenizer, CLIP's BPE: copy vocab.json and merges.txt from any "
                "CLIP model (e.g. openai/clip-vit-base-patch32) into the folder.")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=context_length)


def weights_file(folder: Path) -> Path:
    for name in WEIGHTS_NAMES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise ModelLoadError(f"{folder} has no open_clip weights: expected one of "
                         f"{', '.join(WEIGHTS_NAMES)} beside {CONFIG_NAME}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state: Any
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint
    return {k.removeprefix("module."): v for k, v in state.items()}


def _standard_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CustomTextCLIP keeps the text tower under `text.`; CLIP at the top level."""
    return {k.removeprefix("text."): v for k, v in state.items()}


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip CLIP tensors under transformers CLIPModel's names, as float32. Every
    tensor must find a place: one that doesn't is an architecture this does not know."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in _standard_keys(state).items():
        value = value.float()
        if key in _RENAMES:
            out[_RENAMES[key]] = value.reshape(()) if key == "logit_scale" else value
        elif key in _TRANSPOSED:
            out[_TRANSPOSED[key]] = value.t().contiguous()
        elif key in _IGNORED:
            continue
        elif not _map_block(key, value, out):
            unknown.append(key)
    if unknown:
        raise ModelLoadError(f"open_clip weights this conversion does not know: "
                             f"{', '.join(sorted(unknown)[:8])}"
                             + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""))
    return out


def _map_block(key: str, value: torch.Tensor, out: dict[str, torch.Tensor]) -> bool:
    for source, target in _TOWERS.items():
        if not key.startswith(source):
            continue
        index, _, rest = key.removeprefix(source).partition(".")
        prefix = f"{target}{index}."
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            kind = rest.rsplit("_", 1)[1]  # "weight" or "bias"
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3), strict=True):
                out[f"{prefix}self_attn.{name}.{kind}"] = part.contiguous()
            return True
        module, _, kind = rest.rpartition(".")
        if module in _BLOCK and kind in ("weight", "bias"):
            out[f"{prefix}{_BLOCK[module]}.{kind}"] = value
            return True
    return False


def convert(folder: Path, dtype: torch.dtype = torch.float32) -> OpenClipModel:
    """Load the open_clip model in `folder` as a transformers CLIPModel, its tokenizer and
    its preprocessing. Raises ModelLoadError naming what is missing or unsupported."""
    from transformers import CLIPModel

    folder = Path(folder)
    config = read_config(folder)
    hf_config = clip_config(config)
    preprocess = preprocessing(config)
    tok = tokenizer(folder, hf_config.text_config.max_position_embeddings)
    if tok.eos_token_id != hf_config.text_config.eos_token_id:
        raise ModelLoadError(f"{folder}'s tokenizer ends texts with token {tok.eos_token_id}, "
                             f"the model expects {hf_config.text_config.eos_token_id}")
    state = convert_state_dict(read_state_dict(weights_file(folder)))
    model: Any
    with _no_init():
        model = CLIPModel(hf_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing tensors or other shapes
        raise ModelLoadError(f"{folder}'s open_clip weights do not fit its "
                             f"{CONFIG_NAME}: {exc}") from exc
    return OpenClipModel(model.to(dtype).eval(), tok, preprocess, image_processor(config))


def _no_init():
    """Skip the random initialisation of weights that are overwritten at once (3.6 s of a
    ViT-B/16's load on 2 cores). It patches torch's init functions process-wide while the
    model is built, as transformers' own loading does."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # a transformers without it: initialise, only slower
        from contextlib import nullcontext

        return nullcontext()
    return no_init_weights()


def load(name: str | os.PathLike, dtype: torch.dtype = torch.float32) -> OpenClipModel:
    """`convert` on a folder or an `hf-hub:` id (downloaded as open_clip would)."""
    return convert(resolve(name), dtype)


def load_config(name: str | os.PathLike) -> Any:
    """The transformers CLIPConfig, from open_clip_config.json alone (no weights)."""
    return clip_config(read_config(resolve(name, weights=False)))
