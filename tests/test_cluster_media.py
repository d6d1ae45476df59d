"""Originals in S3 (moto's in-process mock of the S3 API) behave like the local folder."""

from __future__ import annotations

import hashlib

import pytest

from catalogue.media import FolderMediaStore
from catalogue.settings import CatalogueSettings
from vitrine.wiring import open_media

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="originals")
        yield


def test_s3_store_is_content_addressed_and_durable(s3, tmp_path):
    settings = CatalogueSettings(data_dir=tmp_path, media_url="s3://originals/vitrine/media")
    media = open_media(settings)
    assert type(media).__name__ == "S3MediaStore"
    data = b"\x89PNG not really"
    digest = media.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert media.put(data) == digest  # stored once
    assert media.exists(digest) and media.get(digest) == data
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="originals")["Contents"]]
    assert keys == [f"vitrine/media/{digest[:2]}/{digest[2:4]}/{digest}"]
    # Another process (a worker) opening the same URL reads it back.
    assert open_media(settings).get(digest) == data
    with pytest.raises(KeyError):
        media.get("0" * 64)
    assert not media.exists("0" * 64)
    with pytest.raises(ValueError):
        media.get("../etc/passwd")
    assert not (tmp_path / "media").exists()  # nothing written locally


def test_default_is_the_local_folder(tmp_path):
    media = open_media(CatalogueSettings(data_dir=tmp_path))
    assert type(media) is FolderMediaStore and media.root == tmp_path / "media"
