"""Losses, captions, split, zero-shot and a short training run on a tiny catalogue."""

import json
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from catalogue.captions import (
    Caption,
    article_name,
    attribute_query,
    captions_for,
    labelled_captions,
    visible_attributes,
)
from catalogue.styles import read_styles
from demo.generator import MORE_PHOTOS, generate
from embedding.architecture import Architecture
from embedding.encoder import Encoder, Preprocessing
from embedding.losses import ContrastiveHead, info_nce_loss, sigmoid_loss
from embedding.zeroshot import class_embeddings, classify
from testkit.models import make_random_model
from training.config import TrainConfig
from training.data import PhotoCache, TrainingSet, positives_mask, split_products
from training.loop import train


def unit(x):
    return torch.nn.functional.normalize(x, dim=-1)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("tiny"), n_products=60, image_size=32,
                    n_prohibited=4, progress=False)


@pytest.fixture(scope="module")
def trained(catalogue, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    # Tiny models sit on the log(batch) plateau for a while before they learn; a high
    # learning rate and a small batch get them past it within seconds.
    config = TrainConfig(epochs=30, batch_size=8, lr=3e-3, warmup=0.05, val_fraction=0.2,
                         progress=False)
    return train(None, catalogue, out, config, Architecture.tiny())


# ------------------------------------------------------------------ losses


@pytest.mark.parametrize("loss", ["infonce", "sigmoid"])
def test_aligned_pairs_cost_less_than_random_ones(loss):
    torch.manual_seed(0)
    images = unit(torch.randn(16, 8))
    aligned, shuffled = images.clone(), unit(torch.randn(16, 8))
    scale, bias = torch.tensor(10.0), torch.tensor(-5.0)
    if loss == "infonce":
        good, bad = info_nce_loss(images, aligned, scale), info_nce_loss(images, shuffled, scale)
    else:
        good = sigmoid_loss(images, aligned, scale, bias)
        bad = sigmoid_loss(images, shuffled, scale, bias)
    assert good < bad


def test_info_nce_of_uniform_logits_is_log_batch():
    same = unit(torch.ones(8, 4))
    assert info_nce_loss(same, same, torch.tensor(1.0)).item() == pytest.approx(math.log(8))


def test_sigmoid_loss_matches_the_paper_formula():
    torch.manual_seed(1)
    x, y = unit(torch.randn(4, 3)), unit(torch.randn(4, 3))
    t, b = torch.tensor(10.0), torch.tensor(-10.0)
    z = 2 * torch.eye(4) - 1
    expected = -torch.nn.functional.logsigmoid(z * (t * x @ y.T + b)).sum() / 4
    assert sigmoid_loss(x, y, t, b).item() == pytest.approx(expected.item())


def test_positives_mask_treats_duplicate_captions_as_matches():
    torch.manual_seed(2)
    images = unit(torch.randn(4, 8))
    images[1] = images[0]  # two products that look alike ...
    texts = images.clone()  # ... and share a caption
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).bool()
    scale = torch.tensor(20.0)
    # Sigmoid: without the mask the duplicate pair is pushed apart as negatives.
    bias = torch.tensor(-10.0)
    assert sigmoid_loss(images, texts, scale, bias, mask) < sigmoid_loss(images, texts, scale,
                                                                         bias) - 1
    # InfoNCE: the mask is a proper soft target (over identical columns it changes nothing).
    same = info_nce_loss(images, texts, scale, mask)
    assert same.item() == pytest.approx(info_nce_loss(images, texts, scale).item(), abs=1e-5)


@pytest.mark.parametrize("loss", ["infonce", "sigmoid"])
@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_gradients_reach_the_towers_and_the_logit_parameters(loss, family, tmp_path):
    from transformers import AutoModel

    folder = make_random_model(tmp_path / family, Architecture.tiny(family),
                               ["a red dress", "blue jeans"] * 20)
    model = AutoModel.from_pretrained(folder)
    head = ContrastiveHead(model, loss, fresh=True)
    if loss == "sigmoid":  # the SigLIP paper's start: t = 10, b = -10
        assert head.extra_state() == pytest.approx({"logit_scale": 10.0, "logit_bias": -10.0})
    pixels = torch.randn(4, 3, 32, 32)
    ids = torch.tensor([[2, 5, 6, 3]] * 4)
    image = unit(model.get_image_features(pixel_values=pixels).pooler_output)
    text = unit(model.get_text_features(input_ids=ids).pooler_output)
    head(image, text).backward()
    vision = next(p for n, p in model.named_parameters() if n.startswith("vision_model."))
    textual = next(p for n, p in model.named_parameters() if n.startswith("text_model."))
    assert vision.grad is not None and vision.grad.abs().sum() > 0
    assert textual.grad is not None and textual.grad.abs().sum() > 0
    assert model.logit_scale.grad is not None
    if loss == "sigmoid":
        assert head.bias.grad is not None


# ------------------------------------------------------------------ captions


def test_article_names_are_natural_singulars():
    assert article_name("Tshirts") == "t-shirt"
    assert article_name("Casual Shoes") == "shoes"
    assert article_name("Sports Shoes") == "sneakers"
    assert article_name("Handbags") == "bag"
    assert article_name("Caps") == "cap"
    assert article_name("Dresses") == "dress"
    assert article_name("Watches") == "watch"


def test_attribute_queries_in_both_languages():
    assert attribute_query("Red", "Dresses") == "a red dress"
    assert attribute_query("Orange", "Handbags") == "an orange bag"
    assert attribute_query("Blue", "Jeans") == "blue jeans"
    assert attribute_query("Red", "Dresses", "de") == "ein rotes Kleid"
    assert attribute_query("Black", "Trousers", "de") == "eine schwarze Hose"
    assert attribute_query("Pink", "Skirts", "de") == "ein rosa Rock"
    assert attribute_query("White", "Casual Shoes", "de") == "weiße Schuhe"


def test_captions_cover_attributes_and_descriptions(catalogue):
    row = next(r for r in read_styles(catalogue) if not r["moderation"])
    english = captions_for(row, ("en",), random.Random(0))
    both = captions_for(row, ("en", "de"), random.Random(0))
    colour, noun = row["baseColour"].lower(), article_name(row["articleType"])
    assert row["description"] in english and row["description_de"] not in english
    assert row["description_de"] in both
    assert any(colour in c and noun in c for c in english)
    assert len(both) > len(english)


def test_captions_state_only_what_they_say():
    row = {"articleType": "Dresses", "baseColour": "Red", "pattern": "striped",
           "gender": "Women", "productDisplayName": "Kestrel Women Red Striped Dress",
           "description": "A striped red dress for women.", "description_de": "", "moderation": ""}
    by_text = {c.text: c.attributes for c in labelled_captions(row, ("en",), random.Random(0))}
    assert by_text["a red dress"] == {("articleType", "Dresses"), ("baseColour", "Red")}
    assert by_text["a photo of a dress"] == {("articleType", "Dresses")}
    assert by_text["A striped red dress for women."] == visible_attributes(row)


def test_a_caption_is_positive_for_every_product_it_describes():
    red_plain = frozenset({("articleType", "Dresses"), ("baseColour", "Red"), ("pattern", "plain")})
    red_striped = red_plain - {("pattern", "plain")} | {("pattern", "striped")}
    blue = frozenset({("articleType", "Dresses"), ("baseColour", "Blue"), ("pattern", "plain")})
    captions = [Caption("a red dress", frozenset({("articleType", "Dresses"),
                                                  ("baseColour", "Red")})),
                Caption("a striped red dress", red_striped),
                Caption("a blue dress", blue - {("pattern", "plain")})]
    mask = positives_mask(captions, [red_plain, red_striped, blue])
    assert mask.tolist() == [[True, True, False], [False, True, False], [False, False, True]]
    free = [Caption("same words", None), Caption("Same words", None), Caption("other", None)]
    assert positives_mask(free, [red_plain] * 3).tolist() == [
        [True, True, False], [True, True, False], [False, False, True]]


# ------------------------------------------------------------------ split


def test_split_is_by_product_deterministic_and_skips_moderation(catalogue):
    rows = read_styles(catalogue)
    a, b = split_products(rows, 0.25, seed=3), split_products(rows, 0.25, seed=3)
    assert a == b
    assert not set(a.train) & set(a.validation)
    flagged = {r["id"] for r in rows if r["moderation"]}
    assert set(a.excluded) == flagged and not flagged & (set(a.train) | set(a.validation))
    assert len(a.validation) == 15 and len(a.train) == 45
    assert split_products(rows, 0.25, seed=4).validation != a.validation



# ------------------------------------------------------------------ training


def test_a_batch_shows_each_product_in_one_of_its_own_photos(catalogue):
    data = TrainingSet.from_csv(catalogue)
    rows = data.products[:6]
    prep = Preprocessing(resize_shortest=32, resize_to=None, crop=(32, 32),
                         mean=np.zeros((1, 3, 1, 1), np.float32),
                         std=np.ones((1, 3, 1, 1), np.float32), resample=Image.BICUBIC)
    cache = PhotoCache.load(data, rows, prep)
    views = 1 + MORE_PHOTOS
    assert cache.photos.shape[:2] == (views, 6) and cache.count.tolist() == [views] * 6
    own = [{cache.photos[v, i].numpy().tobytes() for v in range(views)} for i in range(6)]
    assert all(len(photos) == views for photos in own)  # different photos a product
    gen, index = torch.Generator().manual_seed(0), torch.arange(6)
    shown: list[set[bytes]] = [set() for _ in range(6)]
    for _ in range(80):
        for i, photo in enumerate(cache.pick(index, gen)):
            shown[i].add(photo.numpy().tobytes())
    assert shown == own  # only the product's own photos, and all of them in time
    # a cache of the main photos only (the held-out loss) shows those
    main = PhotoCache.load(data, rows, prep, more=False)
    assert torch.equal(main.pick(index, gen), cache.photos[0])


@pytest.mark.slow  # trains a model
def test_training_loss_falls_and_the_model_loads(trained, catalogue):
    assert trained.train_losses[-1] < 0.7 * trained.train_losses[0]
    assert trained.train_losses[-1] < math.log(8)  # below chance: it learnt something
    record = json.loads((trained.out_dir / "training.json").read_text())
    assert record["peak_rss_mb"] > 0 and record["train_seconds"] > 0
    assert len(record["train_losses"]) == record["epochs"] == 30
    split = json.loads((trained.out_dir / "split.json").read_text())
    assert len(split["validation"]) == 12

    encoder = Encoder(model=str(trained.out_dir))
    texts = encoder.encode_texts(["a red dress", "ein rotes Kleid"])
    assert texts.shape == (2, 16) and np.allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    from PIL import Image

    image = Image.open(catalogue.parent / "images" / f"{split['validation'][0]}.jpg")
    assert encoder.encode_images([image]).shape == (1, 16)


@pytest.mark.slow  # trains a model
def test_fine_tuning_reuses_the_base_split_and_freezes(trained, catalogue, tmp_path):
    config = TrainConfig(epochs=1, batch_size=8, freeze="vision", languages=("de",),
                         val_fraction=0.5, seed=9, progress=False)
    result = train(str(trained.out_dir), catalogue, tmp_path / "ft", config)
    base = json.loads((trained.out_dir / "split.json").read_text())
    tuned = json.loads((tmp_path / "ft" / "split.json").read_text())
    assert tuned["validation"] == base["validation"]  # not the 50 % a fresh split would take
    assert result.steps == 48 // 8
    before = Encoder(model=str(trained.out_dir)).model.vision_model
    after = Encoder(model=str(tmp_path / "ft")).model.vision_model
    assert all(torch.equal(p, q) for p, q in zip(before.parameters(), after.parameters(),
                                                 strict=True))


@pytest.mark.slow  # trains two models
def test_the_attribute_loss_trains_the_image_tower_and_is_not_saved(catalogue, tmp_path):
    from safetensors import safe_open

    def vision_after(weight: float):
        config = TrainConfig(epochs=2, batch_size=8, attribute_loss=weight, progress=False)
        train(None, catalogue, tmp_path / str(weight), config, Architecture.tiny())
        with safe_open(str(tmp_path / str(weight) / "model.safetensors"), "pt") as f:
            keys = list(f.keys())
        return keys, Encoder(model=str(tmp_path / str(weight))).model.vision_model

    keys, with_loss = vision_after(1.0)
    plain_keys, without = vision_after(0.0)
    assert keys == plain_keys  # the heads are scaffolding: the same CLIP is saved
    assert not all(torch.equal(p, q) for p, q in zip(with_loss.parameters(),
                                                     without.parameters(), strict=True))
    record = json.loads((tmp_path / "1.0" / "training.json").read_text())
    assert record["config"]["attribute_loss"] == 1.0


# ------------------------------------------------------------------ zero-shot


@pytest.mark.slow  # trains a model
def test_zeroshot_probabilities_and_ensemble_norm(trained):
    encoder = Encoder(model=str(trained.out_dir))
    labels = ["dress", "jeans", "cap"]
    templates = ("a photo of a {}", "a {} on a plain background")
    classes = class_embeddings(encoder, labels, templates)
    assert classes.shape == (3, 16)
    assert np.allclose(np.linalg.norm(classes, axis=1), 1.0, atol=1e-5)
    assert class_embeddings(encoder, labels, templates) is classes  # cached
    images = encoder.encode_texts(["x", "y", "z", "w"])  # any unit vectors will do
    probs = classify(encoder, images, labels, templates)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(1), 1.0) and (probs >= 0).all()
