"""The synthetic catalogue `bench.search_http` serves, and the query texts it sends.

A few thousand products with CLIP-like image vectors (clusters in a narrow cone, as
CLIP image embeddings sit) and realistic payloads (category and colour follow the
cluster), written straight into an EdgeStore with their words (catalogue.keywords), so
that hybrid search has a keyword side to score. Query texts: a fixed list of fashion
phrases, and as many distinct ones as a run needs (`distinct_texts`), so that the
query-vector cache never answers a request that is meant to encode its text.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.ingest.workload import FASHION_PHRASES

CATEGORIES = ("Dresses", "Tops", "Trousers", "Jeans", "Skirts", "Jackets", "Coats", "Knitwear",
              "Shirts", "Shoes", "Boots", "Bags", "Accessories", "Swimwear")
MEDIAN_PRICE = (59, 25, 45, 55, 39, 89, 140, 49, 39, 79, 120, 95, 19, 35)
COLOURS = ("black", "white", "blue", "grey", "red", "green", "beige", "brown", "pink", "navy",
           "yellow", "multi")
BRANDS = ("Acme", "Alder & Finch", "Urban Fable", "Northwind", "Maison Lume", "Kestrel",
          "Blue Harbour", "Zeta")
GENDERS = ("Women", "Men", "Unisex")
QUERIES = FASHION_PHRASES + [
    "little black dress for a party", "waterproof hiking boots", "linen trousers for summer",
    "men's navy suit jacket", "kids denim dungarees", "chunky knit turtleneck",
    "white shirt with button-down collar", "leopard print midi skirt", "red satin slip dress",
    "quilted crossbody bag", "light blue ripped jeans", "merino wool socks",
]


# -- the catalogue -------------------------------------------------------------------------------
def synthetic_products(n: int, dim: int, model: str = "vit-b32-random", seed: int = 0):
    """Unit vectors in clusters inside a narrow cone (as CLIP image embeddings sit), and
    payloads whose category and colour follow the cluster, as real products' do."""
    rng = np.random.default_rng(seed)
    clusters = 120
    mean = rng.standard_normal(dim)
    centres = mean / np.linalg.norm(mean) * 1.2 + rng.standard_normal((clusters, dim)) / np.sqrt(
        dim)
    which = rng.integers(0, clusters, n)
    vectors = centres[which] + rng.standard_normal((n, dim)) * (0.6 / np.sqrt(dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    cluster_cat = rng.integers(0, len(CATEGORIES), clusters)
    cluster_colour = rng.integers(0, len(COLOURS), clusters)
    payloads = []
    for i in range(n):
        cat = cluster_cat[which[i]] if rng.random() < 0.85 else rng.integers(len(CATEGORIES))
        colour = (cluster_colour[which[i]] if rng.random() < 0.5
                  else rng.integers(len(COLOURS)))
        brand = BRANDS[rng.integers(len(BRANDS))]
        gender = GENDERS[rng.choice(3, p=[0.55, 0.35, 0.10])]
        price = round(float(MEDIAN_PRICE[cat] * np.exp(rng.normal(0, 0.5))), 2)
        title = f"{brand} {gender} {COLOURS[colour].title()} {CATEGORIES[cat].rstrip('s')}"
        payloads.append({
            "product_id": f"sku-{i:06d}", "title": title,
            "description": f"{title}, {QUERIES[i % len(QUERIES)]}.",
            "category": CATEGORIES[cat], "colour": COLOURS[colour], "gender": gender,
            "brand": brand, "price": price, "tags": [], "image_sha256": f"{i:064x}",
            "model": model, "updated_at": 1.7e9, "moderation_status": "visible",
            "predicted": {}})
    return vectors, payloads


def fill_store(data_dir: Path, n: int, dim: int, optimize: bool, model: str) -> dict:
    """`n` synthetic products, with their photo vectors and their words, in an EdgeStore;
    `model`: the server's VITRINE_MODEL, which the points name as theirs."""
    from catalogue.attributes import DEFAULT_SCHEMA
    from catalogue.keywords import Keywords
    from catalogue.products import normalise
    from catalogue.settings import CatalogueSettings
    from catalogue.store.base import StoredPoint, point_id
    from catalogue.store.edge import EdgeStore

    settings = CatalogueSettings(data_dir=data_dir)
    store = EdgeStore(settings.shard_dir, dim, settings.optimize_threshold,
                      indexes=schema_indexes())
    keywords = Keywords.configured(DEFAULT_SCHEMA, settings)
    vectors, payloads = synthetic_products(n, dim, model)
    payloads = [normalise(p) for p in payloads]  # as ingest stores them: variants, min_price
    t0 = time.perf_counter()
    for start in tqdm(range(0, n, 500), desc="store", leave=False):
        store.upsert([StoredPoint(point_id(p["product_id"]), p, v, keywords.document(p))
                      for p, v in zip(payloads[start:start + 500], vectors[start:start + 500],
                                      strict=True)])
    load_s = time.perf_counter() - t0
    build_s = 0.0
    if optimize:
        t0 = time.perf_counter()
        store.optimize()
        build_s = time.perf_counter() - t0
    info = {"points": store.count(), "unindexed": store.unindexed(), "load_s": load_s,
            "index_build_s": build_s}
    store.close()
    return info




def schema_indexes() -> list[tuple[str, str]]:
    """The default schema's payload indexes, as `vitrine serve` opens the store with them:
    without them a filtered search scans."""
    from catalogue.attributes import DEFAULT_SCHEMA

    return [(path, kind.value) for path, kind in DEFAULT_SCHEMA.indexes()]


# -- query texts ---------------------------------------------------------------------------------
STYLES = ("little", "long", "short", "oversized", "slim fit", "vintage", "cropped", "classic",
          "lightweight", "chunky", "soft", "elegant", "casual", "warm", "loose", "fitted",
          "pleated", "quilted", "ribbed", "relaxed")
NOUNS = ("dress", "top", "trousers", "jeans", "skirt", "jacket", "coat", "jumper", "shirt",
         "shoes", "boots", "bag", "scarf", "swimsuit")
ENDINGS = ("", "for summer", "for work", "for a party", "for winter", "with pockets",
           "in cotton", "in wool", "with buttons", "for the weekend", "in linen", "for women",
           "for men")


def distinct_texts(n: int, seed: int = 3) -> list[str]:
    """`n` different shopper-like queries ("vintage red jacket with pockets"), in a seeded
    order; at most 43,680. No digits, so none is taken for a SKU or id."""
    total = len(STYLES) * len(COLOURS) * len(NOUNS) * len(ENDINGS)
    if n > total:
        raise ValueError(f"at most {total} distinct texts")
    texts = []
    for i in np.random.default_rng(seed).permutation(total)[:n]:
        i, e = divmod(int(i), len(ENDINGS))
        i, k = divmod(i, len(NOUNS))
        s, c = divmod(i, len(COLOURS))
        texts.append(" ".join(w for w in (STYLES[s], COLOURS[c], NOUNS[k], ENDINGS[e]) if w))
    return texts
