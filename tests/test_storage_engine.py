"""The storage engine on the real path: HTTPS, gzip objects, concurrent writers, hostile peers.

Every test talks to a real server on 127.0.0.1 (the sandbox, over TLS where it says so).
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import itertools
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st
from test_downloads import with_client

import verbex_client as vc
from verbex_client import _files
from verbex_client.testing import Sandbox

DATA = os.urandom(1_500_000)
CRC = google_crc32c.value(DATA).to_bytes(4, "big").hex()
NAME = "take.ogg"


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    verbex_sandbox.add_recording("c1", DATA, file_name=NAME)
    return verbex_sandbox


@pytest.fixture(scope="module")
def tls_sandbox() -> Iterator[Sandbox]:
    with Sandbox(tls=True) as sandbox:
        sandbox.add_recording("c1", DATA, file_name=NAME)
        yield sandbox


def download(mode: str, sb: Sandbox, dest: Path | str, call_id: str = "c1", **kwargs: Any) -> Any:
    options = kwargs.pop("client_options", {})
    return with_client(mode, sb, lambda c: c.recordings.download(call_id, dest, **kwargs), **options)


def read_stream(mode: str, sb: Sandbox, call_id: str = "c1", **options: Any) -> tuple[bytes, str | None]:
    if mode == "sync":
        with sb.client(**options) as client, client.recordings.stream(call_id) as stream:
            return b"".join(stream), stream.content_encoding

    async def run() -> tuple[bytes, str | None]:
        async with sb.async_client(**options) as client, client.recordings.stream(call_id) as stream:
            return b"".join([chunk async for chunk in stream]), stream.content_encoding

    return asyncio.run(run())


def chain(error: BaseException) -> list[BaseException]:
    """The exception and everything reachable from it through __cause__ and __context__."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


def chain_text(error: BaseException) -> str:
    return "\n".join(f"{e!s} {e!r} {e.args!r} {getattr(e, '__notes__', '')}" for e in chain(error))


# -- HTTPS ------------------------------------------------------------------------------------


def test_downloads_and_streams_over_https_trust_the_configured_ca(
    mode: str, tls_sandbox: Sandbox, tmp_path: Path
) -> None:
    assert tls_sandbox.base_url.startswith("https://")
    result = download(mode, tls_sandbox, tmp_path)
    assert (tmp_path / NAME).read_bytes() == DATA and result.crc32c == CRC
    assert read_stream(mode, tls_sandbox) == (DATA, None)


def test_an_untrusted_storage_certificate_is_a_download_error(mode: str, tls_sandbox: Sandbox) -> None:
    """Certificate checks are never skipped: storage on a server our CA bundle does not vouch for."""
    with Sandbox(tls=True) as other:  # its own throw-away CA
        other.add_recording("c1", DATA, file_name=NAME)
        with other.client() as client:
            url = client.recordings.signed_url("c1").url
        tls_sandbox.respond_next(_api_reply(url))
        with pytest.raises(vc.DownloadError, match=r"connection to 127\.0\.0\.1 failed") as info:
            download(mode, tls_sandbox, ".", client_options={"max_retries": 0})
        assert other.storage_requests() == []  # the handshake failed: no request was sent
    assert "X-Goog-Signature" not in chain_text(info.value)
    with pytest.raises(vc.APIConnectionError):  # and without our CA even the API is refused
        download(mode, tls_sandbox, ".", client_options={"verify": True})


def test_ssl_cert_file_is_honoured_like_httpx_does(
    mode: str, tls_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_sandbox.ca_bundle))
    options = {"api_key": tls_sandbox.api_key, "base_url": tls_sandbox.base_url}

    def run(client: Any) -> Any:
        return client.recordings.download("c1", tmp_path)

    if mode == "sync":
        with vc.Verbex(**options) as client:
            run(client)
    else:

        async def go() -> None:
            async with vc.AsyncVerbex(**options) as client:
                await run(client)

        asyncio.run(go())
    assert (tmp_path / NAME).read_bytes() == DATA


# -- gzip-stored objects ----------------------------------------------------------------------


def test_a_gzip_stored_object_is_delivered_as_stored_on_every_path(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    """GCS would decompress it (decompressive transcoding) while x-goog-hash stays the stored
    bytes' hash: we ask for the stored bytes and verify exactly those, download and stream alike."""
    stored = gzip.compress(DATA)
    sb.add_recording("gz", stored, file_name="gz.ogg", content_encoding="gzip")
    result = download(mode, sb, tmp_path, call_id="gz")
    assert (tmp_path / "gz.ogg").read_bytes() == stored
    assert result.content_encoding == "gzip" and result.bytes == len(stored)
    assert result.crc32c == google_crc32c.value(stored).to_bytes(4, "big").hex()
    assert gzip.decompress((tmp_path / "gz.ogg").read_bytes()) == DATA
    assert read_stream(mode, sb, "gz") == (stored, "gzip")
    assert all(r.headers.get("Accept-Encoding") == "gzip" for r in sb.storage_requests())


def test_a_gzip_object_resumed_after_a_cut_is_still_the_stored_bytes(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    stored = gzip.compress(DATA)
    sb.add_recording("gz", stored, file_name="gz.ogg", content_encoding="gzip")
    sb.cut_next_download(len(stored) // 2)
    result = download(mode, sb, tmp_path, call_id="gz")
    assert result.resumed and (tmp_path / "gz.ogg").read_bytes() == stored


# -- sizes ------------------------------------------------------------------------------------


def test_a_200_carrying_only_the_tail_is_refused_not_saved(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    """A broken proxy answers the resume with 200, a Content-Range and the tail, no checksum."""
    sb.cut_next_download(500_000)
    sb.tail_as_200_next()
    with pytest.raises(vc.DownloadError, match="not the whole object"):
        download(mode, sb, tmp_path)
    assert not (tmp_path / NAME).exists()
    assert (tmp_path / f"{NAME}.part").read_bytes() == DATA[:500_000]  # kept: still a good prefix


def test_a_complete_part_answered_416_finishes_with_a_one_byte_check(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / f"{NAME}.part").write_bytes(DATA)  # a run that died just before its rename
    result = download(mode, sb, tmp_path)
    assert (tmp_path / NAME).read_bytes() == DATA and result.crc32c == CRC and result.resumed
    ranges = [r.headers.get("Range") for r in sb.storage_requests()]
    assert ranges == [f"bytes={len(DATA)}-", f"bytes={len(DATA) - 1}-"]  # 416, then the last byte


def test_a_complete_but_wrong_part_is_caught_by_the_checksum(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.part").write_bytes(bytes(len(DATA)))  # right size, wrong bytes
    with pytest.raises(vc.IntegrityError, match="crc32c"):
        download(mode, sb, tmp_path)
    assert list(tmp_path.iterdir()) == []  # the wrong .part is gone too


# -- re-signing -------------------------------------------------------------------------------


def test_re_signing_is_not_a_failed_attempt(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.expire_urls(after_seconds=0, count=1)  # dead on arrival
    result = download(mode, sb, tmp_path, client_options={"max_retries": 0})
    assert (tmp_path / NAME).read_bytes() == DATA and result.attempts == 2
    sb.expire_urls(after_bytes=400_000, count=1)  # dies mid-download
    result = download(mode, sb, tmp_path, overwrite=True, client_options={"max_retries": 0})
    assert (tmp_path / NAME).read_bytes() == DATA and result.resumed
    assert not (tmp_path / f"{NAME}.part").exists()


def test_failure_messages_count_attempts_in_words(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.fail_next(5, status=503, target="storage")
    with pytest.raises(vc.DownloadError) as info:
        download(mode, sb, tmp_path, client_options={"max_retries": 0})
    assert "(1 attempt without progress)" in str(info.value)


# -- options ----------------------------------------------------------------------------------


def test_with_options_timeout_applies_to_downloads_after_one_ran(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    """The storage pool is shared, its timeout is per request: a copy's timeout is honoured."""

    async def both_async(client: Any) -> None:
        await client.recordings.download("c1", tmp_path / "a.ogg")
        sb.stall_next_download(300_000, seconds=4.0)
        await client.with_options(timeout=0.3).recordings.download("c1", tmp_path / "b.ogg")

    def both(client: Any) -> Any:
        if mode == "async":
            return both_async(client)
        client.recordings.download("c1", tmp_path / "a.ogg")
        sb.stall_next_download(300_000, seconds=4.0)
        return client.with_options(timeout=0.3).recordings.download("c1", tmp_path / "b.ogg")

    started = time.monotonic()
    with_client(mode, sb, both, timeout=30.0)
    assert time.monotonic() - started < 3.0  # the copy's 0.3 s read timeout, not the 30 s one
    assert (tmp_path / "b.ogg").read_bytes() == DATA


# -- insecure and hostile URLs ----------------------------------------------------------------


def _api_reply(url: str) -> bytes:
    import json

    return json.dumps(
        {"file_name": NAME, "signed_url": url, "expiration_minutes": 10, "expires_at": "2099-01-01T00:00:00Z"}
    ).encode()


SIGNATURE = "deadbeef" * 8


def test_plain_http_storage_is_refused_unless_loopback_or_allowed(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    url = f"http://storage.example.invalid/bucket/take.ogg?X-Goog-Signature={SIGNATURE}"
    sb.respond_next(_api_reply(url))
    with pytest.raises(vc.DownloadError, match="plain http") as info:
        download(mode, sb, tmp_path)
    assert "storage.example.invalid" in str(info.value) and SIGNATURE not in chain_text(info.value)
    assert sb.storage_requests() == [] and list(tmp_path.iterdir()) == []
    # Opting in gets past the check (and then fails to resolve the made-up host, as it should).
    sb.respond_next(_api_reply(url), count=3)
    with pytest.raises(vc.DownloadError, match=r"connection to storage\.example\.invalid") as info:
        download(mode, sb, tmp_path, client_options={"allow_insecure_storage": True, "max_retries": 0})
    assert SIGNATURE not in chain_text(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"https://storage.example.invalid/a b.ogg?X-Goog-Signature={SIGNATURE}",
        f"https://storage.example.invalid/a.ogg?X-Goog-Signature={SIGNATURE}\r\nX-Injected: 1",
        f"https://storage.example.invalid/a.ogg?X-Goog-Signature={SIGNATURE}é",
        f"https://storage.example.invalid:99999/a.ogg?X-Goog-Signature={SIGNATURE}",
        "not a url",
    ],
)
def test_hostile_signed_urls_are_download_errors_with_no_secret_in_the_chain(
    mode: str, sb: Sandbox, tmp_path: Path, url: str
) -> None:
    sb.respond_next(_api_reply(url), count=2)
    with pytest.raises(vc.DownloadError) as info:
        download(mode, sb, tmp_path)
    assert SIGNATURE not in chain_text(info.value)
    with pytest.raises(vc.DownloadError) as info:
        read_stream(mode, sb)
    assert SIGNATURE not in chain_text(info.value)
    assert sb.storage_requests() == []


def test_a_connection_failure_chains_nothing_that_holds_the_url(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    sb.respond_next(_api_reply(f"http://127.0.0.1:{port}/b/take.ogg?X-Goog-Signature={SIGNATURE}"))
    with pytest.raises(vc.DownloadError, match=r"connection to 127\.0\.0\.1") as info:
        download(mode, sb, tmp_path, client_options={"max_retries": 0})
    assert SIGNATURE not in chain_text(info.value)
    assert len(chain(info.value)) == 1


# -- the destination ---------------------------------------------------------------------------


def test_a_full_disk_is_a_destination_error_and_keeps_the_resumable_part(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwrite = os.pwrite
    written = [0]

    def filling_pwrite(fd: int, data: Any, offset: int) -> int:
        if written[0] >= 600_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_pwrite(fd, data, offset)
        written[0] += n
        return n

    monkeypatch.setattr(os, "pwrite", filling_pwrite)
    with pytest.raises(vc.DestinationError) as info:
        download(mode, sb, tmp_path)
    assert info.value.errno == errno.ENOSPC and info.value.path == str(tmp_path / f"{NAME}.part")
    assert "No space left" in str(info.value)
    part = tmp_path / f"{NAME}.part"
    assert DATA.startswith(part.read_bytes()) and part.stat().st_size > 0  # a prefix: resumable
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    assert download(mode, sb, tmp_path).resumed and (tmp_path / NAME).read_bytes() == DATA


def test_a_read_only_destination_is_a_destination_error_before_any_storage_request(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any) -> int:
        if str(path).endswith(".part"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(vc.DestinationError) as info:
        download(mode, sb, tmp_path)
    assert info.value.errno == errno.EROFS and sb.storage_requests() == []


def test_dest_ending_in_a_separator_is_a_directory(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    download(mode, sb, f"{tmp_path / 'new'}{os.sep}")
    assert (tmp_path / "new" / NAME).read_bytes() == DATA
    assert not (tmp_path / "new" / "manifest.jsonl").exists()  # single downloads keep no manifest


def test_an_existing_file_named_as_target_is_a_clear_file_exists_error(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "mine.ogg").write_bytes(b"keep")
    with pytest.raises(FileExistsError) as info:
        download(mode, sb, tmp_path / "mine.ogg")
    assert info.value.filename == str(tmp_path / "mine.ogg") and info.value.errno == errno.EEXIST
    assert str(info.value) == f"{tmp_path / 'mine.ogg'} exists (pass overwrite=True to replace it)"


# -- one writer per target ---------------------------------------------------------------------


def test_two_threads_downloading_one_target_give_one_verified_file(sb: Sandbox, tmp_path: Path) -> None:
    """Before: both appended to one .part and a double-size file was renamed into place."""
    sb.storage_bytes_per_second = 3_000_000  # ~0.5 s each: the two overlap
    outcomes: list[object] = []

    def one() -> None:
        with sb.client() as client:
            try:
                outcomes.append(client.recordings.download("c1", tmp_path))
            except FileExistsError as error:
                outcomes.append(error)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert (tmp_path / NAME).read_bytes() == DATA and sorted(p.name for p in tmp_path.iterdir()) == [NAME]
    assert len(outcomes) == 2
    assert any(isinstance(o, vc.DownloadResult) for o in outcomes)
    other = [o for o in outcomes if isinstance(o, FileExistsError)]
    assert all("another download finished it" in str(o) for o in other)


def _download_in_process(api_key: str, base_url: str, dest: str, queue: Any) -> None:
    from verbex_client import Verbex

    with Verbex(api_key=api_key, base_url=base_url) as client:
        try:
            result = client.recordings.download_many(["c1"], dest)
            queue.put([(i.status, i.bytes) for i in result.results])
        except BaseException as error:
            queue.put(repr(error))


def test_two_processes_downloading_one_batch_give_one_verified_file(sb: Sandbox, tmp_path: Path) -> None:
    sb.storage_bytes_per_second = 1_000_000  # ~1.5 s: longer than the second process takes to start
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_download_in_process, args=(sb.api_key, sb.base_url, str(tmp_path), queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert (tmp_path / NAME).read_bytes() == DATA
    # One process downloaded it; the other waited for it (or found it in the manifest).
    assert sorted(map(str, outcomes)) == [str([("downloaded", len(DATA))]), str([("skipped", len(DATA))])]
    assert not (tmp_path / f"{NAME}.part").exists()


# -- names that look like ours ------------------------------------------------------------------


def test_a_recording_named_like_a_partial_file_is_its_own_file(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    other = os.urandom(300_000)
    sb.add_recording("c2", other, file_name=f"{NAME}.part")
    result = with_client(mode, sb, lambda c: c.recordings.download_many(["c1", "c2"], tmp_path))
    assert result.ok
    paths = {i.call_id: i.path for i in result.results}
    assert paths["c1"] == tmp_path / NAME and paths["c1"].read_bytes() == DATA
    assert paths["c2"] is not None and not paths["c2"].name.endswith(".part")
    assert paths["c2"].read_bytes() == other


def test_a_recording_named_manifest_jsonl_never_gets_manifest_lines(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    other = os.urandom(1000)
    sb.add_recording("c2", other, file_name="manifest.jsonl")
    first = with_client(mode, sb, lambda c: c.recordings.download_many(["c1", "c2"], tmp_path))
    again = with_client(mode, sb, lambda c: c.recordings.download_many(["c1", "c2"], tmp_path))
    assert first.ok and again.ok and [i.status for i in again.results] == ["skipped", "skipped"]
    c2 = next(i for i in first.results if i.call_id == "c2")
    assert c2.path is not None and c2.path.name != "manifest.jsonl" and c2.path.read_bytes() == other


# -- async cancellation ------------------------------------------------------------------------


def test_async_cancellation_during_a_hung_tls_handshake_is_prompt(sb: Sandbox, tmp_path: Path) -> None:
    """The storage host accepts the connection and never answers the handshake."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    sb.respond_next(_api_reply(f"https://127.0.0.1:{port}/b/take.ogg?X-Goog-Signature={SIGNATURE}"))

    async def run() -> float:
        async with sb.async_client(timeout=8.0) as client:
            task = asyncio.ensure_future(client.recordings.download("c1", tmp_path))
            await asyncio.sleep(0.3)  # inside the handshake by now; not a wait for a result
            assert not task.done()
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)
            return time.monotonic() - started

    try:
        assert asyncio.run(run()) < 1.0
    finally:
        silent.close()
    assert not (tmp_path / NAME).exists()


# -- portability -------------------------------------------------------------------------------


@pytest.fixture
def without_linux_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """What macOS or Windows lack: every call below has a fallback in _files."""
    for name in ("fdatasync", "pread", "pwrite", "O_NOFOLLOW", "posix_fadvise"):
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setattr(_files, "EARLY_WRITEBACK", 256 << 10)  # so DATA reaches that fallback too


class DiskCalls:
    """Records, in order, the early-writeback requests and the fdatasyncs (still performing
    them), from every thread; posix_fadvise is put in where the platform lacks it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fadvise_error: OSError | None = None) -> None:
        self.events: list[tuple[str, int, int]] = []
        real_fadvise = getattr(os, "posix_fadvise", None)
        real_sync = getattr(os, "fdatasync", None) or os.fsync
        dontneed = getattr(os, "POSIX_FADV_DONTNEED", 4)

        def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
            assert advice == dontneed
            self.events.append(("writeback", offset, length))
            if fadvise_error is not None:
                raise fadvise_error
            if real_fadvise is not None:
                real_fadvise(fd, offset, length, advice)

        def sync(fd: int) -> None:
            self.events.append(("sync", 0, 0))
            real_sync(fd)

        monkeypatch.setattr(os, "POSIX_FADV_DONTNEED", dontneed, raising=False)
        monkeypatch.setattr(os, "posix_fadvise", fadvise, raising=False)
        monkeypatch.setattr(os, "fdatasync", sync, raising=False)
        monkeypatch.setattr(_files, "EARLY_WRITEBACK", 256 << 10)

    def ranges(self) -> list[tuple[int, int]]:
        return [(offset, offset + length) for kind, offset, length in self.events if kind == "writeback"]


def test_with_fsync_writeback_starts_while_the_rest_arrives(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk writes of a fsynced download start every EARLY_WRITEBACK bytes, over exactly the
    bytes written, before the one fdatasync; a resumed download goes on from where it was."""
    calls = DiskCalls(monkeypatch)
    sb.cut_next_download(700_000)
    result = download(mode, sb, tmp_path)
    assert result.resumed and (tmp_path / NAME).read_bytes() == DATA
    ranges = calls.ranges()
    assert ranges[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(end - start >= 256 << 10 for start, end in ranges)
    assert len(DATA) - (256 << 10) < ranges[-1][1] <= len(DATA)
    kinds = [kind for kind, _, _ in calls.events]
    assert kinds.index("sync") > max(i for i, kind in enumerate(kinds) if kind == "writeback")
    assert kinds.count("sync") == 1


def test_without_fsync_no_writeback_is_started(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = DiskCalls(monkeypatch)
    download(mode, sb, tmp_path, fsync=False)
    assert (tmp_path / NAME).read_bytes() == DATA and calls.events == []


def test_a_failing_writeback_request_leaves_the_flush_to_fdatasync(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """posix_fadvise is advice: a file system that refuses it (EINVAL, ENOSYS) changes nothing."""
    calls = DiskCalls(monkeypatch, fadvise_error=OSError(errno.EINVAL, "Invalid argument"))
    assert download(mode, sb, tmp_path).crc32c == CRC
    assert (tmp_path / NAME).read_bytes() == DATA
    assert calls.ranges() and [kind for kind, _, _ in calls.events][-1] == "sync"


def test_downloads_resume_and_verify_without_the_linux_only_calls(
    mode: str, sb: Sandbox, tmp_path: Path, without_linux_calls: None
) -> None:
    sb.cut_next_download(700_000)
    result = download(mode, sb, tmp_path)
    assert result.resumed and (tmp_path / NAME).read_bytes() == DATA
    (tmp_path / "again.ogg.part").write_bytes(DATA[:100_000])
    assert download(mode, sb, tmp_path / "again.ogg").resumed
    assert (tmp_path / "again.ogg").read_bytes() == DATA
    sb.ignore_range_next()  # a restart from zero truncates through the fallback too
    (tmp_path / "third.ogg.part").write_bytes(b"x" * 5000)
    assert download(mode, sb, tmp_path / "third.ogg").crc32c == CRC
    assert (tmp_path / "third.ogg").read_bytes() == DATA


# -- proxies and logs -------------------------------------------------------------------------


def test_storage_goes_through_the_configured_proxy_with_the_same_tls_rules(mode: str, tmp_path: Path) -> None:
    """`proxy=` and `verify=` apply to the API and to storage alike, sync (urllib3) and async (httpx)."""
    from _proxy import ConnectProxy

    with Sandbox(tls=True) as sb, ConnectProxy() as proxy:
        sb.add_recording("c1", DATA, file_name=NAME)
        stored = gzip.compress(DATA)
        sb.add_recording("gz", stored, file_name="gz.ogg", content_encoding="gzip")
        result = download(mode, sb, tmp_path, client_options={"proxy": proxy.url})
        gz = download(mode, sb, tmp_path, call_id="gz", client_options={"proxy": proxy.url})
        streamed = read_stream(mode, sb, "gz", proxy=proxy.url)
        assert {f"CONNECT 127.0.0.1:{sb.port}"} == set(proxy.requests)
        assert len(proxy.requests) >= 2  # the API pool's tunnel and the storage pool's
    assert (tmp_path / NAME).read_bytes() == DATA and result.crc32c == CRC
    assert (tmp_path / "gz.ogg").read_bytes() == stored and gz.content_encoding == "gzip"
    assert streamed == (stored, "gzip")  # the same bytes on every path


def test_storage_goes_through_the_environments_proxy(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`HTTPS_PROXY` from the environment reaches the storage pool too (read at its first
    download, as httpx reads it per client), not only the API pool."""
    from _proxy import ConnectProxy

    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Sandbox(tls=True) as sb, ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        sb.add_recording("c1", DATA, file_name=NAME)
        result = download(mode, sb, tmp_path)
        assert set(proxy.requests) == {f"CONNECT 127.0.0.1:{sb.port}"}
        assert len(proxy.requests) >= 2  # the API pool's tunnel and the storage pool's
    assert (tmp_path / NAME).read_bytes() == DATA and result.crc32c == CRC


def test_downloads_log_each_storage_step_without_the_query(
    mode: str, sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    sb.cut_next_download(300_000)
    download(mode, sb, tmp_path)
    ours = [r.getMessage() for r in caplog.records if r.name == "verbex_client"]
    storage = [line for line in ours if line.startswith("storage GET 127.0.0.1/")]
    assert len(storage) == 2 and "whole object" in storage[0] and "bytes=" in storage[1]
    assert any("resuming" in line for line in ours) and any(
        line.startswith("verified take.ogg") for line in ours
    )
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for url in sb.issued_urls:
        assert url.split("?", 1)[1] not in everything
        assert "X-Goog-Signature=" not in everything


def test_re_signing_is_logged(
    mode: str, sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="verbex_client")
    sb.expire_urls(after_seconds=0, count=1)
    download(mode, sb, tmp_path)
    assert any(r.getMessage() == "re-signing the URL for call c1" for r in caplog.records)


def test_streams_have_a_readable_repr(sb: Sandbox) -> None:
    with sb.client() as client:
        stream = client.recordings.stream("c1")
        assert repr(stream) == "RecordingStream(call_id='c1', not entered)"
        with stream:
            assert repr(stream) == f"RecordingStream(call_id='c1', 0 of {len(DATA)} bytes)"
            assert "X-Goog" not in repr(stream)


# -- hostile URLs, generated ------------------------------------------------------------------

_CLOSED_PORT: list[int] = []


def _closed_port() -> int:
    if not _CLOSED_PORT:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            _CLOSED_PORT.append(probe.getsockname()[1])
    return _CLOSED_PORT[0]


hostile_text = st.text(
    alphabet=st.sampled_from(list("aZ09-._~%/?#&=+ \t\r\n\x00\x7fé€\u202e\ud7ff:@[]")), max_size=30
)


@seed(20261201)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scheme=st.sampled_from(["https", "http", "HTTP", "ftp", "", "javascript"]),
    host=st.sampled_from(["127.0.0.1", "[::1]", "localhost", "", "127.0.0.1:99999", "exa mple.com"]),
    path=hostile_text,
    extra=hostile_text,
)
@example(scheme="https", host="127.0.0.1", path="/a b.ogg", extra="")
@example(scheme="https", host="127.0.0.1", path="/a.ogg", extra="\r\nX-Injected: 1")
@example(scheme="https", host="127.0.0.1", path="/a.ogg", extra="é")
@example(scheme="http", host="127.0.0.1:99999", path="/a.ogg", extra="")
@example(scheme="https", host="127.0.0.1", path="/a.ogg", extra="#frag")
def test_any_signed_url_gives_a_download_error_with_no_secret_anywhere_in_its_chain(
    sb: Sandbox, tmp_path: Path, scheme: str, host: str, path: str, extra: str
) -> None:
    if host.startswith("127.0.0.1") and ":" not in host:
        host = f"127.0.0.1:{_closed_port()}"  # nothing listens: refused at once
    url = f"{scheme}://{host}{path}?X-Goog-Credential=cred%2F{SIGNATURE[:8]}&X-Goog-Signature={SIGNATURE}{extra}"
    sb.respond_next(_api_reply(url), count=2)
    with sb.client(max_retries=0) as client:
        for action in (
            lambda: client.recordings.download("c1", tmp_path, overwrite=True),
            lambda: b"".join(client.recordings.stream("c1").__enter__()),
        ):
            try:
                action()
            except vc.DownloadError as error:
                text = chain_text(error)
                assert SIGNATURE not in text and f"cred%2F{SIGNATURE[:8]}" not in text, text
            else:
                pytest.fail(f"{url!r} downloaded from a port nobody listens on")
    sb.faults.clear()
    assert not (tmp_path / NAME).exists()


def test_closing_a_with_options_copy_leaves_the_client_usable(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    async def run_async(client: Any) -> None:
        async with client.with_options(max_retries=0) as copy:
            await copy.recordings.download("c1", tmp_path / "a.ogg")
        await client.recordings.download("c1", tmp_path / "b.ogg")

    def run(client: Any) -> Any:
        if mode == "async":
            return run_async(client)
        with client.with_options(max_retries=0) as copy:
            copy.recordings.download("c1", tmp_path / "a.ogg")
        return client.recordings.download("c1", tmp_path / "b.ogg")

    with_client(mode, sb, run)
    assert (tmp_path / "b.ogg").read_bytes() == DATA


def test_a_closed_client_refuses_downloads_with_client_closed_error(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    if mode == "sync":
        client = sb.client()
        client.close()
        with pytest.raises(vc.ClientClosedError):
            client.recordings.download("c1", tmp_path)
    else:

        async def run() -> None:
            client = sb.async_client()
            await client.aclose()
            with pytest.raises(vc.ClientClosedError):
                await client.recordings.download("c1", tmp_path)

        asyncio.run(run())
    assert sb.requests == [] and list(tmp_path.iterdir()) == []


def test_a_single_download_to_a_url_is_refused_before_any_request(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="download_many destination"):
        download(mode, sb, "s3://bucket/prefix/")
    assert sb.requests == [] and not Path("s3:").exists()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"verify": 5}, TypeError),
        ({"proxy": 8080}, TypeError),
        ({"proxy": "ftp://proxy.example:21"}, ValueError),
        ({"trust_env": "no"}, TypeError),
        ({"allow_insecure_storage": 1}, TypeError),
    ],
)
def test_network_options_are_checked_at_construction(
    mode: str, sb: Sandbox, options: dict[str, Any], error: type[Exception]
) -> None:
    cls = vc.Verbex if mode == "sync" else vc.AsyncVerbex
    with pytest.raises(error):
        cls(api_key=sb.api_key, base_url=sb.base_url, **options)
    assert sb.requests == []
