"""Products with several photos: their rows, their variants, the queries and exact MaxSim.

A product's centre is the vector `data.Generator` draws for it (the one-photo bench's
stored point); its photos are views of that garment: the centre plus VIEW_SPREAD times
noise shaped like its cluster's own spread, normalised. At 0.5 a view sits at a median
cosine of 0.88 from its centre and 0.77 from another view of the same product, while
the nearest other product is at about 0.6. View `v` of a product is the same whatever
the photo count, so the one-photo store holds exactly the first photo of the
several-photo store.

Payloads are shaped as Vitrine stores products: category and gender on the product,
1-3 variants (colour, size, price, availability) in `variants`, filtered by nested
conditions that must hold on one variant (`Filter(nested={"variants": ...})`).

Two query sets: "photo" (a held-out view of a random product: a shopper's photo of a
garment in the catalogue) and "text" (held-out draws from the distribution, as the
one-photo bench makes its queries). Truth is exact MaxSim: a product's score is its best
row's, found with FAISS over every row (unfiltered) and with numpy over every row
reduced per product (filtered), then the top 10 products.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.vector_search.data import (
    CATEGORIES,
    COLOURS,
    DIM,
    GENDERS,
    Generator,
    K,
    QueryFilter,
    _unit,
    query_filters,
)
from bench.vector_search.truth import _top_k

VIEW_SPREAD = 0.5
HELD_OUT_VIEW = 1_000  # the photo queries' view: never stored
MAX_VARIANTS = 3
SIZES = ("XS", "S", "M", "L", "XL")
MODES = ("none", "colour", "category", "category+price")
FLAT_COLOUR = "colour-flat"
"""The colour filter as a plain condition on `variants[].colour`: the same products as the
nested one (a single condition needs no "on one variant together"), served by the index."""
QUERY_SETS = ("photo", "text")


@dataclass
class Catalogue:
    """The files one run shares between the parent and each case's process."""

    root: Path
    n: int
    n_queries: int
    chunk: int = 10_000

    def rows_path(self, photos: int) -> Path:
        return self.root / f"rows-{photos}.f32"

    def read_rows(self, photos: int, products: int):
        """Yield (first product, rows of `products` products) with plain reads."""
        row = DIM * 4 * photos
        with open(self.rows_path(photos), "rb") as fh:
            for start in range(0, self.n, products):
                size = min(products, self.n - start)
                data = np.frombuffer(fh.read(size * row), np.float32)
                yield start, data.reshape(size, photos, DIM)

    def products(self) -> dict[str, np.ndarray]:
        return dict(np.load(self.root / "products.npz"))

    def queries(self, qset: str) -> tuple[np.ndarray, np.ndarray]:
        data = np.load(self.root / f"queries-{qset}.npz")
        return data["vectors"], data["cluster"]

    def truth(self, photos: int, qset: str) -> dict[str, np.ndarray]:
        return dict(np.load(self.root / f"truth-{photos}-{qset}.npz"))


def _views(gen: Generator, centres: np.ndarray, clusters: np.ndarray, key: list[int]
           ) -> np.ndarray:
    rng = np.random.default_rng(key)
    s = gen.shape
    noise = rng.standard_normal(centres.shape) * gen.scales[clusters] * gen.spread[clusters, None]
    noise += (rng.standard_normal((len(centres), s.low_rank)) * gen.basis_sd) @ gen.basis
    return _unit(centres + VIEW_SPREAD * noise).astype(np.float32)


def _variants(gen: Generator, rng: np.random.Generator, colour: np.ndarray,
              price: np.ndarray) -> dict[str, np.ndarray]:
    """Per product up to MAX_VARIANTS variants (-1 / NaN where it has fewer)."""
    n = len(colour)
    count = 1 + (rng.random(n) < 0.45) + (rng.random(n) < 0.2)
    colours = np.where(rng.random((n, MAX_VARIANTS)) < 0.5, colour[:, None],
                       rng.choice(len(COLOURS), (n, MAX_VARIANTS), p=gen.colour_p))
    colours[:, 0] = colour
    prices = np.round(price[:, None] * np.exp(rng.normal(0, 0.1, (n, MAX_VARIANTS))), 2)
    prices[:, 0] = price
    present = np.arange(MAX_VARIANTS)[None, :] < count[:, None]
    return {"colours": np.where(present, colours, -1).astype(np.int8),
            "prices": np.where(present, prices, np.nan).astype(np.float32),
            "sizes": rng.integers(0, len(SIZES), (n, MAX_VARIANTS)).astype(np.int8),
            "in_stock": rng.random((n, MAX_VARIANTS)) < 0.85}


def generate(cat: Catalogue, photo_counts: list[int], seed: int) -> Generator:
    """Rows for each photo count, product columns and both query sets, under `cat.root`."""
    gen = Generator(seed)
    rng = np.random.default_rng([seed, 3])
    asked = np.sort(rng.choice(cat.n, cat.n_queries, replace=False))
    photo_q = np.zeros((cat.n_queries, DIM), np.float32)
    photo_cluster = np.zeros(cat.n_queries, np.int16)
    cols: dict[str, list[np.ndarray]] = {}
    outs = {p: open(cat.rows_path(p), "wb") for p in photo_counts}
    try:
        for i, start in enumerate(tqdm(range(0, cat.n, cat.chunk), desc="generate", leave=False)):
            size = min(cat.chunk, cat.n - start)
            centres, c = gen.chunk(0, i, size)
            k = c["cluster"]
            views = [_views(gen, centres, k, [seed, 2, i, v]) for v in range(max(photo_counts))]
            for p, fh in outs.items():
                fh.write(np.stack(views[:p], axis=1).tobytes())
            here = np.nonzero((asked >= start) & (asked < start + size))[0]
            if len(here):
                local = asked[here] - start
                photo_q[here] = _views(gen, centres[local], k[local], [seed, 2, i, HELD_OUT_VIEW])
                photo_cluster[here] = k[local]
            vrng = np.random.default_rng([seed, 4, i])
            for key, v in {**c, **_variants(gen, vrng, c["colour"], c["price"])}.items():
                cols.setdefault(key, []).append(v)
    finally:
        for fh in outs.values():
            fh.close()
    np.savez(cat.root / "products.npz", **{k: np.concatenate(v) for k, v in cols.items()})
    np.savez(cat.root / "queries-photo.npz", vectors=photo_q, cluster=photo_cluster,
             product=asked)
    text_q, text_cols = gen.chunk(1, 0, cat.n_queries)
    np.savez(cat.root / "queries-text.npz", vectors=text_q, cluster=text_cols["cluster"])
    return gen


def payload(j: int, cols: dict[str, np.ndarray], photos: int) -> dict:
    """Product `j` as Vitrine stores it (the fields search and filters touch)."""
    variants = [{"colour": COLOURS[cols["colours"][j, v]], "size": SIZES[cols["sizes"][j, v]],
                 "price": float(cols["prices"][j, v]),
                 "availability": "in_stock" if cols["in_stock"][j, v] else "out_of_stock",
                 "image": v % photos}
                for v in range(MAX_VARIANTS) if cols["colours"][j, v] >= 0]
    return {"product_id": f"p{j:07d}", "category": CATEGORIES[cols["category"][j]],
            "gender": GENDERS[cols["gender"][j]], "variants": variants,
            "min_price": min(v["price"] for v in variants),
            "images": [{"sha256": f"{j:056x}{v:08x}"} for v in range(photos)]}


def filters(gen: Generator, clusters: np.ndarray, seed: int) -> dict[str, list]:
    """Per mode, one filter per query: a colour from the facet list, or the query's own
    category, alone or with a price band around that category's typical price."""
    out = query_filters(gen, {"cluster": clusters}, seed)
    out["category"] = [QueryFilter(category=f.category) for f in out["category+price"]]
    out[FLAT_COLOUR] = out["colour"]
    return {mode: out[mode] for mode in (*MODES, FLAT_COLOUR)}


def to_store(qf: QueryFilter | None, flat: bool = False):
    """The domain filter the app sends: product fields plain, variant fields nested (or,
    with `flat`, the colour as a plain condition on the variants' array)."""
    from catalogue.store.filters import Filter

    if qf is None:
        return None
    f, variant = Filter(), Filter()
    if qf.category is not None:
        f.match["category"] = CATEGORIES[qf.category]
    if qf.colour is not None and flat:
        f.any["variants[].colour"] = [COLOURS[qf.colour]]
    elif qf.colour is not None:
        variant.any["colour"] = [COLOURS[qf.colour]]
    if qf.price is not None:
        variant.range["price"] = qf.price
    if not variant.is_empty():
        f.nested["variants"] = variant
    return f


def mask(qf: QueryFilter | None, cols: dict[str, np.ndarray]) -> np.ndarray:
    """Products the filter keeps (a variant condition holds on some variant)."""
    m = np.ones(len(cols["category"]), bool)
    if qf is None:
        return m
    if qf.category is not None:
        m &= cols["category"] == qf.category
    if qf.colour is not None:
        m &= (cols["colours"] == qf.colour).any(1)
    if qf.price is not None:
        p = cols["prices"]
        with np.errstate(invalid="ignore"):
            m &= ((p >= qf.price[0]) & (p <= qf.price[1])).any(1)
    return m


def exact_maxsim(cat: Catalogue, photos: int, gen: Generator, seed: int) -> dict:
    """Exact top-10 products per query set and mode; returns selectivity and a cross-check
    of FAISS against numpy on unfiltered queries."""
    import faiss

    cols = cat.products()
    index = faiss.IndexFlatIP(DIM)
    for _, rows in cat.read_rows(photos, cat.chunk):
        index.add(rows.reshape(-1, DIM))
    x = faiss.rev_swig_ptr(index.get_xb(), cat.n * photos * DIM).reshape(cat.n, photos, DIM)
    report: dict = {}
    for s, qset in enumerate(QUERY_SETS):
        q, clusters = cat.queries(qset)
        fs = filters(gen, clusters, seed + s)
        _, rows = index.search(q, K * photos)  # the top 10 products' best rows are in here
        truth = {"none": np.full((len(q), K), -1, np.int64)}
        for i, ids in enumerate(rows // photos):
            first = list(dict.fromkeys(int(p) for p in ids if p >= 0))[:K]
            truth["none"][i, :len(first)] = first
        numpy_truth = {m: np.full((len(q), K), -1, np.int64) for m in MODES}
        for a in range(0, len(q), 64):
            block = q[a:a + 64]
            scores = (x.reshape(-1, DIM) @ block.T).reshape(cat.n, photos, -1).max(1)
            for mode in MODES:
                for j in range(len(block)):
                    ids = np.nonzero(mask(fs[mode][a + j], cols))[0]
                    numpy_truth[mode][a + j] = _top_k(scores[ids, j:j + 1], ids)[0]
        agree = float(np.mean([len(set(t) & set(u)) / K
                               for t, u in zip(truth["none"], numpy_truth["none"], strict=True)]))
        truth.update({m: numpy_truth[m] for m in MODES if m != "none"})
        truth[FLAT_COLOUR] = truth["colour"]
        np.savez(cat.root / f"truth-{photos}-{qset}.npz", **truth)
        report[qset] = {"faiss_numpy_agreement": agree, "selectivity": {
            m: float(np.mean([mask(f, cols).mean() for f in fs[m][:200]])) for m in MODES}}
    return report
