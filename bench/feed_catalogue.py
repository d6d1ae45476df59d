"""The catalogue `bench.feed_import` imports: rendered photos, a Merchant Center feed
naming them by URL, the same photos as a styles.csv folder, and the server for the URLs.

Products come from the demo catalogue's plan (demo.plan) and are drawn by demo.photo,
1-4 photos each; each photo is a view of its own (pose, backdrop and light from a random
stream per photo). About a third of the products have 2-3 variants (colour, size), which
the feed gives as items sharing an item_group_id, each with a photo as image_link and the
product's others as additional_image_link.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import socket
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

PHOTO_COUNTS, PHOTO_P = (1, 2, 3, 4), (0.2, 0.3, 0.3, 0.2)  # 2.5 photos a product
VARIANT_SHARE, SIZES = 0.35, ("XS", "S", "M", "L", "XL")
FEED_COLUMNS = ("id", "item_group_id", "title", "description", "link", "image_link",
                "additional_image_link", "price", "availability", "brand", "color", "size",
                "gender", "product_type")


@dataclass
class Product:
    item: object  # demo.plan.Item
    photos: int
    variants: list[tuple[str, str]] = field(default_factory=list)  # (colour, size)

    def photo(self, v: int) -> str:
        return f"{self.item.id}-{v}.jpg"


def _render(job: tuple[object, int, int, int, str]) -> int:
    from demo.draw import SUPERSAMPLE
    from demo.photo import photograph, render_product

    item, v, size, seed, folder = job
    rng = np.random.default_rng([seed, item.id, v])
    image = photograph(render_product(item, size * SUPERSAMPLE, rng), rng)
    path = Path(folder) / f"{item.id}-{v}.jpg"
    image.save(path, "JPEG", quality=int(rng.integers(80, 96)))
    return path.stat().st_size


def render(n: int, size: int, seed: int, folder: Path) -> tuple[list[Product], list[int]]:
    from catalogue.vocabulary import COLOURS
    from demo.plan import plan

    rng = np.random.default_rng([seed, 1])
    products = [Product(item, int(rng.choice(PHOTO_COUNTS, p=PHOTO_P)))
                for item in plan(n, 0, seed)]
    for p in products:
        count = 1 if rng.random() >= VARIANT_SHARE else int(rng.integers(2, 4))
        p.variants = [(p.item.colour if k == 0 or rng.random() < 0.5
                       else str(rng.choice(COLOURS)), str(rng.choice(SIZES)))
                      for k in range(count)]
    folder.mkdir(parents=True)
    jobs = [(p.item, v, size, seed, str(folder)) for p in products for v in range(p.photos)]
    with ProcessPoolExecutor(len(os.sched_getaffinity(0)), mp.get_context("spawn")) as pool:
        sizes = list(pool.map(_render, jobs, chunksize=32))
    return products, sizes


def write_feed(products: list[Product], base_url: str, path: Path) -> int:
    """The Merchant Center TSV; returns its item count."""
    from demo.plan import row

    items = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, delimiter="\t", lineterminator="\n")
        out.writerow(FEED_COLUMNS)
        for p in products:
            r = row(p.item)
            urls = [f"{base_url}/{p.photo(v)}" for v in range(p.photos)]
            grouped = len(p.variants) > 1
            for k, (colour, size) in enumerate(p.variants):
                main = urls[k % len(urls)]
                out.writerow([f"{r['id']}-{k}" if grouped else r["id"], r["id"] if grouped else "",
                              r["productDisplayName"], r["description"],
                              f"https://shop.example/p/{r['id']}", main,
                              ",".join(u for u in urls if u != main), f"{r['price']} EUR",
                              "in_stock", r["brand"], colour, size, r["gender"],
                              f"{r['masterCategory']} > {r['gender']} > {r['articleType']}"])
                items += 1
    return items


def write_kaggle(products: list[Product], images: Path, folder: Path) -> None:
    """The same photos as a styles.csv folder: one product per photo."""
    from demo.plan import COLUMNS, row

    (folder / "images").mkdir(parents=True)
    with (folder / "styles.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        out.writeheader()
        for p in products:
            for v in range(p.photos):
                out.writerow({**row(p.item), "id": f"{p.item.id}-{v}"})
                os.link(images / p.photo(v), folder / "images" / p.photo(v))


def serve(folder: str, port, served) -> None:
    """Serve `folder` on 127.0.0.1 (a free port, written to `port`), counting GETs in
    `served`; runs until its process is killed."""
    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a CDN offers

        def setup(self):
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm holds
            # the body until the client's delayed ACK (40 ms a photo on Linux loopback).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            with served.get_lock():
                served.value += 1
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=folder))
    port.value = server.server_address[1]
    server.serve_forever()
