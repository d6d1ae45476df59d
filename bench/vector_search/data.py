"""The synthetic data every system is measured on, and the files a run shares.

Vectors are shaped like CLIP image embeddings rather than uniform noise because an
HNSW index's recall and speed depend on that shape: clusters of very different sizes
inside a narrow cone are harder than points spread over the sphere. Payloads follow
the cluster so that filters cut the data the way they cut a real catalogue.
Everything is a pure function of the seed: the parent and each system's process
regenerate the same query filters instead of passing them around.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

K = 10
DIM = 512

CATEGORIES = ("dresses", "tops", "trousers", "jeans", "skirts", "shorts", "jackets", "coats",
              "knitwear", "shirts", "shoes", "boots", "sandals", "bags", "accessories",
              "swimwear", "lingerie")
CATEGORY_MEDIAN_PRICE = (59, 25, 45, 55, 39, 29, 89, 140, 49, 39, 79, 120, 45, 95, 19, 35, 25)
COLOURS = ("black", "white", "blue", "grey", "red", "green", "beige", "brown", "pink", "navy",
           "yellow", "multi")
COLOUR_WEIGHTS = np.array([22, 14, 11, 9, 7, 6, 7, 6, 6, 5, 3, 4], dtype=np.float64)
GENDERS = ("women", "men", "unisex")
GENDER_WEIGHTS = np.array([0.55, 0.35, 0.10])
MODES = ("none", "colour", "category+price")


@dataclass(frozen=True)
class Shape:
    """The parameters of the synthetic embedding distribution."""

    dim: int = DIM
    clusters: int = 300
    zipf: float = 1.0          # cluster size ∝ rank^-zipf
    mean_weight: float = 1.2   # shared direction vs cluster direction: the narrow cone
    noise: float = 0.8         # within-cluster spread relative to the centre norm
    low_rank: int = 32         # shared principal directions with decaying variance
    low_rank_scale: float = 0.35


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class Generator:
    """Deterministic CLIP-like vectors and payloads; chunk `i` of stream `s` is always the same."""

    def __init__(self, seed: int, shape: Shape = Shape()):
        self.seed, self.shape = seed, shape
        rng = np.random.default_rng(seed)
        d, k = shape.dim, shape.clusters
        mean = _unit(rng.standard_normal(d))
        self.centres = _unit(shape.mean_weight * mean + _unit(rng.standard_normal((k, d))))
        w = 1.0 / np.arange(1, k + 1) ** shape.zipf
        self.cluster_p = w / w.sum()
        scales = np.exp(rng.normal(0.0, 0.5, (k, d)))  # anisotropic, different per cluster
        self.scales = (scales / np.sqrt((scales**2).mean(1, keepdims=True))).astype(np.float32)
        self.spread = (np.exp(rng.normal(0.0, 0.25, k)) * shape.noise / np.sqrt(d))
        self.basis = _unit(rng.standard_normal((shape.low_rank, d))).astype(np.float32)
        self.basis_sd = shape.low_rank_scale * np.arange(1, shape.low_rank + 1) ** -0.5
        cat_p = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 0.8
        self.category_p = cat_p / cat_p.sum()
        self.colour_p = COLOUR_WEIGHTS / COLOUR_WEIGHTS.sum()
        self.cluster_category = rng.choice(len(CATEGORIES), k, p=self.category_p)
        self.cluster_colour = rng.choice(len(COLOURS), k, p=self.colour_p)
        self.cluster_gender = rng.choice(len(GENDERS), k, p=GENDER_WEIGHTS)

    def chunk(self, stream: int, index: int, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`size` vectors (float32, unit) and their payload columns."""
        rng = np.random.default_rng([self.seed, stream, index])
        s = self.shape
        k = rng.choice(s.clusters, size, p=self.cluster_p)
        x = self.centres[k] + (rng.standard_normal((size, s.dim)) * self.scales[k]
                               * self.spread[k, None])
        x += (rng.standard_normal((size, s.low_rank)) * self.basis_sd) @ self.basis
        x = _unit(x).astype(np.float32)
        n_cat, n_col = len(CATEGORIES), len(COLOURS)
        category = np.where(rng.random(size) < 0.85, self.cluster_category[k],
                            rng.choice(n_cat, size, p=self.category_p))
        colour = np.where(rng.random(size) < 0.5, self.cluster_colour[k],
                          rng.choice(n_col, size, p=self.colour_p))
        gender = np.where(rng.random(size) < 0.8, self.cluster_gender[k],
                          rng.choice(len(GENDERS), size, p=GENDER_WEIGHTS))
        median = np.asarray(CATEGORY_MEDIAN_PRICE, np.float64)[category]
        price = np.round(median * np.exp(rng.normal(0.0, 0.5, size)), 2)
        return x, {"cluster": k.astype(np.int16), "category": category.astype(np.int8),
                   "colour": colour.astype(np.int8), "gender": gender.astype(np.int8),
                   "price": price.astype(np.float32)}


@dataclass
class QueryFilter:
    """A filter in a form every system can use: its columns plus the domain `Filter` fields."""

    colour: int | None = None
    category: int | None = None
    price: tuple[float, float] | None = None

    def mask(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        m = np.ones(len(cols["colour"]), dtype=bool)
        if self.colour is not None:
            m &= cols["colour"] == self.colour
        if self.category is not None:
            m &= cols["category"] == self.category
        if self.price is not None:
            m &= (cols["price"] >= self.price[0]) & (cols["price"] <= self.price[1])
        return m

    def to_store(self):
        from catalogue.store.filters import Filter

        f = Filter()
        if self.colour is not None:
            f.match["colour"] = COLOURS[self.colour]
        if self.category is not None:
            f.match["category"] = CATEGORIES[self.category]
        if self.price is not None:
            f.range["price"] = self.price
        return None if f.is_empty() else f


def query_filters(gen: Generator, qcols: dict[str, np.ndarray], seed: int
                  ) -> dict[str, list[QueryFilter | None]]:
    """Per mode, one filter per query: a colour someone picks from the facet list, or the
    query's own category with a price band around that category's typical price."""
    rng = np.random.default_rng([seed, 99])
    n = len(qcols["cluster"])
    colours = rng.choice(len(COLOURS), n, p=gen.colour_p)
    cats = gen.cluster_category[qcols["cluster"]]
    out: dict[str, list[QueryFilter | None]] = {"none": [None] * n, "colour": [],
                                                 "category+price": []}
    for i in range(n):
        out["colour"].append(QueryFilter(colour=int(colours[i])))
        median = CATEGORY_MEDIAN_PRICE[cats[i]]
        lo = float(round(median * rng.uniform(0.4, 0.9), 2))
        hi = float(round(median * rng.uniform(1.1, 2.0), 2))
        out["category+price"].append(QueryFilter(category=int(cats[i]), price=(lo, hi)))
    return out


@dataclass
class Workdir:
    """Files one size's run shares between the parent and the per-system processes."""

    root: Path
    n: int
    n_queries: int
    chunk: int

    @property
    def vectors(self) -> Path:
        return self.root / "vectors.f32"

    def read_chunks(self, chunk: int | None = None, desc: str | None = None):
        """Yield (start, vectors) read with plain file reads: no mapping lingers in RSS."""
        chunk = chunk or self.chunk
        row = DIM * 4
        with open(self.vectors, "rb") as fh:
            for start in tqdm(range(0, self.n, chunk), desc=desc, unit_scale=chunk,
                              disable=desc is None, leave=False):
                size = min(chunk, self.n - start)
                fh.seek(start * row)
                yield start, np.frombuffer(fh.read(size * row), np.float32).reshape(size, DIM)

    def columns(self) -> dict[str, np.ndarray]:
        return dict(np.load(self.root / "columns.npz"))

    def queries(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        data = dict(np.load(self.root / "queries.npz"))
        return data.pop("vectors"), data

    def truth(self) -> dict[str, np.ndarray]:
        return dict(np.load(self.root / "truth.npz"))

    def run_inputs(self, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray],
                                              dict[str, np.ndarray],
                                              dict[str, list[QueryFilter | None]]]:
        """What a system's run reads: the query vectors, the exact top k, the points'
        payload columns and the queries' filters (the parent's, drawn again from `seed`)."""
        q, qcols = self.queries()
        return q, self.truth(), self.columns(), query_filters(Generator(seed), qcols, seed)


def generate(wd: Workdir, seed: int) -> Generator:
    gen = Generator(seed)
    cols: dict[str, list[np.ndarray]] = {}
    with open(wd.vectors, "wb") as fh:
        for i, start in enumerate(tqdm(range(0, wd.n, wd.chunk), desc=f"generate {wd.n:,}",
                                       unit_scale=wd.chunk, leave=False)):
            x, c = gen.chunk(0, i, min(wd.chunk, wd.n - start))
            fh.write(x.tobytes())
            for key, v in c.items():
                cols.setdefault(key, []).append(v)
    np.savez(wd.root / "columns.npz", **{k: np.concatenate(v) for k, v in cols.items()})
    q, qcols = gen.chunk(1, 0, wd.n_queries)  # stream 1: held out from the stored points
    np.savez(wd.root / "queries.npz", vectors=q, **qcols)
    return gen
