"""Uploaded originals in an S3-compatible bucket, for workers that share no volume.

Fills the `catalogue.media.MediaStore` role: content-addressed by SHA-256, written before the
upload is acknowledged (S3 PUT is durable once it returns), `get` raises
KeyError for a missing original. Needs the `s3` extra (boto3); credentials come
from boto3's usual chain (environment, config files, instance role).
"""

from __future__ import annotations

import hashlib
import urllib.parse

from catalogue.media import derived_key, media_key


class S3MediaStore:
    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None) -> S3MediaStore:
        """`url` is s3://bucket/optional/prefix."""
        import boto3
        from botocore.config import Config

        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        client = boto3.client("s3", endpoint_url=endpoint_url or None, config=Config(
            retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5,
            read_timeout=30))
        return cls(client, parsed.netloc, parsed.path)

    def key(self, digest: str) -> str:
        return self.prefix + media_key(digest)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=data,
                                   ContentType="application/octet-stream")
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(digest))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise KeyError(f"no original stored under {digest}") from None

    def put_derived(self, digest: str, name: str, data: bytes) -> None:
        # One PUT is atomic: a reader gets the previous object or this one, whole.
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + derived_key(digest, name),
                               Body=data, ContentType="application/octet-stream")

    def get_derived(self, digest: str, name: str) -> bytes:
        key = self.prefix + derived_key(digest, name)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise KeyError(f"no {name} copy stored for {digest}") from None

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True
