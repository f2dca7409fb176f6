"""download_many: bounded concurrency, per-item outcomes, manifest reruns, interruption."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from test_downloads import FsyncCounter, with_client

import verbex_client as vc
from conftest import SleepRecorder
from verbex_client.testing import Sandbox

RECORDINGS = {f"call-{i}": os.urandom(200_000 + i) for i in range(6)}


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    for call_id, data in RECORDINGS.items():
        verbex_sandbox.add_recording(call_id, data, file_name=f"{call_id}.ogg")
    return verbex_sandbox


def many(mode: str, sb: Sandbox, ids: list[str], dest: Path, **kwargs: Any) -> vc.BatchResult:
    sleeps = kwargs.pop("sleeps", None) or SleepRecorder()
    return with_client(mode, sb, lambda c: c.recordings.download_many(ids, dest, **kwargs), sleeps)  # type: ignore[no-any-return]


def manifest(dest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (dest / "manifest.jsonl").read_text().splitlines()]


def test_all_downloaded_in_input_order_with_a_manifest(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    ids = list(RECORDINGS)[::-1]
    result = many(mode, sb, ids, tmp_path / "out", concurrency=3)
    assert result.ok and [i.call_id for i in result.results] == ids
    assert all(i.status == "downloaded" and i.error is None for i in result.results)
    for item in result.results:
        assert item.path is not None and item.path.read_bytes() == RECORDINGS[item.call_id]
        assert item.bytes == len(RECORDINGS[item.call_id])
    entries = {e["call_id"]: e for e in manifest(tmp_path / "out")}
    assert set(entries) == set(ids)
    e = entries["call-1"]
    assert e["file"] == "call-1.ogg" and e["bytes"] == len(RECORDINGS["call-1"])
    assert e["crc32c"] == google_crc32c.value(RECORDINGS["call-1"]).to_bytes(4, "big").hex()
    assert e["md5"] is None  # storage gave a crc32c: md5 was not needed
    assert e["finished_at"].endswith("Z")
    result.raise_for_failures()  # nothing to raise


def test_fsync_false_applies_to_files_and_manifest(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = FsyncCounter(monkeypatch)
    result = many(mode, sb, list(RECORDINGS), tmp_path, concurrency=2, fsync=False)
    assert result.ok and len(manifest(tmp_path)) == len(RECORDINGS)
    assert counter.calls == 0
    many(mode, sb, ["call-1"], tmp_path / "durable")
    assert counter.calls >= 3  # file, directory, manifest line


def test_concurrency_is_bounded(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.storage_latency = 0.1
    assert many(mode, sb, list(RECORDINGS), tmp_path, concurrency=2).ok
    assert sb.peak_storage_in_flight == 2


def test_a_file_waiting_for_its_fsync_does_not_hold_a_download_slot(
    mode: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With concurrency 1 the next recording downloads while the previous one is flushed to disk
    (the disk and the network work at once); bodies are still received one at a time."""
    real_fdatasync = os.fdatasync
    next_started_during_first_flush: list[bool] = []
    first = threading.Lock()

    def slow_first_flush(fd: int) -> None:
        if first.acquire(blocking=False):  # the first file's flush only
            deadline = time.monotonic() + 5  # the second download's request, or give up
            while len(sb.storage_requests()) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            next_started_during_first_flush.append(len(sb.storage_requests()) >= 2)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", slow_first_flush)
    result = many(mode, sb, list(RECORDINGS), tmp_path, concurrency=1)
    assert result.ok and len(manifest(tmp_path)) == len(RECORDINGS)
    assert next_started_during_first_flush == [True]
    assert sb.peak_storage_in_flight == 1


def test_urls_are_signed_ahead_but_at_most_one_wave_ahead(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    """The next recordings' API calls overlap the current downloads, yet URLs are never signed
    long before use (they expire): at most `concurrency` beyond the downloads under way."""
    sb.delay_next(1.0, target="storage", count=2)  # the first two downloads wait a second
    signed_when_first_bytes_came: list[int] = []

    def progress(call_id: str, done: int, total: int | None) -> None:
        if done and not signed_when_first_bytes_came:
            signed_when_first_bytes_came.append(len(sb.api_requests()))

    assert many(mode, sb, list(RECORDINGS), tmp_path, concurrency=2, progress=progress).ok
    # Signing in front of each download: 2 (nothing more was signed during the wait). Two ahead:
    # 4, or 5 once a worker has taken the next one. Unbounded: all 6.
    assert 4 <= signed_when_first_bytes_came[0] <= 5
    assert len(sb.api_requests()) == len(RECORDINGS)


def test_calls_sharing_a_file_name_get_distinct_files_and_a_rerun_skips_them(
    mode: str, sb: Sandbox, tmp_path: Path
) -> None:
    """APIs may name every recording alike; each call still gets its own file, named after it."""
    same = {f"dup-{i}": os.urandom(50_000 + i) for i in range(3)}
    for call_id, data in same.items():
        sb.add_recording(call_id, data, file_name="recording.wav")
    first = many(mode, sb, list(same), tmp_path, concurrency=3)
    assert first.ok, [str(i.error) for i in first.failed]
    names = {i.call_id: i.path.name for i in first.results if i.path is not None}
    assert len(set(names.values())) == 3 and "recording.wav" in names.values()
    for call_id, name in names.items():
        assert name in ("recording.wav", f"recording.{call_id}.wav")
        assert (tmp_path / name).read_bytes() == same[call_id]
    assert {e["call_id"]: e["file"] for e in manifest(tmp_path)} == names
    sb.clear_requests()
    again = many(mode, sb, list(same), tmp_path)
    assert [i.status for i in again.results] == ["skipped"] * 3 and sb.requests == []
    # A new call with the same name, in a later batch, does not take an existing call's file.
    sb.add_recording("dup-new", b"new", file_name="recording.wav")
    later = many(mode, sb, ["dup-new"], tmp_path)
    assert later.ok and later.results[0].path == tmp_path / "recording.dup-new.wav"


def test_manifest_name_claims_fall_back_to_numbered_names(tmp_path: Path) -> None:
    from verbex_client._batch import Manifest

    m = Manifest(tmp_path)
    assert m.claim("a", "x.wav") == "x.wav"
    assert m.claim("a", "x.wav") == "x.wav"  # the same call keeps its name
    assert m.claim("b", "x.wav") == "x.b.wav"
    assert m.claim("z", "x.c.wav") == "x.c.wav"  # a server name that looks like a tagged one
    assert m.claim("c", "x.wav") == "x.c.2.wav"


def test_async_batches_are_not_capped_by_the_default_executor(sb: Sandbox, tmp_path: Path) -> None:
    """Async downloads receive on threads of their own: asyncio's default executor has cpu+4."""
    ids = [f"wide-{i}" for i in range(12)]
    for call_id in ids:
        sb.add_recording(call_id, b"x" * 1000, file_name=f"{call_id}.ogg")
    sb.storage_latency = 0.5  # long enough for all of them to be waiting at once
    assert many("async", sb, ids, tmp_path, concurrency=12).ok
    assert sb.peak_storage_in_flight == 12


def test_duplicates_are_fetched_once(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    result = many(mode, sb, ["call-1", "call-2", "call-1", "call-1"], tmp_path)
    assert [i.call_id for i in result.results] == ["call-1", "call-2"]
    assert len(sb.api_requests()) == 2 and len(sb.storage_requests()) == 2


def test_a_failure_never_stops_the_batch(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    sb.corrupt_next_download()  # hits whichever download goes first
    result = many(mode, sb, ["missing", *RECORDINGS], tmp_path, concurrency=1)
    assert not result.ok
    failed = {i.call_id: i for i in result.failed}
    assert isinstance(failed["missing"].error, vc.RecordingNotFoundError)
    assert len(failed) == 2 and len(result.downloaded) == len(RECORDINGS) - 1
    corrupt = next(i for i in result.failed if i.call_id != "missing")
    assert isinstance(corrupt.error, vc.IntegrityError) and corrupt.path is None
    assert not (tmp_path / f"{corrupt.call_id}.ogg").exists()
    with pytest.raises(ExceptionGroup) as info:
        result.raise_for_failures()
    assert len(info.value.exceptions) == 2 and "2 of 7 downloads failed" in str(info.value)


def test_a_rerun_skips_finished_work_without_calling_the_api(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    ids = list(RECORDINGS)
    assert many(mode, sb, ids, tmp_path).ok
    sb.clear_requests()
    (tmp_path / "call-3.ogg").write_bytes(b"truncated")  # wrong size: must be redone
    (tmp_path / "call-4.ogg").unlink()  # gone: must be redone
    again = many(mode, sb, ids, tmp_path, overwrite=True)
    statuses = {i.call_id: i.status for i in again.results}
    assert statuses == {c: ("downloaded" if c in ("call-3", "call-4") else "skipped") for c in ids}
    assert len(sb.api_requests()) == 2
    assert (tmp_path / "call-3.ogg").read_bytes() == RECORDINGS["call-3"]
    sb.clear_requests()
    assert all(i.status == "skipped" for i in many(mode, sb, ids, tmp_path).results)
    assert sb.requests == []


def test_a_torn_manifest_line_is_tolerated(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    assert many(mode, sb, ["call-0"], tmp_path).ok
    with (tmp_path / "manifest.jsonl").open("a") as f:
        f.write('{"call_id": "call-1", "fi')  # a crash mid-line
    result = many(mode, sb, ["call-0", "call-1"], tmp_path)
    assert [i.status for i in result.results] == ["skipped", "downloaded"]


def test_existing_unlisted_files_fail_without_overwrite(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "call-0.ogg").write_bytes(b"someone else's")
    result = many(mode, sb, ["call-0"], tmp_path)
    assert isinstance(result.results[0].error, FileExistsError)
    assert (tmp_path / "call-0.ogg").read_bytes() == b"someone else's"


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("call-1",), {}, TypeError),
        ((["ok", ""],), {}, ValueError),
        ((["ok", 5],), {}, TypeError),
        ((["ok"],), {"concurrency": 0}, ValueError),
        ((["ok"],), {"concurrency": 2.0}, TypeError),
        ((["ok"],), {"progress": 3}, TypeError),
        ((["ok"],), {"fsync": None}, TypeError),
        ((["ok"],), {"overwrite": "yes"}, TypeError),
    ],
)
def test_bad_arguments_send_nothing(
    sb: Sandbox, tmp_path: Path, args: tuple[Any, ...], kwargs: dict[str, Any], error: type
) -> None:
    with sb.client() as client, pytest.raises(error):
        client.recordings.download_many(*args, tmp_path, **kwargs)
    assert sb.requests == []


def test_progress_names_each_call(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def progress(call_id: str, done: int, total: int | None) -> None:
        with lock:
            seen[call_id] = done

    assert many(mode, sb, list(RECORDINGS), tmp_path, progress=progress).ok
    assert seen == {c: len(d) for c, d in RECORDINGS.items()}


def _leftovers_are_clean(dest: Path) -> None:
    """Only complete targets, resumable .part files and a manifest that parses."""
    entries = {e["call_id"] for e in manifest(dest)} if (dest / "manifest.jsonl").exists() else set()
    for path in dest.iterdir():
        if path.name == "manifest.jsonl":
            continue
        if path.name.endswith(".part"):
            call_id = path.name.removesuffix(".ogg.part")
            assert RECORDINGS[call_id].startswith(path.read_bytes())
        else:
            call_id = path.stem
            assert path.read_bytes() == RECORDINGS[call_id] and call_id in entries


def test_sync_interrupt_leaves_resumable_state_and_a_rerun_completes(sb: Sandbox, tmp_path: Path) -> None:
    sb.storage_latency = 0.02
    interrupted = threading.Event()

    def progress(call_id: str, done: int, total: int | None) -> None:
        if call_id == "call-2" and done > 50_000 and not interrupted.is_set():
            interrupted.set()
            raise KeyboardInterrupt  # what Ctrl-C delivers to the waiting thread

    with sb.client() as client, pytest.raises(KeyboardInterrupt):
        client.recordings.download_many(list(RECORDINGS), tmp_path, concurrency=3, progress=progress)
    _leftovers_are_clean(tmp_path)
    assert any(p.name.endswith(".part") for p in tmp_path.iterdir())
    sb.clear_faults()
    with sb.client() as client:
        result = client.recordings.download_many(list(RECORDINGS), tmp_path)
    assert result.ok
    _leftovers_are_clean(tmp_path)
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    assert all((tmp_path / f"{c}.ogg").read_bytes() == d for c, d in RECORDINGS.items())


def test_async_cancellation_leaves_resumable_state_and_a_rerun_completes(sb: Sandbox, tmp_path: Path) -> None:
    sb.storage_latency = 0.02

    async def interrupted() -> None:
        async with sb.async_client() as client:
            batch: list[asyncio.Future[vc.BatchResult]] = []

            def progress(call_id: str, done: int, total: int | None) -> None:
                if call_id == "call-2" and done > 50_000:
                    batch[0].cancel()  # bytes of the first wave are on disk, the last wave is ahead

            batch.append(
                asyncio.ensure_future(
                    client.recordings.download_many(
                        list(RECORDINGS), tmp_path, concurrency=3, progress=progress
                    )
                )
            )
            with pytest.raises(asyncio.CancelledError):
                await batch[0]

    asyncio.run(asyncio.wait_for(interrupted(), timeout=30))
    _leftovers_are_clean(tmp_path)
    sb.clear_faults()
    result = many("async", sb, list(RECORDINGS), tmp_path)
    assert result.ok
    assert all((tmp_path / f"{c}.ogg").read_bytes() == d for c, d in RECORDINGS.items())
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


def test_on_item_reports_each_outcome_while_the_batch_runs(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    """Each call's outcome reaches on_item as it ends, before the batch returns (the CLI streams it)."""
    dest = tmp_path / "out"
    many(mode, sb, ["call-0"], dest)  # finished before: reported as skipped
    seen: list[tuple[str, str]] = []
    requests_when_reported: list[int] = []

    def on_item(item: vc.BatchItem) -> None:
        seen.append((item.call_id, item.status))
        requests_when_reported.append(len(sb.api_requests()))

    ids = ["call-0", "call-1", "call-2", "missing-call"]
    result = many(mode, sb, ids, dest, concurrency=1, on_item=on_item)
    assert sorted(seen) == sorted((i.call_id, i.status) for i in result.results)
    assert ("call-0", "skipped") in seen and ("missing-call", "failed") in seen
    # The first report came before the last call was even signed: outcomes stream.
    assert requests_when_reported[0] < len(sb.api_requests())


def test_on_item_must_be_callable(mode: str, sb: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="on_item"):
        many(mode, sb, ["call-0"], tmp_path, on_item="nope")
    assert sb.api_requests() == []


def test_a_raising_on_item_stops_the_batch_without_waiting_out_a_stalled_read(
    sb: Sandbox, tmp_path: Path
) -> None:
    """A closed stdout in the CLI is on_item raising: the batch must end within the 2 s grace,
    not after the stalled download's 30 s read timeout."""

    class Closed(Exception):
        pass

    sb.stall_next_download(100_000, seconds=30)  # the first download stalls mid-body

    def on_item(item: vc.BatchItem) -> None:
        raise Closed

    started = time.monotonic()
    with sb.client() as client, pytest.raises(Closed):
        client.recordings.download_many(list(RECORDINGS), tmp_path, concurrency=2, on_item=on_item)
    assert time.monotonic() - started < 10
