"""`vitrine finetune` on the live catalogue: the stored products and originals become the
training data (shopper-visible ones, labels not predictions), and the result loads; and
the automatic recipe that `vitrine train` and `finetune` use."""

import json
import random

import pytest
from fastapi.testclient import TestClient

from catalogue.captions import captions_for
from catalogue.settings import CatalogueSettings
from catalogue.versions import Versions
from embedding.encoder import Encoder
from testkit.api import ingest, make_app
from testkit.images import image_bytes
from training.config import DEMO_RECIPE, SMALL_MODEL, auto_config, checkpoint_parameters
from training.data import Split, keep_held_out
from training.live import live_training_set, training_row
from vitrine import cli
from vitrine.wiring import open_media, open_store

PRODUCTS = [  # id, category, colour
    ("d1", "Dresses", "Red"), ("d2", "Dresses", "Blue"), ("j1", "Jeans", "Blue"),
    ("j2", "Jeans", "Black"), ("t1", "Tshirts", "White"), ("t2", "Tshirts", "Red"),
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, tiny_clip_dir):
    """A data folder whose live catalogue (the tiny model's) holds six labelled products,
    one whose colour only its variants give, one with no colour, and one rejected."""
    data = tmp_path_factory.mktemp("shop")
    with TestClient(make_app(data, Encoder(model=str(tiny_clip_dir)))) as client:
        for i, (pid, category, colour) in enumerate(PRODUCTS):
            ingest(client, pid, image_bytes(colour.lower(), seed=i), category=category,
                   colour=colour, title=f"Kestrel {colour} {category} {pid}",
                   description=f"A {colour.lower()} one.")
        ingest(client, "v1", image_bytes("green", seed=10), category="Dresses",
               title="Variant dress", variants=[{"colour": "Green", "size": "S"},
                                                {"colour": "Green", "size": "M"}])
        ingest(client, "n1", image_bytes(seed=11), category="Dresses", title="No colour")
        ingest(client, "r1", image_bytes("red", seed=12), category="Dresses", colour="Red",
               title="Rejected dress")
        response = client.post("/v1/moderation/r1", json={"decision": "reject"})
        assert response.status_code == 200, response.text
    return data


def read_live(data):
    settings = CatalogueSettings(data_dir=data)
    versions = Versions(settings.jobs_db)
    live = versions.live()
    versions.close()
    store = open_store(settings, live.dim, None, live)
    try:
        return live_training_set(store, open_media(settings), settings)
    finally:
        store.close()


def test_the_live_catalogue_becomes_captioned_training_rows(shop, tiny_clip_dir):
    data = read_live(shop)
    by_id = {r["id"]: r for r in data.rows}
    assert set(by_id) == {pid for pid, _, _ in PRODUCTS} | {"v1"}  # not n1, not r1
    assert data.left_out == {"no colour": 1}
    d1 = by_id["d1"]
    assert (d1["articleType"], d1["baseColour"]) == ("Dresses", "Red")
    assert "Kestrel Red Dresses d1" in captions_for(d1, ("en",), random.Random(0))
    assert any("red dress" in c for c in captions_for(d1, ("en",), random.Random(0)))
    assert by_id["v1"]["baseColour"] == "Green"  # from its variants
    # the photo is the stored original, decoded for the model
    from embedding.encoder import Encoder as Enc

    prep = Enc(model=str(tiny_clip_dir)).load().preprocess
    with data.open_image(d1, prep) as image:
        assert image.getpixel((image.width // 2, image.height // 2))[0] > 100  # reddish


def test_a_value_the_model_predicted_is_no_label():
    payload = {"product_id": "x", "image_sha256": "a" * 64, "category": "Dresses",
               "colour": "Red", "predicted": {"colour": {"value": "Red", "confidence": 0.9,
                                                         "applied": True}}}
    assert training_row(payload) == (None, "no colour")
    payload["predicted"] = {"colour": {"value": "Blue", "confidence": 0.5, "applied": False}}
    row, _ = training_row(payload)
    assert row is not None and row["baseColour"] == "Red"


def test_finetune_with_no_catalogue_trains_the_live_model_on_the_live_products(
        shop, tiny_clip_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VITRINE_DATA_DIR", str(shop))
    out = tmp_path / "tuned"
    assert cli.main(["finetune", "--out", str(out), "--epochs", "2", "--max-minutes", "2"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["base_model"] == str(tiny_clip_dir)  # the live version's model
    assert record["catalogue"].startswith("live catalogue")
    assert record["n_train"] + record["n_val"] == 7 and record["steps"] >= 2
    assert record["left_out"] == {"no colour": 1}
    split = json.loads((out / "split.json").read_text())
    assert set(split["train"]) | set(split["validation"]) == {p for p, _, _ in PRODUCTS} | {"v1"}
    assert record["config"]["epochs"] == 2 and record["config"]["warmup"] == 0.1  # flag, rule
    encoder = Encoder(model=str(out)).load()
    assert encoder.encode_texts(["a red dress"]).shape == (1, encoder.dim)
    assert "recipe: batch 8" in capsys.readouterr().out


def test_finetune_says_what_is_wrong(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VITRINE_DATA_DIR", str(tmp_path / "empty"))
    assert cli.main(["finetune", "--out", str(tmp_path / "m")]) == 2
    assert "no live catalogue" in capsys.readouterr().err
    assert cli.main(["train", "--catalogue", str(tmp_path / "nope.csv"),
                     "--out", str(tmp_path / "m")]) == 2
    assert "no catalogue at" in capsys.readouterr().err


# ------------------------------------------------------------------ the automatic recipe


def test_the_recipe_follows_the_catalogue_and_the_budget():
    tiny, demo, big = auto_config(40, 10), auto_config(3000, 10), auto_config(100_000, 30)
    assert tiny.batch_size == 8 < demo.batch_size == 64  # several steps an epoch
    assert tiny.lr < demo.lr
    # on the demo catalogue: the tuned demo recipe, with the budget given
    same = ("batch_size", "lr", "warmup", "epochs", "threads", "loss", "weight_decay",
            "hard_negatives", "attribute_loss")
    assert demo.model_dump(include=set(same)) == DEMO_RECIPE.config.model_dump(include=set(same))
    assert (demo.max_minutes, big.max_minutes) == (10, 30)
    assert auto_config(100_000, 10, device="cuda").batch_size == 256
    tuned = auto_config(3000, 10, finetune=True)  # a model of unknown size: cautious
    assert tuned.epochs == 10 and tuned.lr == pytest.approx(1e-5) and tuned.threads is None
    assert tuned.attribute_loss == 0 < demo.attribute_loss  # from scratch only
    small = auto_config(3000, 10, finetune=True, base_parameters=SMALL_MODEL // 10)
    assert small.lr == pytest.approx(1e-4)


def test_flags_override_the_recipe():
    config = auto_config(3000, 10, batch_size=16, epochs=3, lr=None, freeze="vision")
    assert (config.batch_size, config.epochs, config.freeze) == (16, 3, "vision")
    assert config.lr == pytest.approx(3.5e-4)  # follows the batch size it was given
    assert auto_config(3000, 10, lr=1e-3).lr == 1e-3


def test_parameters_are_read_without_loading(tiny_clip_dir):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_clip_dir, dtype=torch.float32)
    assert checkpoint_parameters(tiny_clip_dir) == sum(p.numel() for p in model.parameters())
    assert checkpoint_parameters("org/hub-model") is None


def test_a_fine_tune_keeps_the_base_held_out_products_held_out():
    base = Split(train=["1", "2", "3", "4"], validation=["5", "6"], excluded=[])
    rows = [{"id": i} for i in ["1", "2", "4", "5", "7", "8", "9", "10"]]  # 3, 6 gone; new
    split = keep_held_out(base, rows, 0.5, seed=0)
    assert "5" in split.validation and not {"3", "6"} & set(split.train + split.validation)
    assert {"1", "2", "4"} <= set(split.train)
    assert sorted(split.train + split.validation, key=int) == ["1", "2", "4", "5", "7", "8",
                                                                "9", "10"]
    assert len(set(split.validation) & {"7", "8", "9", "10"}) == 2
