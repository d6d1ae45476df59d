"""VITRINE_TEXT_TOWER: every way of running the query text tower stays within cosine 0.995
of float32 on the tiny models, and the setting reaches the encoder."""

from __future__ import annotations

import numpy as np
import pytest

from embedding.encoder import Encoder
from embedding.fast_text import TEXT_TOWERS
from embedding.settings import EmbeddingSettings
from testkit.models import CORPUS

BOUND = 0.995
TEXTS = sorted(set(CORPUS)) + [
    "red", "a red dress with white dots and long sleeves", "blue striped shirt for men",
    "white sneakers and a green jacket with black trousers", "Kleid"]
FAST = [k for k in TEXT_TOWERS if k != "float32"]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def model_dir(family, tiny_clip_dir, tiny_siglip_dir):
    return {"clip": tiny_clip_dir, "siglip": tiny_siglip_dir}[family]


@pytest.fixture(scope="module")
def reference(model_dir) -> np.ndarray:
    return Encoder(model=str(model_dir), text_tower="float32").encode_texts(TEXTS)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k == "compile"
                                  else k for k in FAST])  # compile: a while, even tiny
def test_each_text_tower_stays_within_the_bound_of_float32(family, model_dir, reference, kind,
                                                          request):
    if kind == "int8" and family == "clip":
        # torch's int8 scales each layer's activations by one number: on the 32-wide tiny
        # CLIP that reached cosine 0.992 (README says so of `int8`). ONNX Runtime's int8
        # keeps the bound on every model measured: it is the one VITRINE_TEXT_TOWER
        # defaults to. Strict: should torch's int8 start keeping the bound, this says so.
        request.applymarker(pytest.mark.xfail(reason="torch int8 reaches 0.992 on the tiny "
                                              "CLIP", strict=True))
    encoder = Encoder(model=str(model_dir), text_tower=kind)
    assert encoder.text_tower == kind
    fast = encoder.encode_texts(TEXTS, batch_size=4)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cos = (fast * reference).sum(axis=1)
    assert cos.min() >= BOUND, (kind, cos.min())


@pytest.mark.parametrize("kind", [k for k in FAST if k != "compile"])
def test_the_configured_tower_answers_not_the_models_own(model_dir, kind, monkeypatch):
    """Text vectors come from the variant: the model's own text path is never called."""
    encoder = Encoder(model=str(model_dir), text_tower=kind).load()

    def refuse(*args, **kwargs):
        raise AssertionError("get_text_features ran: the setting did not reach the encoder")

    monkeypatch.setattr(encoder.model, "get_text_features", refuse)
    assert encoder.encode_texts(TEXTS[:3]).shape == (3, encoder.dim)
    images_still_work = encoder.encode_pixels(encoder.preprocess([_grey()]))
    assert images_still_work.shape == (1, encoder.dim)


@pytest.mark.parametrize("kind", ["int8", "onnx-int8"])
def test_quantised_towers_change_the_vectors_and_read_the_environment(tiny_clip_dir, reference,
                                                                      kind, monkeypatch):
    monkeypatch.setenv("VITRINE_TEXT_TOWER", kind)
    encoder = Encoder(EmbeddingSettings(model=str(tiny_clip_dir)))
    assert encoder.text_tower == kind
    fast = encoder.encode_texts(TEXTS)
    full = Encoder(model=str(tiny_clip_dir), text_tower="float32").encode_texts(TEXTS)
    assert np.abs(fast - full).max() > 1e-4  # int8 weights: not float32's vectors


@pytest.mark.parametrize("kind", ["int8", "onnx-int8"])
def test_a_texts_vector_does_not_depend_on_its_batch(model_dir, kind):
    """Dynamic quantisation scales by the whole pass: each text runs alone."""
    encoder = Encoder(model=str(model_dir), text_tower=kind)
    batched = encoder.encode_texts(TEXTS, batch_size=7)
    single = np.concatenate([encoder.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_the_image_tower_is_untouched(tiny_clip_dir):
    images = [_grey()]
    full = Encoder(model=str(tiny_clip_dir), text_tower="float32").encode_images(images)
    for kind in ("int8", "onnx-int8", "bfloat16"):
        fast = Encoder(model=str(tiny_clip_dir), text_tower=kind).encode_images(images)
        np.testing.assert_array_equal(fast, full)


def test_outside_float32_on_the_cpu_the_tower_runs_as_loaded(tiny_clip_dir):
    encoder = Encoder(model=str(tiny_clip_dir), text_tower="onnx-int8", dtype="bfloat16")
    assert encoder.text_tower == "float32"


def test_an_unknown_text_tower_is_refused():
    with pytest.raises(ValueError):
        EmbeddingSettings(text_tower="int4")


def _grey():
    from PIL import Image

    return Image.new("RGB", (40, 40), (128, 128, 128))


def test_weights_are_7_bit_only_where_the_cpu_lacks_vnni(tiny_clip_dir, tmp_path):
    import onnx
    from onnx import numpy_helper
    from transformers import CLIPModel

    from embedding import fast_text

    (tmp_path / "vnni").write_text("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    (tmp_path / "avx2").write_text("flags\t\t: fpu sse avx2\n")
    assert fast_text.has_vnni(tmp_path / "vnni")
    assert not fast_text.has_vnni(tmp_path / "avx2")
    assert not fast_text.has_vnni(tmp_path / "no-such-file")

    tower = fast_text.TextTower(CLIPModel.from_pretrained(tiny_clip_dir)).eval()
    graph = fast_text.export_onnx(tower, tmp_path / "float32.onnx")

    def widest_weight(reduce_range: bool) -> int:
        path = fast_text.quantise_onnx(graph, tmp_path / f"{reduce_range}.onnx", reduce_range)
        weights = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
                   if t.data_type == onnx.TensorProto.INT8]
        assert weights
        return max(int(abs(w.astype(int)).max()) for w in weights)

    assert widest_weight(reduce_range=True) <= 64 < widest_weight(reduce_range=False)
