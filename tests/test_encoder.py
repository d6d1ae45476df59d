"""The encoder on tiny random CLIP and SigLIP models saved to disk and loaded back."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedding.architecture import Architecture
from embedding.encoder import Encoder, ModelLoadError, Preprocessing, combine
from testkit.models import CORPUS, make_random_model

FAMILIES = ("clip", "siglip")
# Odd sizes, both orientations, extreme aspect ratios, smaller than the model's input, and
# 640x479, whose short side came out one pixel short when both sides were scaled by a float.
ODD_SIZES = [(37, 91), (91, 37), (33, 33), (31, 32), (101, 57), (7, 300), (300, 1), (1, 1),
             (640, 479), (479, 640), (801, 599), (1001, 223)]
TEXTS = ["red", "a red dress with white dots and long sleeves", "Kleid mit Punkten",
         "blue striped shirt for men", "green jacket"]


def noise_images(sizes, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


@pytest.fixture(scope="module", params=FAMILIES)
def family_dir(request) -> tuple[str, Path]:
    name = "tiny_clip_dir" if request.param == "clip" else "tiny_siglip_dir"
    return request.param, request.getfixturevalue(name)


@pytest.fixture(scope="module")
def encoder(family_dir) -> Encoder:
    return Encoder(model=str(family_dir[1]))


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The names AutoModel.from_pretrained is asked for (each one a load of the weights)."""
    from transformers import AutoModel

    asked = []
    original = AutoModel.from_pretrained.__func__

    def spy(cls, name, *args, **kwargs):
        asked.append(name)
        return original(cls, name, *args, **kwargs)

    monkeypatch.setattr(AutoModel, "from_pretrained", classmethod(spy))
    return asked


def test_loads_from_a_folder_through_from_pretrained(family_dir, loads):
    family, folder = family_dir
    encoder = Encoder(model=str(folder)).load()
    assert loads == [str(folder)]  # the very call a hub id goes through
    assert encoder.family == family and encoder.model_id == str(folder)
    image_size = encoder.model.config.vision_config.image_size
    assert encoder.preprocess(noise_images([(50, 70)])).shape == (1, 3, image_size, image_size)
    assert Encoder(str(folder)).model_id == str(folder)  # a hub id or folder, positionally


def test_building_loads_nothing_and_first_use_loads(family_dir, loads):
    encoder = Encoder(model=str(family_dir[1]))
    assert loads == [] and not encoder.loaded and encoder._model is None
    assert encoder.encode_texts(["dress"]).shape == (1, encoder.dim)  # no load() called
    assert loads == [str(family_dir[1])] and encoder.loaded


def test_load_is_idempotent_and_returns_the_encoder(family_dir, loads):
    encoder = Encoder(model=str(family_dir[1]))
    assert encoder.load() is encoder
    model = encoder.model
    assert encoder.load() is encoder and encoder.model is model
    assert loads == [str(family_dir[1])]


def test_threads_using_a_fresh_encoder_load_it_once(family_dir, loads):
    encoder = Encoder(model=str(family_dir[1]))
    start = threading.Barrier(4)

    def first_use(i: int) -> np.ndarray:
        start.wait()
        if i % 2:
            return encoder.encode_texts(["red dress"])
        return encoder.encode_images(noise_images([(40, 30)]))

    with ThreadPoolExecutor(4) as pool:
        vectors = list(pool.map(first_use, range(4)))
    assert loads == [str(family_dir[1])]
    assert all(v.shape == (1, encoder.dim) for v in vectors)


@pytest.mark.parametrize("family", FAMILIES)
def test_vector_size_comes_from_the_config_without_the_weights(tmp_path, family, loads):
    arch = dataclasses.replace(Architecture.tiny(family), embed_dim=24)
    encoder = Encoder(model=str(make_random_model(tmp_path / family, arch, CORPUS)))
    assert encoder.dim == 24 and encoder.family == family
    assert not encoder.loaded and encoder._model is None and loads == []
    assert encoder.encode_images(noise_images([(40, 30)])).shape == (1, 24)
    assert encoder.encode_texts(["dress"]).shape == (1, 24)
    assert encoder.loaded and encoder.dim == 24


def test_vectors_are_float32_and_unit_norm(encoder):
    for vectors in (encoder.encode_images(noise_images(ODD_SIZES[:5])),
                    encoder.encode_texts(TEXTS)):
        assert vectors.dtype == np.float32 and vectors.shape[1] == encoder.dim
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_images([]).shape == (0, encoder.dim)


def test_batched_equals_one_by_one(encoder):
    images = noise_images(ODD_SIZES, seed=1)
    batched = encoder.encode_images(images, batch_size=5)  # uneven last batch
    single = np.concatenate([encoder.encode_images([im]) for im in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    # Texts of different lengths: padding in a batch must not change a text's vector.
    batched = encoder.encode_texts(TEXTS, batch_size=3)
    single = np.concatenate([encoder.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5)


@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_preprocessing_equals_the_hf_image_processor(encoder, size):
    [image] = noise_images([size], seed=size[0] * 7919 + size[1])
    ours = encoder.preprocess([image])
    theirs = encoder.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    assert ours.dtype == theirs.dtype == torch.float32
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs), float((ours - theirs).abs().max())


def test_preprocessing_at_vit_b32_input_size():
    """The same exactness at 224 px, for both families (processors only: no weights)."""
    from transformers import CLIPImageProcessorPil, SiglipImageProcessorPil

    processors = [CLIPImageProcessorPil(size={"shortest_edge": 224},
                                        crop_size={"height": 224, "width": 224}),
                  SiglipImageProcessorPil(size={"height": 224, "width": 224})]
    # At 224 about one short side in twelve (299, 332, ...) came out 223 px: a black row.
    images = noise_images([(299, 400), (600, 332), (640, 479), (600, 800), (225, 1000),
                           (223, 223), (97, 31)], seed=3)
    for processor in processors:
        ours = Preprocessing.from_processor(processor)(images)
        theirs = processor(images=images, return_tensors="pt")["pixel_values"]
        assert torch.equal(ours, theirs), type(processor).__name__


# -- combine -----------------------------------------------------------------------------------
def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_combine_weights(encoder):
    text = encoder.encode_texts(["a red dress"])[0]
    image = encoder.encode_images(noise_images([(60, 80)]))[0]
    np.testing.assert_allclose(combine(text, image, alpha=0.0), text, atol=1e-6)
    np.testing.assert_allclose(combine(text, image, alpha=1.0), image, atol=1e-6)
    np.testing.assert_allclose(combine(text=text), text, atol=1e-6)
    np.testing.assert_allclose(combine(image=image), image, atol=1e-6)
    previous = None
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        query = combine(text, image, alpha)
        assert query.dtype == np.float32
        assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
        towards_image = cosine(query, image) - cosine(query, text)
        if previous is not None:  # more alpha, more image
            assert towards_image > previous
        previous = towards_image


def test_combine_negative_text_lowers_similarity_to_it(encoder):
    text, negative = encoder.encode_texts(["a dress", "red"])
    image = encoder.encode_images(noise_images([(60, 80)]))[0]
    for query_text, query_image in ((text, None), (text, image), (None, image)):
        plain = combine(query_text, query_image, 0.5)
        less = combine(query_text, query_image, 0.5, negative=negative, negative_weight=0.5)
        more_less = combine(query_text, query_image, 0.5, negative=negative, negative_weight=1.0)
        assert abs(float(np.linalg.norm(less)) - 1.0) < 1e-5
        assert cosine(more_less, negative) < cosine(less, negative) < cosine(plain, negative)


@pytest.mark.parametrize("alpha", [-0.01, 1.01, -1.0, 2.0])
def test_combine_alpha_out_of_range_raises(alpha):
    vector = np.ones(4, np.float32) / 2
    with pytest.raises(ValueError, match="alpha"):
        combine(vector, vector, alpha)


def test_combine_needs_something():
    with pytest.raises(ValueError, match="text, an image"):
        combine()


# -- dtype -------------------------------------------------------------------------------------
def test_bfloat16_loads_and_stays_close_to_float32(family_dir, encoder):
    half = Encoder(model=str(family_dir[1]), dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    images = noise_images(ODD_SIZES[:6], seed=5)
    for fast, full in ((half.encode_images(images), encoder.encode_images(images)),
                       (half.encode_texts(TEXTS), encoder.encode_texts(TEXTS))):
        assert fast.dtype == np.float32  # vectors leave the encoder as float32 whatever ran
        np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
        assert (fast * full).sum(axis=1).min() > 0.99


# -- a model that is not there -----------------------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_missing_model_folder_says_how_to_set_vitrine_model(tmp_path, offline, kind):
    folder = tmp_path / "models" / "fashion"
    if kind == "empty":
        folder.mkdir(parents=True)
    encoder = Encoder(model=str(folder))  # building it does not look yet
    for use in (Encoder.load, lambda e: e.dim):
        with pytest.raises(ModelLoadError) as caught:
            use(encoder)
        message = str(caught.value)
        assert str(folder) in message and "Set VITRINE_MODEL to a local folder" in message


@pytest.mark.slow  # a fresh Python process importing torch
def test_serve_with_a_missing_model_exits_at_once_with_the_message(tmp_path):
    missing = tmp_path / "no-such-model"
    env = {**os.environ, "VITRINE_MODEL": str(missing), "HF_HUB_OFFLINE": "1",
           "VITRINE_DATA_DIR": str(tmp_path / "data"), "VITRINE_PORT": "0"}
    vitrine = Path(sys.executable).parent / "vitrine"
    done = subprocess.run([str(vitrine), "serve", "--host", "127.0.0.1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Set VITRINE_MODEL" in done.stderr and str(missing) in done.stderr
    assert "Vitrine on http" not in done.stdout  # it never got as far as serving


# -- process-wide threads ----------------------------------------------------------------------
@pytest.mark.slow  # a fresh Python process importing torch
def test_only_configure_threads_changes_the_blas_threads(tiny_clip_dir):
    """In a fresh process, as these settings are the process's: an Encoder, loaded and used,
    leaves the BLAS pool alone; configure_threads() holds it to one thread, and a second
    call does nothing."""
    code = f"""
from threadpoolctl import threadpool_info, threadpool_limits
from embedding.encoder import Encoder
from embedding.runtime import configure_threads

def blas():
    return {{i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}}

threadpool_limits(3, user_api="blas")
Encoder(model={str(tiny_clip_dir)!r}).load().encode_texts(["red"])
assert blas() == {{3}}, blas()
configure_threads()
assert blas() == {{1}}, blas()
threadpool_limits(2, user_api="blas")
configure_threads()
assert blas() == {{2}}, blas()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
