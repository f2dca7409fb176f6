"""Downloads against the sandbox: byte-identical or a documented exception, never a partial target."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

import verbex_client as vc
from conftest import SleepRecorder, fake_time
from verbex_client.testing import Sandbox

DATA = os.urandom(1_000_000)  # the same bytes for every test in a run
MD5 = hashlib.md5(DATA).hexdigest()
CRC = google_crc32c.value(DATA).to_bytes(4, "big").hex()
NAME = "webcall_c1_agent_x.ogg"


def with_client(
    mode: str, sb: Sandbox, action: Callable[[Any], Any], sleeps: SleepRecorder | None = None, **options: Any
) -> Any:
    """Run `action(client)` on a sync client, or await it on an async one: one test body, both twins."""
    recorder = sleeps or SleepRecorder()
    if mode == "sync":
        with sb.client(**options) as client:
            fake_time(client, recorder)
            return action(client)

    async def run() -> Any:
        async with sb.async_client(**options) as client:
            fake_time(client, recorder)
            result = action(client)
            return await result if inspect.isawaitable(result) else result

    return asyncio.run(run())


def download(mode: str, sb: Sandbox, dest: Path, **kwargs: Any) -> vc.DownloadResult:
    options = kwargs.pop("client_options", {})
    sleeps = kwargs.pop("sleeps", None)
    call_id = kwargs.pop("call_id", "c1")
    return with_client(mode, sb, lambda c: c.recordings.download(call_id, dest, **kwargs), sleeps, **options)  # type: ignore[no-any-return]


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    verbex_sandbox.add_recording("c1", DATA, file_name=NAME)
    return verbex_sandbox


def only_target(dest: Path, name: str = NAME) -> Path:
    assert sorted(p.name for p in dest.iterdir()) == [name]
    return dest / name


def nothing_in(dest: Path) -> None:
    assert list(dest.iterdir()) == []


# -- the plain path ---------------------------------------------------------------------------


def test_download_into_a_directory_is_verified_and_named_by_the_server(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    seen: list[tuple[int, int | None]] = []
    result = download(mode, sb, tmp_path, progress=lambda done, total: seen.append((done, total)))
    target = only_target(tmp_path)
    assert target.read_bytes() == DATA
    assert result == vc.DownloadResult("c1", target, len(DATA), None, False, 1, CRC)
    assert seen[-1] == (len(DATA), len(DATA)) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    storage = sb.storage_requests()
    assert len(storage) == 1 and "Authorization" not in storage[0].headers  # the key never goes to storage


def test_download_to_an_explicit_file_path(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    result = download(mode, sb, tmp_path / "mine.ogg")
    assert result.path == tmp_path / "mine.ogg" and only_target(tmp_path, "mine.ogg").read_bytes() == DATA


def test_existing_file_target_fails_before_any_request(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "mine.ogg").write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        download(mode, sb, tmp_path / "mine.ogg")
    assert sb.requests == [] and (tmp_path / "mine.ogg").read_bytes() == b"keep me"


def test_existing_target_in_a_directory_fails_before_any_byte(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        download(mode, sb, tmp_path)
    assert sb.storage_requests() == [] and (tmp_path / NAME).read_bytes() == b"keep me"


def test_overwrite_replaces(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(b"old")
    download(mode, sb, tmp_path, overwrite=True)
    assert only_target(tmp_path).read_bytes() == DATA


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"call_id": ""}, ValueError),
        ({"call_id": 5}, TypeError),
        ({"expires_in_minutes": 0}, ValueError),
        ({"progress": "yes"}, TypeError),
        ({"fsync": "no"}, TypeError),  # truthy: would have meant the opposite
        ({"overwrite": 1}, TypeError),
    ],
)
def test_bad_arguments_send_nothing(
    mode: str, sb: Sandbox, tmp_path: Path, kwargs: dict[str, Any], error: type
) -> None:
    with pytest.raises(error):
        download(mode, sb, tmp_path, **kwargs)
    assert sb.requests == []


class FsyncCounter:
    """Counts fsync/fdatasync calls (still performing them) from every thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for name in ("fsync", "fdatasync"):
            monkeypatch.setattr(os, name, self._counting(getattr(os, name)))

    def _counting(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            self.calls += 1
            real(fd)

        return call


def test_downloads_are_fsynced_by_default(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = FsyncCounter(monkeypatch)
    download(mode, sb, tmp_path)
    assert counter.calls >= 2  # the file, then its directory after the rename
    assert only_target(tmp_path).read_bytes() == DATA


def test_fsync_false_skips_the_flush_but_keeps_the_atomic_rename(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = FsyncCounter(monkeypatch)
    sb.cut_next_download(400_000)  # progress: resumed at once
    sb.cut_next_download(0)  # no progress: with max_retries=0 the download gives up
    with pytest.raises(vc.DownloadError):
        download(mode, sb, tmp_path, client_options={"max_retries": 0}, fsync=False)
    assert not (tmp_path / NAME).exists() and (tmp_path / (NAME + ".part")).stat().st_size == 400_000
    result = download(mode, sb, tmp_path, fsync=False)
    assert result.resumed and only_target(tmp_path).read_bytes() == DATA
    assert counter.calls == 0


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        ("../../x.ogg", "x.ogg"),
        ("/etc/passwd", "passwd"),
        ("..", "c1.bin"),
        ("a/b", "b"),
        ("a\\b.ogg", "b.ogg"),
        ("bad\x01\x1fname.ogg", "badname.ogg"),
        (".hidden.ogg", "hidden.ogg"),
        ("", "c1.bin"),
        ("...", "c1.bin"),
    ],
)
def test_server_file_names_stay_inside_dest(
    mode: str, verbex_sandbox: Sandbox, tmp_path: Path, server_name: str, expected: str
) -> None:
    verbex_sandbox.add_recording("c1", DATA[:1000], file_name=server_name)
    dest = tmp_path / "dest"
    dest.mkdir()
    result = download(mode, verbex_sandbox, dest)
    assert result.path == dest / expected and result.path.read_bytes() == DATA[:1000]
    assert [p.name for p in tmp_path.iterdir()] == ["dest"]


# -- resume -----------------------------------------------------------------------------------


def test_an_existing_part_file_is_resumed_with_a_range(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / (NAME + ".part")).write_bytes(DATA[:300_000])
    result = download(mode, sb, tmp_path)
    assert only_target(tmp_path).read_bytes() == DATA
    assert result.resumed and result.crc32c == CRC and result.attempts == 1
    assert sb.storage_requests()[0].headers["Range"] == "bytes=300000-"


def test_a_wrong_part_file_is_caught_by_the_checksum_and_removed(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / (NAME + ".part")).write_bytes(b"\0" * 300_000)
    with pytest.raises(vc.IntegrityError):
        download(mode, sb, tmp_path)
    nothing_in(tmp_path)


def test_a_reply_ignoring_the_range_restarts_from_zero(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / (NAME + ".part")).write_bytes(b"\0" * 300_000)  # wrong bytes: a clean restart discards them
    sb.ignore_range_next()
    result = download(mode, sb, tmp_path)
    assert only_target(tmp_path).read_bytes() == DATA and result.crc32c == CRC


def test_a_206_with_the_wrong_start_is_rejected(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / (NAME + ".part")).write_bytes(DATA[:1000])
    sb.shift_range_next(10)
    with pytest.raises(vc.DownloadError, match="Content-Range"):
        download(mode, sb, tmp_path)
    assert not (tmp_path / NAME).exists()


@pytest.mark.parametrize("fraction", [0.10, 0.50, 0.99])
def test_cut_connections_resume_from_the_bytes_on_disk(
    mode: str, sb: Sandbox, tmp_path: Path, fraction: float
) -> None:
    cut = int(len(DATA) * fraction)
    sb.cut_next_download(cut)
    result = download(mode, sb, tmp_path)
    assert only_target(tmp_path).read_bytes() == DATA
    assert result.resumed and result.attempts == 2 and result.crc32c == CRC
    assert sb.storage_requests()[1].headers["Range"] == f"bytes={cut}-"


def test_storage_silent_for_the_read_timeout_mid_body_is_dropped_and_resumed(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    """The bytes received before the silence are kept (up to the last whole read of 256 KiB);
    the silence itself is not waited out."""
    sb.stall_next_download(300_000, seconds=4.0)
    started = time.monotonic()
    result = download(mode, sb, tmp_path, client_options={"timeout": 0.3})
    assert time.monotonic() - started < 3.0  # well under the 4 s silence
    assert only_target(tmp_path).read_bytes() == DATA
    assert result.resumed and result.attempts == 2 and result.crc32c == CRC
    resumed_at = int(sb.storage_requests()[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 300_000 - (256 << 10) <= resumed_at <= 300_000


def test_a_slow_but_steady_link_is_not_mistaken_for_a_stall(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    """Filling a 1 MiB buffer takes ~0.5 s here, longer than the read timeout: bytes keep coming,
    so the one reply carries the whole object."""
    sb.storage_bytes_per_second = 2_000_000
    result = download(mode, sb, tmp_path, client_options={"timeout": 0.2})
    assert only_target(tmp_path).read_bytes() == DATA
    assert result.attempts == 1 and not result.resumed
    assert len(sb.storage_requests()) == 1


def test_a_symlink_named_like_the_target_or_its_part_is_never_written_through(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    """A link planted in the destination must not redirect the download outside it."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / NAME).symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        download(mode, sb, dest, overwrite=True)
    (dest / NAME).unlink()
    (dest / f"{NAME}.part").symlink_to(outside)
    with pytest.raises(vc.DestinationError, match="symbolic link"):
        download(mode, sb, dest)
    assert outside.read_bytes() == b"keep me"


def test_repeated_failures_without_progress_are_bounded(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.cut_next_download(0, count=50)
    sleeps = SleepRecorder()
    with pytest.raises(vc.DownloadError) as info:
        download(mode, sb, tmp_path, client_options={"max_retries": 2}, sleeps=sleeps)
    assert not isinstance(info.value, vc.IntegrityError)
    assert len(sb.storage_requests()) == 3 and sleeps.delays == [0.5, 1.0]
    nothing_in(tmp_path)


def test_progress_resets_the_failure_budget(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.cut_next_download(100_000, count=5)  # five cuts, each after fresh progress: more than max_retries
    result = download(mode, sb, tmp_path, client_options={"max_retries": 1})
    assert result.attempts == 6 and only_target(tmp_path).read_bytes() == DATA


# -- expiry -----------------------------------------------------------------------------------


def test_url_expired_before_the_first_byte_is_re_signed(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.expire_urls(after_seconds=0, count=1)
    result = download(mode, sb, tmp_path)
    assert only_target(tmp_path).read_bytes() == DATA and result.crc32c == CRC
    assert len(sb.api_requests()) == 2


def test_url_expiring_mid_download_is_re_signed_and_resumed(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.expire_urls(after_bytes=400_000, count=1)
    result = download(mode, sb, tmp_path)
    assert only_target(tmp_path).read_bytes() == DATA and result.resumed
    ranges = [r.headers.get("Range") for r in sb.storage_requests()]
    assert ranges[0] is None and ranges[-1] == "bytes=400000-" and len(sb.api_requests()) == 2


def test_s3_style_403_request_has_expired_is_re_signed(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    sb.fail_next(status=403, target="storage", body=body, content_type="application/xml")
    download(mode, sb, tmp_path)
    assert only_target(tmp_path).read_bytes() == DATA and len(sb.api_requests()) == 2


def test_a_url_already_expired_by_the_clock_is_re_signed_before_use(mode: str, tmp_path: Path) -> None:
    import time

    with Sandbox(clock=lambda: time.time() - 3600) as sb:  # server's expires_at is already in our past
        sb.add_recording("c1", DATA, file_name=NAME)
        download(mode, sb, tmp_path)
        assert len(sb.api_requests()) == 2 and len(sb.storage_requests()) == 1
    assert only_target(tmp_path).read_bytes() == DATA


def test_expiring_forever_gives_up(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    """Re-signing has its own bound (a clock far off): the first URL, then MAX_RESIGNS fresh ones."""
    from verbex_client._fetch import MAX_RESIGNS

    sb.expire_urls(after_seconds=0)
    with pytest.raises(vc.DownloadError, match="expired"):
        download(mode, sb, tmp_path)
    assert len(sb.storage_requests()) == 1 + MAX_RESIGNS
    nothing_in(tmp_path)


# -- integrity and storage errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hashes", "caught_by"),
    [(("crc32c", "md5"), "crc32c"), (("crc32c",), "crc32c"), (("md5",), "md5")],
)
def test_a_corrupted_byte_is_an_integrity_error_with_no_file_left(
    mode: str, sb: Sandbox, tmp_path: Path, hashes: tuple[str, ...], caught_by: str
) -> None:
    sb.storage_hashes = hashes
    sb.corrupt_next_download(at=123_456)
    with pytest.raises(vc.IntegrityError, match=caught_by):
        download(mode, sb, tmp_path)
    nothing_in(tmp_path)


@pytest.mark.parametrize(
    ("hashes", "md5", "crc"),
    [(("crc32c", "md5"), None, CRC), (("crc32c",), None, CRC), (("md5",), MD5, CRC), ((), MD5, CRC)],
)
def test_md5_is_computed_only_when_storage_gives_no_crc32c(
    mode: str, sb: Sandbox, tmp_path: Path, hashes: tuple[str, ...], md5: str | None, crc: str
) -> None:
    """crc32c (C) runs ~10x faster than md5, so md5 is skipped whenever crc32c can verify."""
    sb.storage_hashes = hashes
    result = download(mode, sb, tmp_path)
    assert (result.md5, result.crc32c) == (md5, crc)
    assert only_target(tmp_path).read_bytes() == DATA


def test_without_the_crc32c_c_extension_md5_verifies(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(google_crc32c, "implementation", "python")  # its fallback: far too slow to use
    sb.corrupt_next_download(at=10)
    with pytest.raises(vc.IntegrityError, match="md5"):
        download(mode, sb, tmp_path)
    result = download(mode, sb, tmp_path)
    assert (result.md5, result.crc32c) == (MD5, None)


def test_the_download_code_imports_without_google_crc32c() -> None:
    """Its absence is handled (md5 verifies): resolving the library at import must not break that."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['google_crc32c'] = None\n"  # None: `import google_crc32c` fails
        "import verbex_client._download\n"
        "from verbex_client._fetch import Digests\n"
        "assert Digests().crc32c() is None and Digests().md5() is not None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_hashes_from_a_resumed_reply_add_to_the_first(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later reply naming only md5 must not leave the md5-less (crc32c-only) hashing unverified."""
    from verbex_client import _fetch

    replies = iter([{"crc32c": bytes.fromhex(CRC)}, {"md5": bytes.fromhex(MD5)}])
    monkeypatch.setattr(_fetch, "parse_goog_hash", lambda values: next(replies))
    sb.cut_next_download(500_000)
    sb.corrupt_next_download(at=600_000)  # inside the resumed reply
    with pytest.raises(vc.IntegrityError, match="crc32c"):
        download(mode, sb, tmp_path)
    nothing_in(tmp_path)


def test_crc32c_is_checked_too(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verbex_client import _fetch

    monkeypatch.setattr(_fetch, "parse_goog_hash", lambda values: {"crc32c": b"\0\0\0\0"})
    with pytest.raises(vc.IntegrityError, match="crc32c"):
        download(mode, sb, tmp_path)
    nothing_in(tmp_path)


def test_too_long_content_length_is_resumed(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.wrong_length_next_download(delta=100)
    assert download(mode, sb, tmp_path).crc32c == CRC


def test_too_short_content_length_is_completed_from_the_stored_size(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    """x-goog-stored-content-length is the object's size: a body that ends 100 bytes short of it
    is resumed for the rest, and the checksum judges the whole."""
    sb.wrong_length_next_download(delta=-100)
    result = download(mode, sb, tmp_path)
    assert result.resumed and result.crc32c == CRC and only_target(tmp_path).read_bytes() == DATA


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "NoSuchKey"),
        (403, "SignatureDoesNotMatch"),
        (403, "AccessDenied"),
        (400, "MalformedSecurityHeader"),
    ],
)
def test_storage_refusals_are_download_errors_without_secrets(
    mode: str, sb: Sandbox, tmp_path: Path, status: int, code: str
) -> None:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>Refused.</Message></Error>".encode()
    sb.fail_next(status=status, target="storage", body=body, content_type="application/xml")
    with pytest.raises(vc.DownloadError) as info:
        download(mode, sb, tmp_path)
    error = info.value
    assert (error.status_code, error.code, error.call_id) == (status, code, "c1")
    text = str(error) + repr(error)
    assert "X-Goog" not in text and sb.api_key not in text and "Refused." in text
    nothing_in(tmp_path)


def test_real_no_such_key_from_the_sandbox(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    with sb.client() as client:
        signed = client.recordings.signed_url("c1")
    sb.remove_recording("c1")
    sb.add_recording("c1", DATA, file_name="other-name.ogg")  # the API now signs a different object
    sb._by_path.clear()  # ...which storage no longer has
    with pytest.raises(vc.DownloadError) as info:
        download(mode, sb, tmp_path)
    assert info.value.code == "NoSuchKey" and info.value.status_code == 404
    assert signed.url not in str(info.value)


def test_storage_5xx_is_retried(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.fail_next(2, status=503, target="storage", body=b"<Error><Code>ServiceUnavailable</Code></Error>")
    sleeps = SleepRecorder()
    assert download(mode, sb, tmp_path, sleeps=sleeps).crc32c == CRC
    assert sleeps.delays == [0.5, 1.0]


def test_storage_reset_is_retried(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.reset_next(target="storage")
    assert download(mode, sb, tmp_path).attempts == 2


# -- streaming --------------------------------------------------------------------------------


def read_stream(mode: str, sb: Sandbox, **kwargs: Any) -> tuple[str, int | None, list[bytes]]:
    if mode == "sync":
        with sb.client() as client, client.recordings.stream("c1", **kwargs) as stream:
            return stream.file_name, stream.total, list(stream)

    async def run() -> tuple[str, int | None, list[bytes]]:
        async with sb.async_client() as client, client.recordings.stream("c1", **kwargs) as stream:
            return stream.file_name, stream.total, [chunk async for chunk in stream]

    return asyncio.run(run())


def test_stream_yields_the_recording_in_chunks(mode: str, sb: Sandbox) -> None:
    name, total, chunks = read_stream(mode, sb, chunk_size=65_536)
    assert (name, total) == (NAME, len(DATA)) and b"".join(chunks) == DATA
    assert max(map(len, chunks)) <= 65_536 and all(chunks)


def test_stream_resumes_without_repeating_or_skipping(mode: str, sb: Sandbox) -> None:
    sb.cut_next_download(250_000)
    sb.expire_urls(after_bytes=600_000, count=2)
    assert b"".join(read_stream(mode, sb)[2]) == DATA


def test_stream_survives_a_server_ignoring_the_range(mode: str, sb: Sandbox) -> None:
    sb.cut_next_download(250_000)
    sb.ignore_range_next()
    assert b"".join(read_stream(mode, sb)[2]) == DATA


def test_stream_errors_surface_on_entry(mode: str, sb: Sandbox) -> None:
    sb.fail_next(status=404, target="storage", body=b"<Error><Code>NoSuchKey</Code></Error>")
    with pytest.raises(vc.DownloadError) as info:
        read_stream(mode, sb)
    assert info.value.code == "NoSuchKey"


def test_stream_checks_integrity_at_the_end(mode: str, sb: Sandbox) -> None:
    sb.corrupt_next_download()
    with pytest.raises(vc.IntegrityError):
        read_stream(mode, sb)


def test_async_cancel_while_storage_stalls_returns_promptly(sb: Sandbox, tmp_path: Path) -> None:
    """The receiving thread is unblocked by shutting its socket down, not left to a read timeout."""
    sb.delay_next(4.0, target="storage")

    async def run() -> None:
        async with sb.async_client() as client:
            task = asyncio.ensure_future(client.recordings.download("c1", tmp_path))
            for _ in range(500):  # until the storage request has reached the server (<= 5 s)
                if sb.storage_requests():
                    break
                await asyncio.sleep(0.01)
            assert sb.storage_requests(), "the storage request never arrived"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=2)  # well below the 4 s stall

    asyncio.run(run())
    assert not (tmp_path / NAME).exists()


def test_async_progress_callback_errors_stop_the_download(sb: Sandbox, tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            raise Stop

    sb.storage_latency = 0.0
    data = os.urandom(8 << 20)
    sb.add_recording("big", data, file_name="big.bin")

    async def run() -> None:
        async with sb.async_client() as client:
            await client.recordings.download("big", tmp_path, progress=progress)

    with pytest.raises(Stop):
        asyncio.run(run())
    assert not (tmp_path / "big.bin").exists()
    part = tmp_path / "big.bin.part"
    assert not part.exists() or data.startswith(part.read_bytes())  # at most a resumable prefix


def test_memory_stays_flat_for_a_large_download(tmp_path: Path) -> None:
    """Peak RSS after a 128 MiB download is within a few MiB of that after a 1 MiB one."""
    import subprocess
    import sys

    code = f"""
import os, resource
from verbex_client.testing import Sandbox
src = {str(tmp_path / "big.bin")!r}
with open(src, "wb") as f:
    for _ in range(128):
        f.write(os.urandom(1 << 20))
with Sandbox() as sb:
    sb.add_recording("small", os.urandom(1 << 20), file_name="small.bin")
    sb.add_recording("big", src, file_name="big-out.bin")
    with sb.client() as client:
        client.recordings.download("small", {str(tmp_path)!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = client.recordings.download("big", {str(tmp_path)!r})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(result.bytes, before, after)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    size, before_kib, after_kib = map(int, out.stdout.split())
    assert size == 128 << 20
    assert after_kib - before_kib < 16 * 1024, f"RSS grew by {(after_kib - before_kib) // 1024} MiB"


def test_a_signed_url_that_is_no_http_url_is_a_download_error(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.respond_next(
        b'{"file_name": "a.ogg", "signed_url": "not a url", "expiration_minutes": 10,'
        b' "expires_at": "2030-01-01T00:00:00Z"}'
    )
    with pytest.raises(vc.DownloadError, match="signed URL for call 'c1'"):
        download(mode, sb, tmp_path)
    assert sb.storage_requests() == []
    nothing_in(tmp_path)
