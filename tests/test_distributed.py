"""verbex_client.distributed on a real Dask cluster: LocalCluster with 2 worker processes,
the sandbox as the API and GCS, moto's S3 server as the destination.

One cluster for the module (starting one costs seconds); the workers inherit the
environment that points them at moto, as workers on real machines read their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import cloudpickle
import google_crc32c
import pytest
from _moto import MotoS3, moto_s3

import verbex_client as vc
from verbex_client import distributed as vd
from verbex_client.testing import Sandbox

RECORDINGS = {f"rec-{i:03d}": os.urandom(8_000 + 37 * i) for i in range(240)}
IDS = list(RECORDINGS)


def crc_hex(data: bytes) -> str:
    return google_crc32c.value(data).to_bytes(4, "big").hex()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(moto: MotoS3) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        for call_id, data in RECORDINGS.items():
            sb.add_recording(call_id, data, file_name=f"{call_id}.ogg")
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.clear_faults()
    sandbox.clear_requests()
    sandbox.storage_latency = 0.0
    yield sandbox
    sandbox.clear_faults()
    sandbox.storage_latency = 0.0


@pytest.fixture
def bucket(moto: MotoS3) -> str:
    return moto.bucket(f"dist-{uuid.uuid4().hex[:12]}")


def settings(sb: Sandbox) -> vd.ClientSettings:
    return vd.ClientSettings(base_url=sb.base_url, max_retries=2)


def run(sb: Sandbox, cluster: Any, ids: list[str], dest: str, **kwargs: Any) -> vc.BatchResult:
    kwargs.setdefault("api_key", sb.api_key)
    return vd.download_many(ids, dest, cluster, settings=settings(sb), **kwargs)


def assert_all_landed(moto: MotoS3, bucket: str, prefix: str, ids: list[str]) -> None:
    """Every call exactly once under its name, byte-identical, with its checksum as metadata."""
    keys = moto.recordings(bucket, prefix)
    assert sorted(keys) == sorted(f"{prefix}{cid}.ogg" for cid in ids)
    for cid in ids:
        key = f"{prefix}{cid}.ogg"
        assert moto.read(bucket, key) == RECORDINGS[cid]
        assert moto.metadata(bucket, key)["crc32c"] == crc_hex(RECORDINGS[cid])


def test_a_batch_of_200_lands_byte_identical_and_a_rerun_calls_no_api(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    ids = IDS[:200]
    seen: list[str] = []
    recorder = PinnedPartitions(cluster)
    result = run(
        sb, recorder, ids, f"s3://{bucket}/archive/", concurrency=4, on_item=lambda i: seen.append(i.call_id)
    )
    # The key went to the workers once, by plugin: no task carries it (its function, arguments
    # and options, pickled as Dask sends them).
    assert len(recorder.submitted) >= 2
    assert all(sb.api_key.encode() not in cloudpickle.dumps(task) for task in recorder.submitted)
    assert result.ok, [str(i.error) for i in result.failed][:3]
    assert [i.call_id for i in result.results] == ids and sorted(seen) == sorted(ids)
    assert all(
        i.status == "downloaded" and i.url == f"s3://{bucket}/archive/{i.call_id}.ogg" for i in result.results
    )
    assert_all_landed(moto, bucket, "archive/", ids)
    manifest = [json.loads(line) for line in moto.read(bucket, "archive/manifest.jsonl").splitlines()]
    assert sorted(e["call_id"] for e in manifest) == sorted(ids)  # merged once, each call once
    assert moto.keys(bucket, "archive/.verbex/manifests/") == []
    assert len(sb.api_requests()) == len(ids)

    sb.clear_requests()
    again = run(sb, cluster, ids, f"s3://{bucket}/archive/", concurrency=4)
    assert [i.status for i in again.results] == ["skipped"] * len(ids)
    assert sb.api_requests() == [] and sb.storage_requests() == []


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    ids = IDS[:200]
    sb.storage_latency = 0.05  # long enough a run to kill a worker in the middle of it
    pids_before = cluster.run(os.getpid)
    outcome: list[vc.BatchResult | BaseException] = []

    heard: list[str] = []

    def batch() -> None:
        try:
            outcome.append(
                run(
                    sb,
                    cluster,
                    ids,
                    f"s3://{bucket}/k/",
                    concurrency=4,
                    partitions=4,
                    on_item=lambda item: heard.append(item.call_id),
                )
            )
        except BaseException as error:
            outcome.append(error)

    runner = threading.Thread(target=batch)
    runner.start()
    # Wait (bounded) until work is under way on some worker, then kill that worker's process.
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline and runner.is_alive():
        busy = [w for w, keys in cluster.processing().items() if keys]
        if busy and len(moto.recordings(bucket, "k/")) >= 10:
            victim = busy[0]
        else:
            time.sleep(0.05)
    assert victim is not None, "the batch never got under way"
    os.kill(pids_before[victim], signal.SIGKILL)
    runner.join(120)
    assert not runner.is_alive()
    (result,) = outcome
    assert isinstance(result, vc.BatchResult), result
    assert result.ok, [str(i.error) for i in result.failed][:3]
    assert [i.call_id for i in result.results] == ids
    assert_all_landed(moto, bucket, "k/", ids)
    assert sorted(heard) == sorted(ids)  # the rerun partition's calls reported once each
    manifest = [json.loads(line) for line in moto.read(bucket, "k/manifest.jsonl").splitlines()]
    assert sorted(e["call_id"] for e in manifest) == sorted(ids)
    # The worker really died (its nanny started a new process) while the batch ran.
    cluster.wait_for_workers(2, timeout=60)
    assert pids_before[victim] not in cluster.run(os.getpid).values()


def test_a_body_corrupted_by_storage_never_appears_under_its_key(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    ids = IDS[200:220]
    sb.corrupt_next_download(at=100)
    result = run(sb, cluster, ids, f"s3://{bucket}/c/", concurrency=2)
    (bad,) = result.failed
    assert isinstance(bad.error, vc.IntegrityError) and bad.error.call_id == bad.call_id
    assert "crc32c mismatch" in str(bad.error)
    assert not moto.exists(bucket, f"c/{bad.call_id}.ogg")
    assert len(result.downloaded) == len(ids) - 1
    again = run(sb, cluster, ids, f"s3://{bucket}/c/", concurrency=2)
    assert {i.call_id: i.status for i in again.results if i.status != "skipped"} == {
        bad.call_id: "downloaded"
    }
    assert_all_landed(moto, bucket, "c/", ids)


def test_each_call_is_reported_as_its_worker_finishes_it(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    """on_item is fed from the workers as each call ends, not when its partition returns:
    one recording of the only partition is held back until on_item has heard of another."""
    ids = IDS[200:210]
    held = sb.hold_download(ids[0], timeout=30)
    reported: list[tuple[str, str, bool]] = []

    def on_item(item: vc.BatchItem) -> None:
        reported.append((item.call_id, item.status, held.released))
        if item.call_id != ids[0]:
            held.release()

    result = run(sb, cluster, ids, f"s3://{bucket}/live/", concurrency=2, partitions=1, on_item=on_item)
    # Released by on_item, not by the hold's timeout: an item arrived while the partition
    # (which cannot end before ids[0] is downloaded) was still running.
    assert held.reached.is_set() and held.released and not held.timed_out
    assert reported[0][0] != ids[0] and reported[0][2] is False
    assert sorted(cid for cid, _, _ in reported) == sorted(ids)  # every call, once
    assert all(status == "downloaded" for _, status, _ in reported)
    assert result.ok and [i.call_id for i in result.results] == ids
    assert_all_landed(moto, bucket, "live/", ids)


class PinnedPartitions:
    """The real Dask client, recording every task; partition n goes to worker `pins[n]` when
    pins are given (to make one fail)."""

    def __init__(self, client: Any, pins: list[str] | None = None) -> None:
        self._client, self._pins = client, pins
        self.submitted: list[Any] = []

    def submit(self, fn: Any, *args: Any, key: str, **kwargs: Any) -> Any:
        self.submitted.append((fn, args, dict(kwargs)))
        if self._pins is not None:
            kwargs.update(workers=[self._pins[int(key.rsplit("-", 1)[1])]], allow_other_workers=False)
        return self._client.submit(fn, *args, key=key, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failed_partition_loses_no_other_partition_s_results(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    ids = IDS[220:240]
    run(sb, cluster, ids[:1], f"s3://{bucket}/warm/")  # every worker has the key (plugin)
    keyless, keyed = sorted(cluster.scheduler_info()["workers"])
    cluster.run(lambda: os.environ.pop("VERBEX_API_KEY", None), workers=[keyless])
    try:
        pinned = PinnedPartitions(cluster, [keyless, keyed])
        # No api_key: workers use their own environment, and one of them has no key.
        result = vd.download_many(ids, f"s3://{bucket}/p/", pinned, settings=settings(sb), partitions=2)
        first, second = ids[:10], ids[10:]
        assert [i.status for i in result.results] == ["failed"] * 10 + ["downloaded"] * 10
        for item in result.failed:
            assert isinstance(item.error, vc.ConfigurationError) and "VERBEX_API_KEY" in str(item.error)
        assert_all_landed(moto, bucket, "p/", second)
        assert all(not moto.exists(bucket, f"p/{cid}.ogg") for cid in first)
    finally:
        vd.download_many(ids[:1], f"s3://{bucket}/warm/", cluster, settings=settings(sb), api_key=sb.api_key)


class FailingAfterItsWork(PinnedPartitions):
    """Each partition does its work (its items reach us as events), then fails as a whole,
    as when its worker is lost for good after the last call."""

    def submit(self, fn: Any, *args: Any, key: str, **kwargs: Any) -> Any:
        def then_fail(*a: Any, **k: Any) -> Any:
            fn(*a, **k)
            raise RuntimeError("the worker was lost")

        return self._client.submit(then_fail, *args, key=key, **kwargs)


def test_a_partition_that_failed_as_a_whole_keeps_what_its_worker_reported(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    ids = IDS[:5]
    heard: list[str] = []
    result = run(
        sb,
        FailingAfterItsWork(cluster),
        ids,
        f"s3://{bucket}/lost/",
        partitions=1,
        on_item=lambda i: heard.append(i.call_id),
    )
    # Every object landed verified before the partition failed: the result says so.
    assert [(i.call_id, i.status) for i in result.results] == [(cid, "downloaded") for cid in ids]
    assert all(i.url == f"s3://{bucket}/lost/{i.call_id}.ogg" for i in result.results)
    assert sorted(heard) == sorted(ids)
    assert_all_landed(moto, bucket, "lost/", ids)


def test_the_partition_function_runs_without_dask(
    sb: Sandbox, moto: MotoS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Ray or Spark task would call: settings, ids, destination -> item dicts."""
    monkeypatch.setenv("VERBEX_API_KEY", sb.api_key)
    items = vd.download_partition(settings(sb), IDS[:5], f"s3://{bucket}/ray/", concurrency=2, run_id="ray-0")
    assert [d["call_id"] for d in items] == IDS[:5]
    assert all(d["status"] == "downloaded" and d["error"] is None for d in items)
    assert json.loads(json.dumps(items)) == items  # plain data: any engine can carry it
    item = vd.item_from_dict(items[0])
    assert item.url == f"s3://{bucket}/ray/{IDS[0]}.ogg" and item.bytes == len(RECORDINGS[IDS[0]])
    # Partitions leave their manifest segments for the runner to merge.
    assert moto.keys(bucket, "ray/.verbex/manifests/") != []
    assert not moto.exists(bucket, "ray/manifest.jsonl")
    assert repr(settings(sb)).find(sb.api_key) == -1


# -- bad input: a clear error before any recording is fetched ----------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_bucket_that_does_not_exist_fails_before_anything_is_submitted(sb: Sandbox, cluster: Any) -> None:
    with pytest.raises(vc.DestinationError, match="the bucket does not exist"):
        run(sb, cluster, IDS[:3], "s3://no-such-bucket/x/")
    assert sb.requests == []


def test_missing_credentials_fail_before_anything_is_submitted(
    sb: Sandbox, cluster: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(vc.DestinationError, match="no AWS credentials"):
        run(sb, cluster, IDS[:3], f"s3://{bucket}/x/")
    assert sb.requests == []


def test_an_unreachable_destination_fails_before_anything_is_submitted(
    sb: Sandbox, cluster: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(vc.DestinationError, match=f"cannot reach s3://{bucket}/x/"):
        run(sb, cluster, IDS[:3], f"s3://{bucket}/x/")
    assert sb.requests == []


def cli_env(sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBEX_")}
    env.update(VERBEX_API_KEY=sb.api_key, VERBEX_BASE_URL=sb.base_url)
    return env


def verbex_cli(sb: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verbex_client", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(sb),
    )


def test_cli_on_the_cluster_prints_the_usual_lines(
    sb: Sandbox, cluster: Any, moto: MotoS3, bucket: str
) -> None:
    ids = IDS[:6]
    address = cluster.scheduler.address
    out = verbex_cli(sb, "recordings", "download", *ids, "-o", f"s3://{bucket}/cli/", "--dask", address)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for cid in ids:
        assert any(line.startswith(f"downloaded {cid} -> s3://{bucket}/cli/{cid}.ogg (") for line in lines)
    assert "6 downloaded, 0 skipped, 0 failed" in out.stderr
    assert_all_landed(moto, bucket, "cli/", ids)


def test_cli_with_a_local_cluster_prints_each_call_as_its_worker_finishes_it(
    sb: Sandbox, moto: MotoS3, bucket: str, tmp_path: Any
) -> None:
    """`--dask local:2`: one line per call, streamed. One recording of every partition is
    held back until the test has read a line, so no partition can end before one is printed."""
    ids = IDS[6:14]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    holds = [sb.hold_download(cid, timeout=60) for cid in ids[0::2]]  # partitions: 2 workers x 2
    command = [sys.executable, "-m", "verbex_client", "recordings", "download", "--ids-file", str(ids_file)]
    command += ["-o", f"s3://{bucket}/l/", "--dask", "local:2", "--concurrency", "2"]
    lines: list[tuple[str, bool]] = []  # each line, and whether it came after the release
    with (tmp_path / "stderr.txt").open("w+") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=cli_env(sb))

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append((line.rstrip("\n"), all(h.released for h in holds)))
                for held in holds:
                    held.release()

        reader = threading.Thread(target=read)
        reader.start()
        try:
            reader.join(120)
            assert proc.wait(timeout=10) == 0, stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(10)
        stderr.seek(0)
        errors = stderr.read()
    assert not any(h.timed_out for h in holds) and all(h.reached.is_set() for h in holds)
    assert lines and lines[0][1] is False  # printed while every partition was still running
    assert len(lines) == len(ids)
    for cid in ids:
        (line,) = [text for text, _ in lines if text.startswith(f"downloaded {cid} ")]
        assert line.startswith(f"downloaded {cid} -> s3://{bucket}/l/{cid}.ogg (")
    assert f"{len(ids)} downloaded, 0 skipped, 0 failed" in errors
    assert_all_landed(moto, bucket, "l/", ids)


def test_cli_with_a_scheduler_that_does_not_answer(sb: Sandbox, bucket: str) -> None:
    address = f"tcp://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    out = verbex_cli(
        sb, "--timeout", "2", "recordings", "download", *IDS[:2], "-o", f"s3://{bucket}/x/", "--dask", address
    )
    assert out.returncode == 2
    assert f"error: cannot reach the Dask scheduler at {address}" in out.stderr
    assert time.monotonic() - started < 30
    assert sb.requests == []


def test_without_the_dask_extra_the_error_names_the_pip_command(
    sb: Sandbox, moto: MotoS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    monkeypatch.delitem(sys.modules, "verbex_client._dask", raising=False)
    with pytest.raises(vc.ConfigurationError, match=r"pip install 'verbex-client\[dask\]'"):
        vd.download_many(IDS[:2], f"s3://{bucket}/x/", object(), settings=settings(sb))
    assert sb.requests == []
