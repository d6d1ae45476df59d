"""Bad and awkward uploads: a corpus made here, checked on decode_image and through the API.

Every bad file must be refused with an ImageError naming the problem (a 4xx over
HTTP, never a 500) and leave nothing behind; every awkward but valid one must
decode to the right 8-bit RGB picture and end indexed.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalogue.images import ImageError, decode_image
from catalogue.ingest import Upload
from catalogue.jobs import NewItem
from catalogue.store.base import point_id
from testkit.api import make_app, upload, wait_job
from testkit.images import image_bytes

CAP = 100_000  # byte cap used throughout, so "oversized" stays cheap to make
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
# The awkward-but-valid corpus is drawn at twice its first sizes (20 px -> 40): photos
# under VITRINE_MIN_IMAGE_SIDE (32 px) are refused since issue 11.


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int) -> bytes:
    """A real 1-bit side x side PNG of zeros, streamed so the raw rows never sit in memory.

    20000 x 20000 is 400 M pixels (about 400 MB once decoded) in under 50 kB.
    """
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(side // 1000))
    idat += packer.compress(row * (side % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def bomb_jpeg(side: int = 20000) -> bytes:
    """A small JPEG whose frame header claims side x side: what a decoder sees of a bomb."""
    data = bytearray(save(Image.new("L", (16, 16), 128), "JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline frame: marker, length, precision, height, width
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def truncated(data: bytes) -> bytes:
    return data[:len(data) // 2]


MINIMAL_PDF = (b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
               b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
               b"trailer <</Root 1 0 R>>\n%%EOF\n")


@dataclass(frozen=True)
class Bad:
    make: Callable[[], bytes]
    needle: str  # what the refusal must say
    filename: str = "photo.jpg"


BAD = {
    "bomb-png-20000x20000": Bad(lambda: bomb_png(20000), "decompression bomb", "photo.png"),
    "bomb-png-10000x10000": Bad(lambda: bomb_png(10000), "decompression bomb", "photo.png"),
    "over-pixel-limit-8000x8000": Bad(lambda: bomb_png(8000), "over the limit", "photo.png"),
    "bomb-jpeg-20000x20000": Bad(bomb_jpeg, "decompression bomb"),
    "truncated-jpeg": Bad(lambda: truncated(save(noise(200, 150), "JPEG")), "truncated"),
    "truncated-png": Bad(lambda: truncated(save(noise(100, 80), "PNG")), "truncated",
                         "photo.png"),
    "random-bytes": Bad(lambda: np.random.default_rng(7).bytes(4096), "not an image"),
    "tiff-renamed-jpg": Bad(lambda: save(Image.new("RGB", (40, 30), "red"), "TIFF"),
                            "not an image in an allowed format"),
    "pdf-renamed-jpg": Bad(lambda: MINIMAL_PDF, "not an image in an allowed format"),
    "empty": Bad(lambda: b"", "empty"),
    "oversized": Bad(lambda: save(noise(256, 256), "PNG"), f"over the limit of {CAP}",
                     "photo.png"),
}


@cache
def bad_bytes(name: str) -> bytes:
    return BAD[name].make()


# -- valid but awkward files, with what the decoded picture must look like -------------------
def cmyk_jpeg() -> bytes:
    return save(Image.new("CMYK", (80, 60), (0, 255, 255, 0)), "JPEG", quality=95)


def check_cmyk(image: Image.Image) -> None:
    assert image.size == (80, 60)
    assert np.abs(np.asarray(image, np.int16) - RED).max() <= 3


SIXTEEN_BIT = np.tile(np.array([[0, 256, 32768, 65535], [200 * 256 + 255, 100, 51400, 65280]],
                               dtype=np.uint16), (16, 8))  # 32 x 32


def png_16bit() -> bytes:
    data = save(Image.fromarray(SIXTEEN_BIT), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"  # really a 16-bit file
    return data


def check_16bit(image: Image.Image) -> None:
    expected = (SIXTEEN_BIT >> 8).astype(np.uint8)  # the high byte: full range kept, no clipping
    got = np.asarray(image)
    assert got.shape == (32, 32, 3)
    for channel in range(3):
        assert np.array_equal(got[..., channel], expected)


def exif_rotated_jpeg(exif: bytes | None = None) -> bytes:
    """Stored 80 wide x 40 high, red block top-left; orientation 6 means "turn 90° clockwise"."""
    stored = Image.new("RGB", (80, 40), "white")
    stored.paste(Image.new("RGB", (20, 12), "red"), (0, 0))
    if exif is None:
        tags = Image.Exif()
        tags[0x0112] = 6
        exif = tags.tobytes()
    return save(stored, "JPEG", quality=95, exif=exif)


def damaged_exif_jpeg() -> bytes:
    """Orientation 6, and a Make tag renumbered ImageWidth so it holds text where a number
    belongs: ImageOps.exif_transpose raised struct.error re-writing that block."""
    tags = Image.Exif()
    tags[0x0112] = 6
    tags[0x010F] = "Cam"
    exif = tags.tobytes()
    make = exif.index(b"\x01\x0f\x00\x02")  # big-endian tag 0x010F, type ASCII
    return exif_rotated_jpeg(exif[:make] + b"\x01\x00\x00\x02" + exif[make + 4:])


def check_rotated(image: Image.Image) -> None:
    assert image.size == (40, 80)  # width and height swapped
    assert np.abs(np.asarray(image.getpixel((34, 6)), np.int16) - RED).max() <= 8  # top-right
    assert min(image.getpixel((4, 6))) >= 245  # top-left is now white
    assert min(image.getpixel((34, 72))) >= 245


def transparent_png() -> bytes:
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # red, but fully transparent
    image.paste(Image.new("RGBA", (20, 20), (0, 0, 255, 255)), (10, 10))
    return save(image, "PNG")


def check_transparent(image: Image.Image) -> None:
    assert image.getpixel((0, 0)) == WHITE  # not the hidden red, not black
    assert image.getpixel((20, 20)) == BLUE


def palette_png() -> bytes:
    image = Image.new("P", (40, 40), 1)
    image.putpalette([*BLUE, *GREEN] + [0] * (254 * 3))
    image.paste(0, (10, 10, 30, 30))
    return save(image, "PNG", transparency=1)  # index 1 (green) is transparent


def check_palette(image: Image.Image) -> None:
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((20, 20)) == BLUE


def colour_key_png() -> bytes:
    """An RGB PNG whose tRNS chunk makes one colour transparent."""
    image = Image.new("RGB", (40, 40), (0, 0, 0))
    image.paste(Image.new("RGB", (20, 20), BLUE), (10, 10))
    return save(image, "PNG", transparency=(0, 0, 0))


def grey_key_png() -> bytes:
    image = Image.new("L", (40, 40), 0)
    image.paste(Image.new("L", (20, 20), 90), (10, 10))
    return save(image, "PNG", transparency=0)


def check_keyed(centre):
    def check(image: Image.Image) -> None:
        assert image.getpixel((0, 0)) == WHITE
        assert image.getpixel((20, 20)) == centre
    return check


def grayscale_jpeg() -> bytes:
    return save(Image.new("L", (60, 40), 77), "JPEG", quality=95)


def check_grayscale(image: Image.Image) -> None:
    r, g, b = image.getpixel((20, 20))
    assert r == g == b and abs(r - 77) <= 2


FRAMES = (RED, GREEN, BLUE)


def animated(fmt: str, **options) -> bytes:
    frames = [Image.new("RGB", (48, 48), c) for c in FRAMES]
    data = save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                **options)
    assert Image.open(io.BytesIO(data)).n_frames == 3  # really animated
    return data


def gif_damaged_after_first_frame() -> bytes:
    """The trailer replaced by the start of an extension block: frame 0 is intact; walking
    the frames (n_frames) raised IndexError."""
    return animated("GIF")[:-1] + b"\x21"


def check_first_frame(image: Image.Image) -> None:
    assert image.size == (48, 48)
    assert image.getpixel((24, 24)) == FRAMES[0]


GOOD: dict[str, tuple[Callable[[], bytes], Callable[[Image.Image], None]]] = {
    "cmyk-jpeg": (cmyk_jpeg, check_cmyk),
    "16-bit-png": (png_16bit, check_16bit),
    "exif-rotated-jpeg": (exif_rotated_jpeg, check_rotated),
    "damaged-exif-jpeg": (damaged_exif_jpeg, check_rotated),
    "transparent-png": (transparent_png, check_transparent),
    "palette-png-with-transparency": (palette_png, check_palette),
    "rgb-png-with-colour-key": (colour_key_png, check_keyed(BLUE)),
    "grey-png-with-colour-key": (grey_key_png, check_keyed((90, 90, 90))),
    "grayscale-jpeg": (grayscale_jpeg, check_grayscale),
    "animated-gif": (lambda: animated("GIF"), check_first_frame),
    "animated-gif-damaged-later-frame": (gif_damaged_after_first_frame, check_first_frame),
    "animated-webp": (lambda: animated("WEBP", lossless=True), check_first_frame),
}


@cache
def good_bytes(name: str) -> bytes:
    return GOOD[name][0]()


# -- decode_image ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BAD)
def test_decode_refuses_bad_file_naming_the_problem(name):
    data = bad_bytes(name)
    if name.startswith("bomb"):
        assert len(data) < 60_000  # cheap to send: the danger is in the header
    with pytest.raises(ImageError, match=BAD[name].needle):
        decode_image(data, max_bytes=CAP)


@pytest.mark.parametrize("name", GOOD)
def test_decode_awkward_file_to_rgb(name):
    data = good_bytes(name)
    assert len(data) < CAP
    image = decode_image(data, max_bytes=CAP)
    assert image.mode == "RGB"
    GOOD[name][1](image)


def test_the_byte_cap_is_inclusive():
    data = image_bytes()
    assert decode_image(data, max_bytes=len(data)).mode == "RGB"
    with pytest.raises(ImageError, match="over the limit"):
        decode_image(data, max_bytes=len(data) - 1)


# -- through the HTTP API ----------------------------------------------------------------------
@pytest.fixture
def capped(client, monkeypatch):
    """The app with a small byte cap (the pipeline and the search route read the same
    settings object)."""
    monkeypatch.setattr(client.app.state.services.settings, "max_image_bytes", CAP)
    return client


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_encoder):
    """One capped app for the many one-file cases (opening a store takes a second or two).
    Refusals must leave it empty, so sharing it only makes "nothing left" a stronger check."""
    app = make_app(tmp_path_factory.mktemp("images") / "data", tiny_encoder,
                   max_image_bytes=CAP)
    with TestClient(app) as c:
        yield c


def post_product(client, product_id: str, data: bytes, filename: str):
    metadata = {"id": product_id, "title": f"product {product_id}"}
    return client.post("/v1/products", data={"metadata": json.dumps(metadata)},
                       files={"image": (filename, data, "image/jpeg")})


def assert_nothing_left(client) -> None:
    services = client.app.state.services
    assert services.store.count() == 0
    assert services.jobs.pending_count() == 0  # no item queued or running
    assert not [p for p in services.media.root.rglob("*") if p.is_file()]  # no original kept


@pytest.mark.parametrize("name", BAD)
def test_upload_of_bad_file_is_refused_and_leaves_nothing(shared, name):
    response = post_product(shared, "bad-1", bad_bytes(name), BAD[name].filename)
    assert 400 <= response.status_code < 500, response.text
    assert BAD[name].needle in response.json()["message"]
    assert_nothing_left(shared)


@pytest.mark.parametrize("name", BAD)
def test_search_by_bad_image_is_422_naming_the_problem(shared, name):
    response = shared.post("/v1/search", data={"alpha": "1"},
                           files={"image": (BAD[name].filename, bad_bytes(name), "image/jpeg")})
    assert response.status_code == 422, response.text
    assert BAD[name].needle in response.json()["message"]


def test_batch_of_bad_files_fails_each_alone_with_its_reason(capped):
    names = list(BAD)
    metadata = [{"id": f"bad-{i}"} for i in range(len(names))] + [{"id": "fine"}]
    files = [("images", (BAD[n].filename, bad_bytes(n), "image/jpeg")) for n in names]
    files.append(("images", ("fine.png", image_bytes(), "image/png")))
    response = capped.post("/v1/products/batch", data={"metadata": json.dumps(metadata)},
                           files=files)
    assert response.status_code == 202, response.text
    assert response.json()["rejected"] == len(names)
    job = wait_job(capped, response.json()["job_id"])
    assert job["state"] == "done" and job["succeeded"] == 1 and job["failed"] == len(names)
    reasons = {e["index"]: e["error"] for e in job["errors"]}
    for i, name in enumerate(names):
        assert BAD[name].needle in reasons[i], (name, reasons[i])
    services = capped.app.state.services
    assert services.store.count() == 1 and services.jobs.pending_count() == 0


@pytest.mark.parametrize("name", ["truncated-jpeg", "random-bytes", "oversized"])
def test_bad_original_reaching_the_worker_fails_its_item(capped, name):
    """An original stored earlier (say under a larger cap) that no longer decodes: the
    worker fails that item with the reason, indexes the rest, leaves nothing running."""
    services = capped.app.state.services
    good = services.ingest.prepare(Upload({"id": "ok"}, [image_bytes()]))
    bad = NewItem("bad", {"id": "bad", "title": "", "version": 1.0},
                  services.media.put(bad_bytes(name)))
    job_id = services.jobs.create_job("upload", [bad, good])
    services.dispatch.submit(job_id)
    job = wait_job(capped, job_id)
    assert job["succeeded"] == 1 and job["failed"] == 1, job
    assert BAD[name].needle in job["errors"][0]["error"]
    assert services.store.count() == 1 and services.jobs.pending_count() == 0
    assert capped.get("/v1/products/bad").status_code == 404


@pytest.mark.parametrize("name", GOOD)
def test_upload_of_awkward_file_ends_indexed(client, name):
    response = upload(client, f"ok-{name}", good_bytes(name))
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert job["state"] == "done" and job["succeeded"] == 1, job
    services = client.app.state.services
    assert services.store.count() == 1
    product = client.get(f"/v1/products/ok-{name}")
    assert product.status_code == 200
    # The vector indexed is the one of the picture decode_image makes (upright, on white).
    [point] = services.store.retrieve([point_id(f"ok-{name}")], with_vectors=True)
    expected = services.encoder.encode_images([decode_image(good_bytes(name))])[0]
    assert float(np.dot(point.vector[0], expected)) > 0.9999

