"""moto's S3 server on 127.0.0.1, addressed as a user addresses S3: endpoint and keys from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ALLOW_HTTP",
    "AWS_DEFAULT_REGION",
)


class MotoS3:
    """A running moto server: `endpoint`, and boto3's `s3` client to look at what landed."""

    def __init__(self, endpoint: str, s3: Any) -> None:
        self.endpoint, self.s3 = endpoint, s3

    def bucket(self, name: str) -> str:
        self.s3.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def recordings(self, bucket: str, prefix: str) -> list[str]:
        """The keys under `prefix` that are recordings (not the manifest, not our control objects)."""
        return [
            k
            for k in self.keys(bucket, prefix)
            if not k[len(prefix) :].startswith(".verbex/") and not k.endswith("manifest.jsonl")
        ]

    def read(self, bucket: str, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def metadata(self, bucket: str, key: str) -> dict[str, str]:
        return dict(self.s3.head_object(Bucket=bucket, Key=key)["Metadata"])

    def exists(self, bucket: str, key: str) -> bool:
        return key in self.keys(bucket, key)

    def open_uploads(self, bucket: str) -> list[Any]:
        return list(self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """Start moto's S3 server, point the environment at it (restored afterwards), stop it."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.fail("moto's S3 server is required: run `make install` (installs moto[server] and boto3)")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            for name in [n for n in os.environ if n.startswith(("AWS_", "GOOGLE_"))]:
                env.delenv(name)
            env.setenv("AWS_ENDPOINT_URL", endpoint)  # what boto3 and the AWS CLI read
            env.setenv("AWS_ACCESS_KEY_ID", "moto-test-key")
            env.setenv("AWS_SECRET_ACCESS_KEY", "moto-test-secret")
            env.setenv("AWS_ALLOW_HTTP", "true")  # moto serves plain http
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
            env.setenv("AWS_REGION", "us-east-1")
            # No request may leave this machine, credentials lookups included.
            env.setenv("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
            yield MotoS3(endpoint, boto3.client("s3", endpoint_url=endpoint))
        finally:
            server.stop()
