"""Archiving at scale: `download_many` into S3 (moto) vs a local directory, and on Dask.

    python benchmarks/archive.py            # 200 x 2 MiB, 50 ms storage latency; writes benchmarks/ARCHIVE.md
    python benchmarks/archive.py --smoke    # tiny sizes, writes .build/bench-smoke/ARCHIVE.md

Runs on its own (not part of `make bench`). Every server is a process of its own: the
sandbox (API and GCS-style storage, each storage reply held back by the latency) and
moto's S3 server; the client is this process, so its CPU time is the client's alone.
Rounds are interleaved (local, S3, local, S3, ...) and medians reported.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_sandbox(conn: Any, files: int, size: int, latency: float) -> None:
    """Child process: a sandbox with `files` recordings of `size` bytes, until told to stop."""
    from verbex_client.testing import Sandbox

    with Sandbox() as sb:
        block = os.urandom(size)
        for n in range(files):
            sb.add_recording(f"rec-{n:05d}", n.to_bytes(8, "big") + block[8:], file_name=f"rec-{n:05d}.ogg")
        sb.storage_latency = latency
        conn.send((sb.base_url, sb.api_key))
        conn.recv()  # anything: stop


class Moto:
    """moto's S3 server in its own process, addressed through the environment as real S3."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{self.port}"
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_ALLOW_HTTP="true",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_METADATA_ENDPOINT="http://127.0.0.1:9",
        )
        import boto3

        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.s3.create_bucket(Bucket="archive")
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("moto's S3 server did not start (pip install 'moto[server]')") from None
                time.sleep(0.1)

    def cpu(self) -> float:
        """moto's own CPU seconds so far (user + system)."""
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any], server: Callable[[], float] = lambda: 0.0) -> tuple[float, float, float]:
    """(wall seconds, client CPU seconds, server CPU seconds) of one run of `fn`, started with
    the previous run's dirty pages on disk (`os.sync`, off the clock)."""
    getattr(os, "sync", lambda: None)()
    wall, used, served = time.perf_counter(), cpu(), server()
    result = fn()
    assert result.ok, [str(i.error) for i in result.failed][:3]
    return time.perf_counter() - wall, cpu() - used, server() - served


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round (for the test suite)")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size-kib", type=int, default=2048)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every storage reply")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.files, args.size_kib, args.rounds, args.latency = 12, 64, 1, 0.01
    output = args.output or (
        ROOT / ".build" / "bench-smoke" / "ARCHIVE.md" if args.smoke else ROOT / "benchmarks" / "ARCHIVE.md"
    )
    from verbex_client import Verbex

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=serve_sandbox, args=(child, args.files, args.size_kib << 10, args.latency), daemon=True
    )
    server.start()
    moto = Moto()
    scratch = Path(tempfile.mkdtemp(prefix="verbex-archive-bench-"))
    try:
        base_url, api_key = parent.recv()
        ids = [f"rec-{n:05d}" for n in range(args.files)]
        rows: dict[str, list[tuple[float, float, float]]] = {
            "local": [],
            "local-nofsync": [],
            "s3": [],
            "puts": [],
        }
        with Verbex(api_key=api_key, base_url=base_url) as client:

            def local(fsync: bool) -> Any:
                dest = scratch / uuid.uuid4().hex
                try:
                    return client.recordings.download_many(
                        ids, dest, concurrency=args.concurrency, fsync=fsync
                    )
                finally:
                    shutil.rmtree(dest, ignore_errors=True)

            def s3() -> Any:
                return client.recordings.download_many(
                    ids, f"s3://archive/{uuid.uuid4().hex}/", concurrency=args.concurrency
                )

            timed(lambda: local(False))  # warm-up: pools, connections, page cache
            for _ in range(args.rounds):
                rows["local"].append(timed(lambda: local(True)))
                rows["local-nofsync"].append(timed(lambda: local(False)))
                rows["s3"].append(timed(s3, moto.cpu))
                rows["puts"].append(timed(lambda: raw_puts(args), moto.cpu))

        dask_rows = run_dask(ids, base_url, api_key, args)
    finally:
        parent.send("stop")
        server.join(10)
        moto.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    write_report(output, args, rows, dask_rows)
    print(output.read_text())
    return 0


class _Done:
    ok = True
    failed = ()


def raw_puts(args: argparse.Namespace) -> _Done:
    """moto alone: the same number and size of objects PUT from memory by obstore, at the same
    concurrency, with no download: what the store costs before our client does anything."""
    from concurrent.futures import ThreadPoolExecutor

    import obstore
    from obstore.store import from_url

    store = from_url(f"s3://archive/raw-{uuid.uuid4().hex}/", client_options={"allow_http": True})
    body = os.urandom(args.size_kib << 10)
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda n: obstore.put(store, f"o-{n}", body, use_multipart=False), range(args.files)))
    return _Done()


def run_dask(ids: list[str], base_url: str, api_key: str, args: argparse.Namespace) -> dict[int, list[float]]:
    from dask.distributed import Client, LocalCluster

    from verbex_client import distributed as vd

    out: dict[int, list[float]] = {}
    settings = vd.ClientSettings(base_url=base_url)
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as dask_client,
        ):
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                result = vd.download_many(
                    ids,
                    f"s3://archive/{uuid.uuid4().hex}/",
                    dask_client,
                    concurrency=args.concurrency,
                    settings=settings,
                    api_key=api_key,
                )
                assert result.ok, [str(i.error) for i in result.failed][:3]
                times.append(time.perf_counter() - started)
            out[workers] = times
    return out


def write_report(
    output: Path,
    args: argparse.Namespace,
    rows: dict[str, list[tuple[float, float, float]]],
    dask_rows: dict[int, list[float]],
) -> None:
    files, mib = args.files, args.size_kib / 1024
    total_mib = files * mib
    local = [w for w, _, _ in rows["local"]]
    nofsync = [w for w, _, _ in rows["local-nofsync"]]
    s3 = [w for w, _, _ in rows["s3"]]
    moto_cpu = statistics.median(m for _, _, m in rows["s3"])
    puts = [w for w, _, _ in rows["puts"]]
    puts_moto_cpu = statistics.median(m for _, _, m in rows["puts"])
    ratio = statistics.median(s3) / statistics.median(local)
    ratio_nofsync = statistics.median(s3) / statistics.median(nofsync)
    s3_cpu = statistics.median(c for _, c, _ in rows["s3"])
    local_cpu = statistics.median(c for _, c, _ in rows["local"])
    per_file_ms = statistics.median(s3) / files * 1000
    cpu_per_file_ms = s3_cpu / files * 1000
    file_mb = args.size_kib * 1024 / 1e6
    files_per_s_mb = 1000 / per_file_ms * file_mb
    cpu_per_mb = cpu_per_file_ms / file_mb
    rate = 10_000_000 / 86_400
    size_mb, link_mb_s = 5.0, 110.0
    total_tb = 10_000_000 * size_mb / 1e6
    need_mb_s = rate * size_mb
    machines_bw = math.ceil(need_mb_s / link_mb_s)
    machines = math.ceil(machines_bw * 1.25)
    cores_per_link = link_mb_s * cpu_per_mb / 1000
    procs = 2 if cores_per_link < 1 else math.ceil(cores_per_link) + 1
    in_flight = math.ceil(link_mb_s / file_mb * per_file_ms / 1000 * args.concurrency)
    lines = [
        "# Archive benchmarks",
        "",
        f"`python benchmarks/archive.py` ({time.strftime('%Y-%m-%d')}): {files} x {args.size_kib} KiB, "
        f"{args.latency * 1000:.0f} ms added to every storage reply, concurrency {args.concurrency}, "
        f"medians of {args.rounds} interleaved rounds (min-max). 2 cores for everything.",
        "",
        "The sandbox (API + GCS-style storage) and moto's S3 server run in processes of their own;",
        "client CPU is this process's user+system time.",
        "",
        "## `download_many`: S3 (moto) vs a local directory",
        "",
        "| destination | seconds | MiB/s | client CPU s |",
        "|---|---|---|---|",
        f"| local directory (default: fsync) | {median_range(local)} | "
        f"{total_mib / statistics.median(local):.0f} | {local_cpu:.2f} |",
        f"| local directory, `fsync=False` | {median_range(nofsync)} | "
        f"{total_mib / statistics.median(nofsync):.0f} | "
        f"{statistics.median(c for _, c, _ in rows['local-nofsync']):.2f} |",
        f"| `s3://archive/...` (moto) | {median_range(s3)} | "
        f"{total_mib / statistics.median(s3):.0f} | {s3_cpu:.2f} |",
        f"| moto alone: the same PUTs from memory (obstore, no download) | {median_range(puts)} | "
        f"{total_mib / statistics.median(puts):.0f} | - |",
        "",
        f"S3 / local: **{ratio:.2f}x** the default local run, {ratio_nofsync:.2f}x the `fsync=False` one "
        f"(target: within 1.5x). moto itself used **{moto_cpu:.2f} CPU-seconds** of each S3 run's "
        f"{statistics.median(s3):.2f} s (one Python process, on the same two cores as the client and "
        "the sandbox), where real S3 answers each request on its own machines. Storing the same "
        f"objects from memory, with no download at all, already takes {statistics.median(puts):.2f} s "
        f"({puts_moto_cpu:.2f} CPU-s of moto): "
        f"**{statistics.median(puts) / statistics.median(local):.2f}x** the whole local download. "
        f"Our S3 run is {statistics.median(s3) / statistics.median(puts):.2f}x that floor.",
        "",
        "## Distributed: `verbex_client.distributed.download_many` on a LocalCluster, into S3",
        "",
        "| workers (processes, 1 thread each) | seconds | speed-up vs 1 |",
        "|---|---|---|",
    ]
    one = statistics.median(dask_rows[1])
    for workers, times in sorted(dask_rows.items()):
        lines.append(f"| {workers} | {median_range(times)} | {one / statistics.median(times):.2f}x |")
    lines += [
        "",
        "Cluster start-up is not counted; each run includes registering the key plugin, one task",
        "per partition (2 per worker thread), and the manifest merge at the end. With 2 cores",
        "shared by the workers, the sandbox and moto, a second worker adds little here: the",
        "figure that scales is the per-file cost below, per machine and link.",
        "",
        "## What an archive of 10 million recordings needs",
        "",
        f"Measured here (S3 run): one client process at concurrency {args.concurrency} moved a "
        f"{args.size_kib} KiB recording every **{per_file_ms:.1f} ms** of wall time "
        f"({1000 / per_file_ms:.0f} files/s, {files_per_s_mb:.0f} MB/s) and spent "
        f"**{cpu_per_file_ms:.1f} ms** of client CPU per file, **{cpu_per_mb:.2f} ms per MB** "
        "(receive, crc32c, upload).",
        "",
        f"- 10,000,000 recordings in 24 h is **{rate:.0f} recordings/s**. At {size_mb:.0f} MB each (the "
        f'issue\'s "a few MB") that is {total_tb:.0f} TB: **{need_mb_s:.0f} MB/s** sustained in from '
        "GCS and as much out to the bucket.",
        f"- **Links decide.** A 1 Gb/s link carries ~{link_mb_s:.0f} MB/s of payload each way (full "
        f"duplex: downloads in, uploads out), so **{machines_bw} machines** at full rate "
        f"({need_mb_s:.0f} / {link_mb_s:.0f}), **{machines} with 25 % headroom** for retries, "
        "uneven partitions and a lost worker.",
        f"- **CPU is not the limit**: a full link costs {link_mb_s:.0f} x {cpu_per_mb:.2f} ms = "
        f"{cores_per_link:.2f} core-seconds per second, within one worker process (one GIL). "
        f"Run **{procs} worker processes per machine** (`dask worker --nworkers {procs} --nthreads 1`), "
        "so one process's pauses (GC, a slow partition) leave the link busy.",
        f"- **Concurrency**: {args.concurrency} downloads in flight carried {files_per_s_mb:.0f} MB/s at "
        f"{args.latency * 1000:.0f} ms per request here (Little's law: {link_mb_s:.0f} MB/s of "
        f"{args.size_kib} KiB files needs ~{in_flight} in flight at this per-file time). Recordings of "
        f"{size_mb:.0f} MB over a real WAN take longer each, so keep {args.concurrency} per worker "
        f"process: {args.concurrency * procs} in flight per machine.",
        f"- So: **{machines} machines x {procs} worker processes = {machines * procs} Dask workers**, "
        f"concurrency {args.concurrency} each, "
        f"partitions of 5,000 ids ({10_000_000 // 5000:,} tasks), dest `s3://` or `gs://` in the "
        "recordings' region. The 1-vs-2-worker table above does not scale here because both "
        "workers share this machine's 2 cores with the servers; across machines each worker has "
        "its own link.",
        "",
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
