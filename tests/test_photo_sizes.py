"""Product photos at the widths pages show them (`?w=`): made once from the display copy,
kept in the media store, at most that wide with the aspect kept, never enlarged, cached
for a year when content-addressed, revalidated by ETag."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import catalogue.derivatives as derivatives
from catalogue.derivatives import UnknownWidth, photo_at_width
from catalogue.images import DISPLAY_MAX_SIDE
from catalogue.media import FolderMediaStore
from catalogue.settings import CatalogueSettings
from catalogue.store.base import point_id
from testkit.api import ingest, make_app
from testkit.images import image_bytes

YEAR_IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def made(monkeypatch) -> list[int]:
    """The widths of every copy made (decoded and re-encoded), in order."""
    widths: list[int] = []
    narrowed = derivatives.narrowed_with

    def counting(settings, data, width):
        widths.append(width)
        return narrowed(settings, data, width)

    monkeypatch.setattr(derivatives, "narrowed_with", counting)
    return widths


def size_of(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.size


def photo(client, product_id, w=None, v=None, index=0, **headers):
    params = {k: val for k, val in {"w": w, "v": v}.items() if val is not None}
    return client.get(f"/v1/products/{product_id}/images/{index}", params=params,
                      headers=headers)


def display_of(client, product_id) -> str:
    return client.get(f"/v1/products/{product_id}").json()["images"][0]["display_sha256"]


def test_a_width_is_made_once_then_read_from_the_media_store(client, made):
    ingest(client, "coat", image_bytes(size=(1600, 1200), fmt="JPEG", seed=1))
    display = display_of(client, "coat")
    first = photo(client, "coat", w=400, v=display)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg"
    assert size_of(first.content) == (400, 300)  # the display copy's 4:3, narrowed
    assert made == [400]
    again = photo(client, "coat", w=400, v=display)
    assert again.content == first.content and made == [400]  # read, not made again
    media = client.app.state.services.media
    assert media.get_derived(display, "w400") == first.content
    assert size_of(photo(client, "coat", w=160).content) == (160, 120)
    assert made == [400, 160]  # another width is another copy, made once too
    assert photo(client, "coat", w=160).status_code == 200 and made == [400, 160]
    # The main photo's route serves the same copies.
    main = client.get("/v1/products/coat/image", params={"w": 400, "v": display})
    assert main.content == first.content and made == [400, 160]


def test_content_addressed_copies_are_cached_for_a_year_and_revalidate(client, made):
    ingest(client, "scarf", image_bytes(size=(800, 600), fmt="JPEG"))
    display = display_of(client, "scarf")
    pinned = photo(client, "scarf", w=400, v=display)
    assert pinned.headers["cache-control"] == YEAR_IMMUTABLE
    assert pinned.headers["etag"] == f'"{display}-w400"'
    assert pinned.headers["x-content-type-options"] == "nosniff"
    # By product id alone the URL may name a new photo after a re-upload: revalidated.
    assert photo(client, "scarf", w=400).headers["cache-control"] == "public, no-cache"
    # Each width has its own ETag, unlike the display copy's.
    assert photo(client, "scarf", w=160).headers["etag"] == f'"{display}-w160"'
    assert photo(client, "scarf").headers["etag"] == f'"{display}"'
    made.clear()
    not_modified = photo(client, "scarf", w=400, v=display,
                         **{"If-None-Match": pinned.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == pinned.headers["etag"]
    assert not_modified.headers["cache-control"] == YEAR_IMMUTABLE
    other_width = photo(client, "scarf", w=160, **{"If-None-Match": pinned.headers["etag"]})
    assert other_width.status_code == 200 and size_of(other_width.content) == (160, 120)
    assert made == []  # made already, above: a 304 and a read


def test_never_enlarged_and_a_narrow_enough_display_copy_is_served_as_it_is(client, made):
    ingest(client, "tall", image_bytes(size=(600, 800), fmt="JPEG", seed=2))
    display = display_of(client, "tall")
    as_stored = client.app.state.services.media.get(display)
    assert size_of(as_stored) == (600, 800)
    wide = photo(client, "tall", w=1000)
    assert wide.status_code == 200 and wide.content == as_stored and made == []
    assert size_of(photo(client, "tall", w=400).content) == (400, 533)  # 3:4 kept
    ingest(client, "tiny", image_bytes(size=(120, 90), fmt="JPEG"))
    for width in (160, 400, 1000):
        assert size_of(photo(client, "tiny", w=width).content) == (120, 90)


def test_a_portrait_photo_at_the_detail_width_keeps_the_display_copy_s_height(client, made):
    ingest(client, "dress", image_bytes(size=(1200, 1600), fmt="JPEG", seed=3))
    assert size_of(photo(client, "dress", w=1000).content) == (768, DISPLAY_MAX_SIDE)
    ingest(client, "belt", image_bytes(size=(3000, 1000), fmt="JPEG"))
    width, height = size_of(photo(client, "belt", w=1000).content)
    assert width == 1000 and abs(height - 333) <= 1


def test_a_width_not_configured_is_422_naming_the_allowed_ones(client, made):
    ingest(client, "hat", image_bytes(size=(400, 400), fmt="JPEG"))
    answer = photo(client, "hat", w=500)
    assert answer.status_code == 422
    body = answer.json()
    assert body["field"] == "w" and "160, 400, 1000" in body["message"]
    for wrong in ("0", "-400", "abc", "100000"):
        assert photo(client, "hat", w=wrong).status_code == 422
    assert made == []


def test_unknown_products_photos_and_stored_copies_are_404(client, made):
    assert photo(client, "ghost", w=400).status_code == 404
    ingest(client, "sock", image_bytes(size=(400, 400), fmt="JPEG"))
    assert photo(client, "sock", w=400, index=3).status_code == 404
    media = client.app.state.services.media
    media.path(display_of(client, "sock")).unlink()  # the store lost it
    lost = photo(client, "sock", w=160)
    assert lost.status_code == 404 and "no image stored" in lost.json()["message"]
    assert made == []


def test_widths_come_from_the_settings(tmp_path, tiny_encoder, monkeypatch):
    monkeypatch.setenv("VITRINE_PHOTO_WIDTHS", "300, 120")
    assert CatalogueSettings().photo_widths == [120, 300]
    monkeypatch.setenv("VITRINE_PHOTO_WIDTHS", "[200]")
    with TestClient(make_app(tmp_path / "data", tiny_encoder)) as client:
        ingest(client, "bag", image_bytes(size=(800, 800), fmt="JPEG"))
        assert size_of(photo(client, "bag", w=200).content) == (200, 200)
        refused = photo(client, "bag", w=400)
        assert refused.status_code == 422 and "the widths are: 200" in refused.text


def test_a_product_ingested_before_display_copies_gets_re_encoded_copies(client, made):
    photo_with_zip = image_bytes(size=(900, 600), fmt="JPEG") + zip_bytes()
    ingest(client, "old", photo_with_zip)
    store = client.app.state.services.store
    [point] = store.retrieve([point_id("old")], with_vectors=True)
    del point.payload["display_sha256"]  # as a product indexed before display copies
    del point.payload["images"]
    store.upsert([point])
    original = point.payload["image_sha256"]
    served = client.get("/v1/products/old/image", params={"w": 1000, "v": original})
    assert served.status_code == 200
    assert b"PK\x03\x04" not in served.content  # never the uploaded bytes, even when narrow
    assert size_of(served.content) == (900, 600) and made == [1000]
    assert served.headers["etag"] == f'"{original}-w1000"'
    assert served.headers["cache-control"] == YEAR_IMMUTABLE


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buf.getvalue()


def test_simultaneous_first_requests_leave_one_whole_copy(tmp_path, monkeypatch):
    settings = CatalogueSettings(data_dir=tmp_path)
    media = FolderMediaStore(settings.media_dir)
    digest = media.put(image_bytes(size=(1000, 800), fmt="JPEG", seed=4))
    narrowed = derivatives.narrowed_with
    start = threading.Barrier(8)

    def together(settings, data, width):
        start.wait(5)  # every thread has missed the cache: all make it, all store it
        return narrowed(settings, data, width)

    monkeypatch.setattr(derivatives, "narrowed_with", together)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(
        photo_at_width(settings, media, digest, 400, display=True))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8 and len(set(results)) == 1
    assert media.get_derived(digest, "w400") == results[0]
    assert size_of(results[0]) == (400, 320)
    folder = (settings.media_dir / "derived").rglob("*")
    assert [p.name for p in folder if p.is_file()] == [f"{digest}.w400"]  # no temp files


def test_copies_are_kept_apart_from_originals_by_name(tmp_path):
    media = FolderMediaStore(tmp_path)
    digest = media.put(b"an original")
    with pytest.raises(KeyError):
        media.get_derived(digest, "w400")
    media.put_derived(digest, "w400", b"a copy")
    assert media.get_derived(digest, "w400") == b"a copy" and media.get(digest) == b"an original"
    for wrong in ("../x", "w 400", ""):
        with pytest.raises(ValueError):
            media.put_derived(digest, wrong, b"x")
    with pytest.raises(ValueError):
        media.get_derived("../../etc", "w400")
    with pytest.raises(UnknownWidth, match="the widths are: 160, 400, 1000"):
        photo_at_width(CatalogueSettings(data_dir=tmp_path), media, digest, 401, display=True)


def test_copies_live_in_an_s3_store_too(tmp_path, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    from vitrine.wiring import open_media

    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="photos")
        settings = CatalogueSettings(data_dir=tmp_path, media_url="s3://photos/vitrine")
        media = open_media(settings)
        digest = media.put(image_bytes(size=(800, 400), fmt="JPEG"))
        with pytest.raises(KeyError):
            media.get_derived(digest, "w160")
        copy = photo_at_width(settings, media, digest, 160, display=True)
        assert size_of(copy) == (160, 80)
        assert open_media(settings).get_derived(digest, "w160") == copy  # another replica
        keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(
            Bucket="photos")["Contents"]}
        prefix = f"{digest[:2]}/{digest[2:4]}/{digest}"
        assert keys == {f"vitrine/{prefix}", f"vitrine/derived/{prefix}.w160"}
        assert hashlib.sha256(media.get(digest)).hexdigest() == digest
