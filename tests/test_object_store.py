"""download_many into object storage: moto's S3 server on 127.0.0.1 as S3, file:// as a local store.

The destination is addressed as a user addresses S3: an s3:// URL, with the endpoint
(AWS_ENDPOINT_URL) and credentials taken from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from _moto import MotoS3, moto_s3

import verbex_client as vc
from verbex_client.testing import Sandbox

SMALL = {f"call-{i}": os.urandom(50_000 + i) for i in range(12)}
BIG_ID, BIG = "call-big", os.urandom(7 << 20)  # over one 5 MiB part: a multipart upload


def crc_hex(data: bytes) -> str:
    return google_crc32c.value(data).to_bytes(4, "big").hex()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def bucket(moto: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (bucket names: 3-63 lowercase letters, digits, dashes)."""
    readable = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    return moto.bucket(f"t-{readable}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    for call_id, data in SMALL.items():
        verbex_sandbox.add_recording(call_id, data, file_name=f"{call_id}.ogg")
    verbex_sandbox.add_recording(BIG_ID, BIG, file_name="big.ogg")
    return verbex_sandbox


def many(sb: Sandbox, ids: list[str], dest: str, **kwargs: Any) -> vc.BatchResult:
    with sb.client() as client:
        return client.recordings.download_many(ids, dest, **kwargs)


def test_a_batch_lands_byte_identical_with_checksums_as_metadata_and_a_manifest(
    sb: Sandbox, moto: MotoS3, bucket: str
) -> None:
    sb.add_recording("twin-1", b"first take" * 1000, file_name="same.ogg")
    sb.add_recording("twin-2", b"second take" * 1000, file_name="same.ogg")
    ids = [*SMALL, BIG_ID, "twin-1", "twin-2"]
    result = many(sb, ids, f"s3://{bucket}/archive/2026", concurrency=4)
    assert result.ok, [str(i.error) for i in result.failed]
    assert [i.call_id for i in result.results] == ids
    expected = {**SMALL, BIG_ID: BIG, "twin-1": b"first take" * 1000, "twin-2": b"second take" * 1000}
    for item in result.results:
        assert item.status == "downloaded" and item.path is None and item.url is not None
        key = item.url.removeprefix(f"s3://{bucket}/")
        assert moto.read(bucket, key) == expected[item.call_id]
        meta = moto.metadata(bucket, key)
        assert meta["crc32c"] == crc_hex(expected[item.call_id])
        assert meta["verbex-call-id"] == item.call_id
    # The collision rule of a directory: the first keeps the name, the other gets the call id.
    names = {i.call_id: i.url.rsplit("/", 1)[1] for i in result.results if i.url}
    twins = {names["twin-1"], names["twin-2"]}
    assert twins in ({"same.ogg", "same.twin-2.ogg"}, {"same.ogg", "same.twin-1.ogg"})
    assert names[BIG_ID] == "big.ogg"
    assert len(moto.recordings(bucket, "archive/2026/")) == len(ids)
    manifest = [json.loads(line) for line in moto.read(bucket, "archive/2026/manifest.jsonl").splitlines()]
    by_call = {e["call_id"]: e for e in manifest}
    assert set(by_call) == set(ids)
    assert by_call[BIG_ID]["bytes"] == len(BIG) and by_call[BIG_ID]["crc32c"] == crc_hex(BIG)
    assert by_call["twin-2"]["file"] == names["twin-2"]
    # Segments were merged: nothing left for the next run to read but manifest.jsonl.
    assert moto.keys(bucket, "archive/2026/.verbex/manifests/") == []
    assert moto.open_uploads(bucket) == []


def test_a_rerun_skips_every_object_without_calling_the_api(sb: Sandbox, moto: MotoS3, bucket: str) -> None:
    ids = [*SMALL, BIG_ID]
    assert many(sb, ids, f"s3://{bucket}/a/", concurrency=4).ok
    sb.clear_requests()
    again = many(sb, ids, f"s3://{bucket}/a/", concurrency=4)
    assert [i.status for i in again.results] == ["skipped"] * len(ids)
    assert all(i.url == f"s3://{bucket}/a/{i.call_id}.ogg" for i in again.results if i.call_id != BIG_ID)
    assert sb.api_requests() == [] and sb.storage_requests() == []


def test_a_rerun_fetches_again_an_object_whose_checksum_no_longer_matches(
    sb: Sandbox, moto: MotoS3, bucket: str
) -> None:
    assert many(sb, ["call-1"], f"s3://{bucket}/a/").ok
    # Someone replaced the object (same size, other bytes, other metadata).
    moto.s3.put_object(Bucket=bucket, Key="a/call-1.ogg", Body=os.urandom(len(SMALL["call-1"])))
    sb.clear_requests()
    again = many(sb, ["call-1"], f"s3://{bucket}/a/", overwrite=True)
    assert again.results[0].status == "downloaded" and len(sb.api_requests()) == 1
    assert moto.read(bucket, "a/call-1.ogg") == SMALL["call-1"]


@pytest.mark.parametrize("call_id", ["call-3", BIG_ID], ids=["single-put", "multipart"])
def test_a_body_corrupted_by_storage_never_appears_under_its_key(
    sb: Sandbox, moto: MotoS3, bucket: str, call_id: str
) -> None:
    sb.corrupt_next_download(at=4000)
    result = many(sb, [call_id], f"s3://{bucket}/c/")
    (item,) = result.results
    assert item.status == "failed" and isinstance(item.error, vc.IntegrityError)
    assert moto.recordings(bucket, "c/") == []
    assert moto.open_uploads(bucket) == []  # the multipart upload was aborted, not left open
    # Nothing wrong was recorded either: the rerun downloads it, verified.
    again = many(sb, [call_id], f"s3://{bucket}/c/")
    assert again.results[0].status == "downloaded"
    name = "big.ogg" if call_id == BIG_ID else f"{call_id}.ogg"
    assert moto.read(bucket, f"c/{name}") == (BIG if call_id == BIG_ID else SMALL[call_id])


def test_a_dropped_connection_resumes_into_the_same_upload(sb: Sandbox, moto: MotoS3, bucket: str) -> None:
    sb.cut_next_download(after_bytes=6 << 20)  # after the first part went up
    result = many(sb, [BIG_ID], f"s3://{bucket}/r/")
    assert result.ok
    ranges = [r.headers.get("Range") for r in sb.storage_requests()]
    assert ranges == [None, f"bytes={6 << 20}-"]
    assert moto.read(bucket, "r/big.ogg") == BIG
    assert moto.metadata(bucket, "r/big.ogg")["crc32c"] == crc_hex(BIG)


def test_an_object_already_there_is_kept_unless_overwrite(sb: Sandbox, moto: MotoS3, bucket: str) -> None:
    moto.s3.put_object(Bucket=bucket, Key="o/call-2.ogg", Body=b"not ours")
    result = many(sb, ["call-2"], f"s3://{bucket}/o/")
    (item,) = result.results
    assert item.status == "failed" and isinstance(item.error, FileExistsError)
    assert f"s3://{bucket}/o/call-2.ogg exists" in str(item.error)
    assert moto.read(bucket, "o/call-2.ogg") == b"not ours"
    assert many(sb, ["call-2"], f"s3://{bucket}/o/", overwrite=True).ok
    assert moto.read(bucket, "o/call-2.ogg") == SMALL["call-2"]


def test_two_runs_at_once_into_one_prefix_never_share_a_name(sb: Sandbox, moto: MotoS3, bucket: str) -> None:
    """Each run starts with an empty manifest; the name claims in the bucket decide."""
    twins = {f"twin-{n}": os.urandom(20_000 + n) for n in range(6)}
    for call_id, data in twins.items():
        sb.add_recording(call_id, data, file_name="take.ogg")
    runs: list[vc.BatchResult] = []
    ids = list(twins)

    def run(part: list[str]) -> None:
        runs.append(many(sb, part, f"s3://{bucket}/t/", concurrency=3))

    threads = [
        threading.Thread(target=run, args=(ids[0::2],)),
        threading.Thread(target=run, args=(ids[1::2],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    items = [i for r in runs for i in r.results]
    assert len(items) == len(ids) and all(i.status == "downloaded" for i in items)
    urls = [i.url for i in items]
    assert len(set(urls)) == len(ids)
    assert sum(u is not None and u.endswith("/take.ogg") for u in urls) == 1
    for item in items:
        assert item.url is not None
        assert moto.read(bucket, item.url.removeprefix(f"s3://{bucket}/")) == twins[item.call_id]


def test_a_file_url_is_a_local_store_with_the_same_rules(sb: Sandbox, tmp_path: Path) -> None:
    dest = f"file://{tmp_path.as_posix()}/archive/"
    result = many(sb, [*SMALL, BIG_ID], dest, concurrency=4)
    assert result.ok
    for call_id, data in SMALL.items():
        assert (tmp_path / "archive" / f"{call_id}.ogg").read_bytes() == data
    assert (tmp_path / "archive" / "big.ogg").read_bytes() == BIG
    lines = (tmp_path / "archive" / "manifest.jsonl").read_text().splitlines()
    assert {json.loads(line)["call_id"] for line in lines} == {*SMALL, BIG_ID}
    sb.clear_requests()
    assert {i.status for i in many(sb, [*SMALL, BIG_ID], dest).results} == {"skipped"}
    assert sb.api_requests() == []


# -- bad input: a clear error before any recording is fetched ----------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_bucket_that_does_not_exist(sb: Sandbox, moto: MotoS3) -> None:
    with pytest.raises(vc.DestinationError, match=r"s3://no-such-bucket/x/: the bucket does not exist"):
        many(sb, ["call-1"], "s3://no-such-bucket/x/")
    assert sb.requests == []


def test_an_unreachable_destination(
    sb: Sandbox, moto: MotoS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(vc.DestinationError, match=rf"cannot reach s3://{bucket}/x/") as caught:
        many(sb, ["call-1"], f"s3://{bucket}/x/")
    assert "no AWS credentials" not in str(caught.value)  # the keys are there: the store is not
    assert sb.requests == []


def test_missing_credentials(sb: Sandbox, moto: MotoS3, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(vc.DestinationError, match="no AWS credentials in the environment"):
        many(sb, ["call-1"], f"s3://{bucket}/x/")
    assert sb.requests == []


@pytest.mark.parametrize(
    ("dest", "match"),
    [
        ("s3:///prefix/", "names no bucket"),
        ("file://relative/dir/", "absolute path"),
        ("s3://bucket/a\nb/", "control characters"),
    ],
)
def test_a_malformed_destination_url(sb: Sandbox, dest: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        many(sb, ["call-1"], dest)
    assert sb.requests == []


def test_without_the_extra_the_error_names_the_pip_command(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)  # as if obstore were not installed
    with pytest.raises(vc.ConfigurationError, match=r"pip install 'verbex-client\[object-store\]'"):
        many(sb, ["call-1"], "s3://bucket/x/")
    assert sb.requests == []


def test_async_download_many_into_s3_lands_verified_and_a_rerun_calls_no_api(
    sb: Sandbox, moto: MotoS3, bucket: str
) -> None:
    """AsyncVerbex takes a URL too: the same guarantees (checksum metadata, a multipart upload
    for the big one, one manifest), its callbacks on the event loop."""
    ids = [*SMALL, BIG_ID]
    dest = f"s3://{bucket}/async/"
    threads: set[str] = set()
    heard: list[str] = []
    sizes: dict[str, int] = {}

    def on_item(item: vc.BatchItem) -> None:
        threads.add(threading.current_thread().name)
        heard.append(item.call_id)

    def progress(call_id: str, done: int, total: int | None) -> None:
        threads.add(threading.current_thread().name)
        sizes[call_id] = done

    async def batch(**kwargs: Any) -> vc.BatchResult:
        async with sb.async_client() as client:
            return await client.recordings.download_many(ids, dest, concurrency=4, **kwargs)

    result = asyncio.run(batch(on_item=on_item, progress=progress))
    assert result.ok, [str(i.error) for i in result.failed]
    assert [i.call_id for i in result.results] == ids and sorted(heard) == sorted(ids)
    assert threads == {threading.main_thread().name}  # every callback on the loop's thread
    assert sizes[BIG_ID] == len(BIG) and sizes["call-0"] == len(SMALL["call-0"])
    expected = {**SMALL, BIG_ID: BIG}
    for item in result.results:
        assert item.status == "downloaded" and item.url is not None
        key = item.url.removeprefix(f"s3://{bucket}/")
        assert moto.read(bucket, key) == expected[item.call_id]
        assert moto.metadata(bucket, key)["crc32c"] == crc_hex(expected[item.call_id])
        assert moto.metadata(bucket, key)["verbex-call-id"] == item.call_id
    manifest = [json.loads(line) for line in moto.read(bucket, "async/manifest.jsonl").splitlines()]
    assert sorted(e["call_id"] for e in manifest) == sorted(ids)
    assert moto.open_uploads(bucket) == []

    sb.clear_requests()
    again = asyncio.run(batch())
    assert [i.status for i in again.results] == ["skipped"] * len(ids)
    assert sb.api_requests() == [] and sb.storage_requests() == []


def test_a_cancelled_async_batch_stops_and_keeps_what_finished(
    sb: Sandbox, moto: MotoS3, bucket: str
) -> None:
    """Cancelled from its first on_item: no callback runs after, the batch thread stops, what
    landed is complete and recorded (the rerun skips it without an API call)."""
    ids = list(SMALL)
    dest = f"s3://{bucket}/cancel/"
    heard: list[str] = []

    async def cancelled() -> None:
        async with sb.async_client() as client:
            task: asyncio.Task[vc.BatchResult] | None = None

            def on_item(item: vc.BatchItem) -> None:
                heard.append(item.call_id)
                assert task is not None
                task.cancel()

            def progress(call_id: str, done: int, total: int | None) -> None:
                pass  # a callback per chunk: the batch's chance to notice the cancellation

            task = asyncio.create_task(
                client.recordings.download_many(ids, dest, concurrency=1, on_item=on_item, progress=progress)
            )
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(cancelled())
    assert len(heard) == 1  # nothing reported after the cancellation
    landed = {key.removeprefix("cancel/").removesuffix(".ogg") for key in moto.recordings(bucket, "cancel/")}
    assert heard[0] in landed and len(landed) < len(ids) // 2  # it stopped, far from the end
    for cid in landed:
        assert moto.read(bucket, f"cancel/{cid}.ogg") == SMALL[cid]
        assert moto.metadata(bucket, f"cancel/{cid}.ogg")["crc32c"] == crc_hex(SMALL[cid])
    assert moto.open_uploads(bucket) == []

    sb.clear_requests()

    async def rerun() -> vc.BatchResult:
        async with sb.async_client() as client:
            return await client.recordings.download_many(ids, dest, concurrency=4)

    again = asyncio.run(rerun())
    assert again.ok
    assert {i.call_id for i in again.results if i.status == "skipped"} == landed
    assert len(sb.api_requests()) == len(ids) - len(landed)  # what finished was recorded
    assert len(moto.recordings(bucket, "cancel/")) == len(ids)


def test_async_download_many_checks_the_destination_before_any_request(sb: Sandbox, moto: MotoS3) -> None:
    async def run() -> None:
        async with sb.async_client() as client:
            await client.recordings.download_many(["call-1"], "s3://no-such-bucket/x/")

    with pytest.raises(vc.DestinationError, match="the bucket does not exist"):
        asyncio.run(run())
    assert sb.requests == []


def test_memory_stays_flat_for_a_large_upload(moto: MotoS3, tmp_path: Path) -> None:
    """Peak RSS after a 128 MiB recording streamed into S3 is within 32 MiB of that after a
    6 MiB one (parts of 5 MiB, two in flight): the object is never held whole."""
    bucket = moto.bucket("memory-flat")
    code = f"""
import os, resource
from verbex_client.testing import Sandbox
src = {str(tmp_path / "big.bin")!r}
with open(src, "wb") as f:
    for _ in range(128):
        f.write(os.urandom(1 << 20))
with Sandbox() as sb:
    sb.add_recording("small", os.urandom(6 << 20), file_name="small.bin")
    sb.add_recording("big", src, file_name="big.bin")
    with sb.client() as client:
        assert client.recordings.download_many(["small"], "s3://{bucket}/m/").ok
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = client.recordings.download_many(["big"], "s3://{bucket}/m/")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(result.results[0].status, result.results[0].bytes, before, after)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    status, size, before_kib, after_kib = out.stdout.split()
    assert status == "downloaded" and int(size) == 128 << 20
    grew = int(after_kib) - int(before_kib)
    assert grew < 32 * 1024, f"RSS grew by {grew // 1024} MiB"
    head = moto.s3.head_object(Bucket=bucket, Key="m/big.bin")
    assert head["ContentLength"] == 128 << 20


def test_batches_add_to_one_manifest_and_a_refetched_call_keeps_one_line(
    sb: Sandbox, moto: MotoS3, bucket: str
) -> None:
    first, second = list(SMALL)[:5], list(SMALL)[5:]
    assert many(sb, first, f"s3://{bucket}/m/").ok
    assert many(sb, second, f"s3://{bucket}/m/").ok
    assert many(sb, first[:2], f"s3://{bucket}/m/", overwrite=True).ok  # fetched again: replaced lines
    lines = [json.loads(line) for line in moto.read(bucket, "m/manifest.jsonl").splitlines()]
    assert sorted(e["call_id"] for e in lines) == sorted(SMALL)
    assert moto.keys(bucket, "m/.verbex/manifests/") == []


def test_segments_left_by_an_interrupted_run_are_read_and_merged(
    sb: Sandbox, moto: MotoS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verbex_client import distributed

    monkeypatch.setenv("VERBEX_API_KEY", sb.api_key)
    ids = list(SMALL)[:4]
    # A partition's run: it leaves its lines in segments, as a run that was interrupted does.
    distributed.download_partition(distributed.ClientSettings(base_url=sb.base_url), ids, f"s3://{bucket}/s/")
    assert moto.keys(bucket, "s/.verbex/manifests/") != [] and not moto.exists(bucket, "s/manifest.jsonl")
    sb.clear_requests()
    again = many(sb, ids, f"s3://{bucket}/s/")
    assert [i.status for i in again.results] == ["skipped"] * 4 and sb.api_requests() == []
    assert sorted(
        json.loads(x)["call_id"] for x in moto.read(bucket, "s/manifest.jsonl").splitlines()
    ) == sorted(ids)
    assert moto.keys(bucket, "s/.verbex/manifests/") == []
