"""What the loop is fed: the product split, the image cache, augmentation and batches.

* products are split into training and validation BY PRODUCT, deterministically
  from the seed; evaluation reads the same split back from split.json; rows
  flagged for moderation are left out;
* every image is preprocessed ONCE, exactly as the Encoder will see it, into a
  uint8 tensor; each batch gets a cheap augmentation in torch (crop, flip and a
  little brightness and contrast, never hue: colour is a label here);
* a product with other photos (a styles.csv folder's more_images/) shows one of its
  photos, drawn afresh each time it is batched (`PhotoCache`): other poses, backdrops
  and light teach a model trained from scratch more than any augmentation of one photo;
* a batch's positives are every caption/product pair the caption truly
  describes, not just the diagonal; batches may be made of runs of kindred products
  (same article type and colour, other patterns: `kindred_order`), hard negatives;
* what is trained on is a `TrainingSet`: rows in the styles.csv layout and where
  each row's photo comes from (images/<id>.jpg beside a styles.csv, or the live
  catalogue's stored originals: training.live).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from catalogue.captions import Caption, visible_attributes
from embedding.encoder import Preprocessing

# ---------------------------------------------------------------- what is trained on

ImageSource = Callable[[dict, Preprocessing], Image.Image]
"""A row's photo, opened for a model with this preprocessing (which says how large it
must be to lose nothing)."""


@dataclass
class TrainingSet:
    """Products to train on, as styles.csv rows (the captions are made from those
    columns, catalogue.captions), and where their photos come from."""

    rows: list[dict]
    open_image: ImageSource
    source: str
    """What training.json and split.json record as the catalogue."""
    left_out: dict[str, int] = field(default_factory=dict)
    """Why products of the source are not in `rows`, and how many each."""
    more_photos: dict[str, list[Path]] = field(default_factory=dict)
    """Other photos of a product, by id, to train on beside its main one (PhotoCache).
    Evaluation judges the main photos only."""

    @classmethod
    def from_csv(cls, csv_path: Path) -> TrainingSet:
        """A styles.csv, its photos in images/<id>.jpg beside it, and any other photos of a
        product in more_images/<id>-<k>.jpg (catalogue.styles.more_photos)."""
        from catalogue.styles import more_photos, read_styles

        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise FileNotFoundError(f"no catalogue at {csv_path} (a styles.csv)")
        image_dir = csv_path.parent / "images"

        def open_image(row: dict, prep: Preprocessing) -> Image.Image:
            return Image.open(image_dir / f"{row['id']}.jpg")

        return cls(read_styles(csv_path), open_image, str(csv_path),
                   more_photos=more_photos(csv_path.parent))

    @property
    def products(self) -> list[dict]:
        """The rows that are products (not moderation examples): what is split and trained."""
        return [r for r in self.rows if not r.get("moderation")]


# ---------------------------------------------------------------- split


@dataclass(frozen=True)
class Split:
    train: list[str]
    validation: list[str]
    excluded: list[str]  # moderation rows: not products, never trained on

    def to_json(self, **extra) -> dict:
        return {**extra, "train": self.train, "validation": self.validation,
                "excluded": self.excluded}


def split_products(rows: list[dict], val_fraction: float, seed: int) -> Split:
    """Hold out a seeded random fraction of the products; the same input gives the same split."""
    excluded = sorted(r["id"] for r in rows if r.get("moderation"))
    ids = sorted({r["id"] for r in rows if not r.get("moderation")}, key=_id_key)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    val = sorted((ids[i] for i in order[:n_val]), key=_id_key)
    train = sorted((ids[i] for i in order[n_val:]), key=_id_key)
    return Split(train, val, excluded)


def keep_held_out(base: Split, rows: list[dict], val_fraction: float, seed: int) -> Split:
    """A fine-tune's split: the base model's held-out products that are still there stay
    held out (it must not train on what its base is judged on), its training products
    train, and products the base never saw (a live catalogue grows) are split afresh."""
    products = {r["id"] for r in rows if not r.get("moderation")}
    seen = set(base.train) | set(base.validation)
    fresh = split_products([r for r in rows if r["id"] not in seen], val_fraction, seed)
    return Split(sorted((set(base.train) & products) | set(fresh.train), key=_id_key),
                 sorted((set(base.validation) & products) | set(fresh.validation), key=_id_key),
                 fresh.excluded)


def _id_key(product_id: str):
    return (0, int(product_id), "") if product_id.isdigit() else (1, 0, product_id)


def read_split(path: Path) -> Split:
    data = json.loads(Path(path).read_text())
    return Split(data["train"], data["validation"], data.get("excluded", []))


def held_out(data: TrainingSet, split_path: Path | None) -> tuple[list[dict], str]:
    """The products a model is judged on: those its split.json held out of training, or
    every product where there is no split (a model that never saw this catalogue)."""
    rows = data.products
    if split_path is None or not Path(split_path).exists():
        return rows, "all"
    validation = set(read_split(split_path).validation)
    return [r for r in rows if r["id"] in validation], "held-out"


# ---------------------------------------------------------------- images


def load_image_cache(rows: list[dict], open_image: ImageSource, prep: Preprocessing,
                     progress: bool = False) -> torch.Tensor:
    """(n, 3, H, W) uint8: every image resized and cropped once, as the Encoder does."""
    arrays = []
    for row in tqdm(rows, desc="images", unit="img", disable=not progress, leave=False):
        with open_image(row, prep) as image:
            arrays.append(prep.to_array(image))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


class PhotoCache:
    """Every photo of each product, preprocessed once: `photos` is (views, n, 3, H, W)
    uint8, view 0 the main photo, a product with fewer photos padded with its main one;
    `count[i]` is how many product i has."""

    def __init__(self, photos: torch.Tensor, count: torch.Tensor):
        self.photos, self.count = photos, count

    @classmethod
    def load(cls, data: TrainingSet, rows: list[dict], prep: Preprocessing,
             progress: bool = False, more: bool = True) -> PhotoCache:
        """The rows' main photos and, with `more`, their other photos (data.more_photos)."""
        extra = {r["id"]: data.more_photos.get(r["id"], []) if more else [] for r in rows}

        def view(k: int) -> ImageSource:  # a row's k-th other photo, else its main one
            def open_image(row: dict, prep: Preprocessing) -> Image.Image:
                paths = extra[row["id"]]
                return Image.open(paths[k - 1]) if 0 < k <= len(paths) else \
                    data.open_image(row, prep)
            return open_image

        views = 1 + max(map(len, extra.values()), default=0)
        photos = torch.stack([load_image_cache(rows, view(k), prep, progress)
                              for k in range(views)])
        return cls(photos, torch.tensor([1 + len(extra[r["id"]]) for r in rows],
                                        dtype=torch.long))

    def pick(self, index: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """One photo of each indexed product, drawn uniformly from its own."""
        if len(self.photos) == 1:
            return self.photos[0, index]
        view = (torch.rand(len(index), generator=gen) * self.count[index]).long()
        return self.photos[view, index]


class Augment:
    """Batched, mild augmentation of a uint8 batch, then the model's normalisation.

    Random resized crop (85-100 % of the side, aspect 0.9-1.1) and horizontal flip
    through one affine grid, and +-8 % brightness and contrast. No hue or
    saturation change: "red" must stay red.
    """

    def __init__(self, prep: Preprocessing, enabled: bool = True):
        self.mean = torch.from_numpy(prep.mean)
        self.std = torch.from_numpy(prep.std)
        self.enabled = enabled

    def __call__(self, batch: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = batch.float() / 255.0
        if self.enabled:
            n = x.shape[0]

            def uniform(lo: float, hi: float) -> torch.Tensor:
                return lo + (hi - lo) * torch.rand(n, generator=gen)

            side = uniform(0.85, 1.0)
            aspect = uniform(0.9, 1.1).sqrt()
            sx, sy = (side * aspect).clamp(max=1.0), (side / aspect).clamp(max=1.0)
            tx, ty = (1 - sx) * uniform(-1, 1), (1 - sy) * uniform(-1, 1)
            flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
            theta = torch.zeros(n, 2, 3)
            theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
            theta[:, 1, 1], theta[:, 1, 2] = sy, ty
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                              align_corners=False)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            contrast = uniform(0.92, 1.08).view(n, 1, 1, 1)
            brightness = uniform(0.92, 1.08).view(n, 1, 1, 1)
            x = ((x - mean) * contrast + mean) * brightness
            x = x.clamp(0.0, 1.0)
        return (x - self.mean) / self.std


# ---------------------------------------------------------------- batches


def kindred_order(rows: list[dict], group: int, gen: torch.Generator | None) -> torch.Tensor:
    """A random order of the rows in which runs of `group` share article type and colour
    and, as far as the catalogue allows, differ in pattern; cut into batches, each run
    puts products that only their patterns tell apart side by side (hard negatives for
    "a floral red dress"). What is left of a kind makes a shorter run."""
    by_kind: dict[tuple[str, str], dict[str, list[int]]] = {}
    for i in torch.randperm(len(rows), generator=gen).tolist():
        row = rows[i]
        kind = (row.get("articleType", ""), row.get("baseColour", ""))
        by_kind.setdefault(kind, {}).setdefault(row.get("pattern", "") or "", []).append(i)
    runs = []
    for patterns in by_kind.values():
        # round robin over the patterns, so neighbours differ in pattern while they can
        members = [i for turn in zip_longest(*patterns.values()) for i in turn if i is not None]
        runs += [members[j:j + group] for j in range(0, len(members), group)]
    order = torch.randperm(len(runs), generator=gen).tolist()
    return torch.tensor([i for r in order for i in runs[r]], dtype=torch.long)


def positives_mask(captions: list[Caption], shown: list[frozenset]) -> torch.Tensor:
    """positives[i, j]: caption i truly describes product j (all it states, j shows).

    "a red dress" is a positive for every red dress of the batch: treating those as
    negatives would teach the model to tell apart what the caption cannot.
    """
    texts = [c.text.lower() for c in captions]
    # Built as Python lists: setting a tensor's elements one at a time cost 46 ms a
    # batch of 64, a fifth of the demo model's training step.
    mask = [[i == j or (caption.attributes <= shown[j] if caption.attributes is not None
                        else texts[i] == texts[j]) for j in range(len(captions))]
            for i, caption in enumerate(captions)]
    return torch.tensor(mask, dtype=torch.bool).reshape(len(captions), len(captions))


class Batcher:
    """Turns product indices and their captions into (pixels, tokens, positives)."""

    def __init__(self, model, tokenizer, rows: list[dict], images: PhotoCache,
                 augment: Augment):
        self.family = model.config.model_type
        self.tokenizer = tokenizer
        self.context_length = model.config.text_config.max_position_embeddings
        self.shown = [visible_attributes(r) for r in rows]
        self.images = images
        self.augment = augment

    def tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        padding = "max_length" if self.family == "siglip" else True
        tokens = self.tokenizer(texts, padding=padding, truncation=True,
                                max_length=self.context_length, return_tensors="pt")
        keep = ("input_ids",) if self.family == "siglip" else ("input_ids", "attention_mask")
        return {k: tokens[k] for k in keep}

    def __call__(self, index: torch.Tensor, captions: list[Caption],
                 gen: torch.Generator | None):
        pixels = self.augment(self.images.pick(index, gen), gen)
        # rows are products, columns captions: positives[i, j] = caption j describes image i
        positives = positives_mask(captions, [self.shown[i] for i in index.tolist()]).T
        return pixels, self.tokens([c.text for c in captions]), positives
