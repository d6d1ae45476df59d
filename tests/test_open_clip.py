"""open_clip models load through Encoder as transformers CLIPs, and compute what open_clip does.

`tests/data/open_clip_tiny` is a tiny random open_clip CLIP in open_clip's published folder
format, with reference outputs open_clip itself computed from that folder
(`testkit/make_open_clip_fixture.py`, run in a venv with open_clip: it cannot be imported
here).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedding import openclip
from embedding.encoder import Encoder, ModelLoadError
from embedding.zeroshot import classify

FIXTURE = Path(__file__).parent / "data" / "open_clip_tiny"
COSINE = 0.9999  # the bar; the conversion reaches float32 rounding (1 - cos < 1e-6)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def images(reference) -> list[Image.Image]:
    return [Image.fromarray(reference[f"image_{i}"])
            for i in range(len(reference["image_embeddings"]))]


@pytest.fixture(scope="module")
def texts(reference) -> list[str]:
    return [str(t) for t in reference["texts"]]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    # The conversion is checked to 1e-6: the text tower as loaded, not its int8 default.
    return Encoder(model=str(FIXTURE), text_tower="float32")


def row_cosines(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    assert ours.shape == theirs.shape
    return (ours * theirs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))


def copy_fixture(tmp_path: Path, leave_out: tuple[str, ...] = (), **model_cfg) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for path in FIXTURE.iterdir():
        if path.name not in leave_out and path.name != "reference.npz":
            (folder / path.name).symlink_to(path)
    if model_cfg:
        config = json.loads((FIXTURE / "open_clip_config.json").read_text())
        config["model_cfg"].update(model_cfg)
        (folder / "open_clip_config.json").unlink()
        (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder


# -- what it is --------------------------------------------------------------------------------
def test_recognises_open_clip_names(tmp_path, tiny_clip_dir):
    assert openclip.is_open_clip(FIXTURE) and openclip.is_open_clip(f"local-dir:{FIXTURE}")
    assert openclip.is_open_clip("hf-hub:Marqo/marqo-fashionCLIP")  # decided without the hub
    assert not openclip.is_open_clip(tiny_clip_dir)  # a transformers folder
    assert not openclip.is_open_clip("patrickjohncyh/fashion-clip")
    assert not openclip.is_open_clip(tmp_path / "nothing-here")


def test_family_dim_and_context_come_from_the_config_without_the_weights():
    encoder = Encoder(model=str(FIXTURE))
    assert (encoder.family, encoder.dim, encoder.context_length) == ("clip", 32, 77)
    assert not encoder.loaded


def test_loads_as_an_ordinary_transformers_clip(encoder):
    from transformers import CLIPModel, CLIPTokenizer

    assert isinstance(encoder.model, CLIPModel) and isinstance(encoder.tokenizer, CLIPTokenizer)
    config = encoder.model.config
    assert config.vision_config.hidden_act == config.text_config.hidden_act == "gelu"
    assert config.vision_config.num_attention_heads == 2  # width 64 / head_width 32
    assert encoder.preprocess.resize_shortest == 32 and encoder.preprocess.crop == (32, 32)
    np.testing.assert_allclose(encoder.preprocess.mean.ravel(), [0.5, 0.45, 0.4])
    np.testing.assert_allclose(encoder.preprocess.std.ravel(), [0.25, 0.3, 0.35])


# -- the same numbers as open_clip -------------------------------------------------------------
def test_preprocessing_is_open_clips_bit_for_bit(encoder, images, reference):
    assert torch.equal(encoder.preprocess(images), torch.from_numpy(reference["pixels"]))
    # The fixture's 32x35 and 39x32 photos are where torchvision's rounded crop offset and
    # Hugging Face's floored one part.
    floored = dataclasses.replace(encoder.preprocess, round_crop=False)
    assert not torch.equal(floored(images), torch.from_numpy(reference["pixels"]))


def test_the_nearest_transformers_processor_parts_only_on_odd_crop_offsets(encoder, images,
                                                                         reference):
    pixels = encoder.image_processor(images=images, return_tensors="pt")["pixel_values"]
    same = [bool(torch.equal(ours, theirs))
            for ours, theirs in zip(pixels, torch.from_numpy(reference["pixels"]), strict=True)]
    assert [im.size for im, s in zip(images, same, strict=True) if not s] == [(32, 35), (39, 32)]


def test_squash_and_bilinear_preprocessing(images, reference):
    config = openclip.read_config(FIXTURE)
    config["preprocess_cfg"].update(resize_mode="squash", interpolation="bilinear")
    preprocess = openclip.preprocessing(config)
    assert preprocess.resize_to == (32, 32) and preprocess.crop is None
    assert torch.equal(preprocess(images), torch.from_numpy(reference["pixels_squash_bilinear"]))


def test_tokens_are_open_clips(encoder, texts, reference):
    """open_clip pads with 0 after the end token; compare up to and including it."""
    ids = encoder.tokenizer(texts, truncation=True, max_length=77)["input_ids"]
    for text, ours, theirs in zip(texts, ids, reference["tokens"], strict=True):
        end = int(theirs.argmax())  # the end-of-text token has the highest id
        assert ours == theirs[:end + 1].tolist(), text


def test_image_embeddings_match_open_clip(encoder, images, reference):
    cosines = row_cosines(encoder.encode_images(images, batch_size=4),
                          reference["image_embeddings"])
    assert cosines.min() >= COSINE and cosines.min() > 1 - 1e-6, cosines


def test_text_embeddings_match_open_clip(encoder, texts, reference):
    cosines = row_cosines(encoder.encode_texts(texts, batch_size=4),
                          reference["text_embeddings"])
    assert cosines.min() >= COSINE and cosines.min() > 1 - 1e-6, cosines


def test_the_references_tell_rows_apart(reference):
    """A conversion that lost the input could not reach the bar: different rows are far
    further apart than 1 - COSINE."""
    for key in ("image_embeddings", "text_embeddings"):
        e = reference[key]
        cosines = e @ e.T
        np.fill_diagonal(cosines, -1)
        assert cosines.max() < 0.99, key


def test_quick_gelu_follows_the_config_flag(tmp_path, images, texts, reference):
    """The same weights with `quick_gelu: true`. QuickGELU and GELU differ little in a tiny
    random model (1 - cos 4e-6 to 3e-5), so this compares at float32 precision."""
    encoder = Encoder(model=str(copy_fixture(tmp_path, quick_gelu=True)), text_tower="float32")
    assert encoder.model.config.text_config.hidden_act == "quick_gelu"
    for ours, key in ((encoder.encode_images(images), "image_embeddings"),
                      (encoder.encode_texts(texts), "text_embeddings")):
        assert row_cosines(ours, reference[f"quick_gelu_{key}"]).min() > 1 - 1e-6, key
        assert row_cosines(ours, reference[key]).min() < 1 - 1e-6, key


def test_zero_shot_ranks_as_open_clip(encoder, images, reference):
    labels, templates = list(reference["labels"]), list(reference["templates"])
    assert encoder.logit_scale == pytest.approx(float(reference["logit_scale"]), rel=1e-6)
    probs = classify(encoder, encoder.encode_images(images), labels, templates)
    np.testing.assert_allclose(probs, reference["zeroshot_probs"], atol=1e-5)
    assert (probs.argsort(1) == reference["zeroshot_probs"].argsort(1)).all()


def test_bfloat16_stays_close(images, reference):
    half = Encoder(model=str(FIXTURE), dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert row_cosines(half.encode_images(images), reference["image_embeddings"]).min() > 0.99


def test_saved_in_transformers_format_it_loads_as_any_clip(tmp_path, encoder, texts,
                                                           reference):
    """What training and everything else reading a transformers folder can be given."""
    folder = tmp_path / "converted"
    for part in (encoder.model, encoder.tokenizer, encoder.image_processor):
        part.save_pretrained(folder)
    saved = Encoder(model=str(folder), text_tower="float32")
    assert not openclip.is_open_clip(folder) and (saved.family, saved.dim) == ("clip", 32)
    assert row_cosines(saved.encode_texts(texts), reference["text_embeddings"]).min() >= COSINE


# -- the hub -----------------------------------------------------------------------------------
def test_hub_id_resolves_through_snapshot_download(monkeypatch, images, reference):
    """`hf-hub:org/name` is downloaded as a hub snapshot and then takes the folder's path;
    the download is replaced by the fixture folder (no network here)."""
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs.get("allow_patterns")))
        return str(FIXTURE)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    encoder = Encoder(model="hf-hub:Marqo/marqo-fashionCLIP")
    assert encoder.dim == 32 and not encoder.loaded  # the config alone: no weights asked
    assert calls == [("Marqo/marqo-fashionCLIP", [openclip.CONFIG_NAME,
                                                  *openclip.TOKENIZER_NAMES])]
    vectors = encoder.encode_images(images)
    assert row_cosines(vectors, reference["image_embeddings"]).min() >= COSINE
    assert encoder.model_id == "hf-hub:Marqo/marqo-fashionCLIP"
    assert {repo for repo, _ in calls} == {"Marqo/marqo-fashionCLIP"}


def test_hub_fetches_one_weights_file_when_the_snapshot_has_none(monkeypatch, tmp_path):
    import huggingface_hub

    small = copy_fixture(tmp_path, leave_out=("open_clip_model.safetensors",))
    asked = []

    def snapshot_download(repo_id, allow_patterns):
        asked.append(allow_patterns)
        return str(FIXTURE if "open_clip_model.safetensors" in allow_patterns else small)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert openclip.resolve("hf-hub:org/name") == FIXTURE
    assert asked[1] == [openclip.CONFIG_NAME, *openclip.TOKENIZER_NAMES,
                        "open_clip_model.safetensors"]


def test_hub_failure_says_how_to_set_vitrine_model(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(repo_id, **kwargs):
        raise LocalEntryNotFoundError("cannot reach the hub and nothing is cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    for use in (Encoder.load, lambda e: e.dim):
        with pytest.raises(ModelLoadError) as caught:
            use(Encoder(model="hf-hub:Marqo/marqo-fashionCLIP"))
        message = str(caught.value)
        assert "hf-hub:Marqo/marqo-fashionCLIP" in message
        assert "Set VITRINE_MODEL to a local folder" in message and "open_clip" in message


# -- what it refuses ---------------------------------------------------------------------------
@pytest.mark.parametrize("leave_out, named", [
    (("open_clip_model.safetensors",), "open_clip_model.safetensors"),
    (("vocab.json",), "vocab.json"),
    (("vocab.json", "merges.txt"), "vocab.json and merges.txt"),
])
def test_a_folder_missing_files_says_which(tmp_path, leave_out, named):
    with pytest.raises(ModelLoadError, match=named):
        Encoder(model=str(copy_fixture(tmp_path, leave_out))).load()


@pytest.mark.parametrize("change, named", [
    ({"vision_cfg": {"timm_model_name": "vit_base_patch16_siglip_224", "image_size": 224}},
     "timm image tower"),
    ({"text_cfg": {"hf_model_name": "xlm-roberta-base"}}, "Hugging Face text tower"),
    ({"vision_cfg": {"layers": [3, 4, 6, 3], "width": 64}}, "ResNet"),
    ({"vision_cfg": {**json.loads((FIXTURE / "open_clip_config.json").read_text())
                     ["model_cfg"]["vision_cfg"], "ls_init_value": 1e-5}},
     "ls_init_value"),
])
def test_other_architectures_are_refused_by_name(tmp_path, change, named):
    encoder = Encoder(model=str(copy_fixture(tmp_path, **change)))
    for use in (Encoder.load, lambda e: e.dim):
        with pytest.raises(ModelLoadError, match=named) as caught:
            use(encoder)
        assert "not the standard CLIP architecture" in str(caught.value)


def test_weights_the_conversion_does_not_know_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(FIXTURE / "open_clip_model.safetensors"))
    state["visual.transformer.resblocks.0.ls_1.gamma"] = torch.ones(64)
    folder = copy_fixture(tmp_path, leave_out=("open_clip_model.safetensors",))
    save_file(state, str(folder / "open_clip_model.safetensors"))
    with pytest.raises(ModelLoadError, match="ls_1.gamma"):
        Encoder(model=str(folder)).load()


def test_longest_resize_mode_is_refused():
    config = openclip.read_config(FIXTURE)
    config["preprocess_cfg"]["resize_mode"] = "longest"
    with pytest.raises(ModelLoadError, match="longest"):
        openclip.preprocessing(config)
