"""`make bench`: our client against raw httpx, peers and curl, side by side; writes RESULTS.md.

Every figure comes from interleaved rounds (A B, then B A, ...) measured in
fresh processes in the same run, reported as median with min-max; ratios
are taken per round and then their median. Servers: nginx (sendfile on) for
per-call and download figures, our sandbox in its own process for bulk
(nginx cannot add latency). `--smoke` runs every path with tiny sizes
(part of `make test`) and writes .build/bench-smoke/RESULTS.md instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _env import (
    PEERS,
    ROOT,
    BulkStorage,
    Dataset,
    Nginx,
    Tls,
    clean_venv,
    find_nginx,
    free_port,
    make_bulk_objects,
    make_object,
    make_tls,
    venv,
)

K = TypeVar("K")
# download contenders run by worker.py: report name -> worker name
DOWNLOADERS = {
    "verbex_client (default)": "verbex",
    "verbex_client fsync=False": "verbex-nofsync",
    "raw httpx iter_raw": "httpx",
}
SECTIONS = ("calls", "imports", "downloads", "https", "write-size", "profile", "bulk", "https-bulk")
WORKER = str(Path(__file__).resolve().parent / "worker.py")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class Sizes:
    rounds: int = 9
    calls: int = 2000
    async_calls: int = 3000
    async_tasks: tuple[int, ...] = (1, 10, 50)
    import_runs: int = 15
    downloads: tuple[int, ...] = (64 << 20, 1 << 30)
    download_rounds: int = 7  # 3, then 5, were too few: one round with cold page cache moved the 1 GiB ratio
    bulk_count: int = 200
    bulk_size: int = 2 << 20
    bulk_latency: float = 0.05
    bulk_concurrency: tuple[int, ...] = (1, 4, 16, 64)
    bulk_rounds: int = 5
    profile_calls: int = 3000
    ab_rounds: int = 5


SMOKE = Sizes(
    rounds=2,
    calls=30,
    async_calls=40,
    async_tasks=(1, 10),
    import_runs=2,
    downloads=(1 << 20, 2 << 20),
    download_rounds=1,
    bulk_count=8,
    bulk_size=64 << 10,
    bulk_latency=0.01,
    bulk_concurrency=(1, 4),
    bulk_rounds=1,
    profile_calls=50,
    ab_rounds=1,
)


@dataclass
class Figure:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, fmt: str = ".2f") -> str:
        return f"({min(self.values):{fmt}}-{max(self.values):{fmt}})"

    def span(self, scale: float = 1.0, fmt: str = ".3f") -> str:
        return (
            f"{self.median * scale:{fmt}} ({min(self.values) * scale:{fmt}}-{max(self.values) * scale:{fmt}})"
        )


def worker(python: Path, *args: object, env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(
        [str(python), WORKER, *map(str, args)], capture_output=True, text=True, timeout=900, env=env
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark worker {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def interleaved(rounds: int, contenders: dict[K, Callable[[], float]]) -> dict[K, Figure]:
    """Each contender once per round, the order reversed every other round. Before each run,
    the disk gets the previous run's dirty pages (`os.sync`, off the clock): otherwise a
    contender that does not fsync leaves its writeback to slow down the next one."""
    figures = {name: Figure() for name in contenders}
    order = list(contenders)
    sync = getattr(os, "sync", lambda: None)
    for r in range(rounds):
        for name in order if r % 2 == 0 else reversed(order):
            sync()
            figures[name].values.append(contenders[name]())
    return figures


def ratio(a: Figure, b: Figure) -> Figure:
    return Figure([x / y for x, y in zip(a.values, b.values, strict=True)])


def wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    return timed(argv, env)[0]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds of a command, and the CPU seconds (user + system) it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, every code path (part of make test)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help="run only these sections (RESULTS.md is then left alone; the report goes to .build/)",
    )
    args = parser.parse_args(argv)

    def want(*sections: str) -> bool:
        return args.only is None or any(section in args.only for section in sections)

    sizes = SMOKE if args.smoke else Sizes()
    work = ROOT / ".build" / ("bench-smoke" if args.smoke else "bench")
    work.mkdir(parents=True, exist_ok=True)
    (work / "nginx-body").mkdir(exist_ok=True)
    find_nginx(install=not args.smoke)  # the smoke test (in `make test`) installs nothing
    print(
        "preparing venvs (ours: the wheel alone; peers: openai, retell-sdk, requests, "
        "google-cloud-storage)...",
        flush=True,
    )
    ours = clean_venv(work)
    peers = venv(work / "venv-peers", PEERS)

    data_dir = work / "www"
    data_dir.mkdir(exist_ok=True)
    datasets = [Dataset("call", 0, free_port(), data_dir / "tiny.ogg")]
    tls = make_tls(work / "tls")
    for size in sizes.downloads if want("downloads", "https", "write-size") else ():
        datasets.append(
            Dataset(f"{size >> 20} MiB", size, free_port(), data_dir / f"object-{size >> 20}MiB.ogg")
        )
    for d in datasets:
        d.goog_hash = make_object(d.path, d.size)

    lines: list[str] = []
    summary: list[tuple[str, str, str, str, str, str]] = []
    nginx = Nginx(work, datasets, tls=tls)
    with (
        nginx
        if want("calls", "imports", "downloads", "https", "write-size", "profile")
        else contextlib.nullcontext()
    ):
        api = f"http://127.0.0.1:{datasets[0].port}"
        if want("calls"):
            print("per-call cost...", flush=True)
            sync_names = {
                "verbex_client": ours,
                "raw httpx": ours,
                "requests": peers,
                "openai": peers,
                "retell-sdk": peers,
            }
            worker_names = {
                "verbex_client": "verbex",
                "raw httpx": "httpx",
                "requests": "requests",
                "openai": "openai",
                "retell-sdk": "retell",
            }
            per_call = interleaved(
                sizes.rounds,
                {
                    n: (
                        lambda n=n: worker(sync_names[n], "call", worker_names[n], api, sizes.calls)[
                            "per_call"
                        ]
                    )
                    for n in sync_names
                },
            )
            base = per_call["raw httpx"]
            lines += [
                "## Per call: `signed_url` against nginx (keep-alive)",
                "",
                "| client | µs per call, median (min-max) | ratio to raw httpx |",
                "|---|---|---|",
            ]
            for name, fig in per_call.items():
                lines.append(f"| {name} | {fig.span(1e6, '.1f')} | {ratio(fig, base).span(1, '.2f')} |")
            ours_ratio = ratio(per_call["verbex_client"], base)
            best_peer = min(
                ("requests", "openai", "retell-sdk"), key=lambda n: ratio(per_call[n], base).median
            )
            summary.append(
                (
                    "per call vs raw httpx (sync)",
                    f"{ours_ratio.median:.2f}x",
                    f"{best_peer} {ratio(per_call[best_peer], base).median:.2f}x",
                    f"{ours_ratio.median:.2f}",
                    "<= 1.10",
                    _met(ours_ratio.median <= 1.10),
                )
            )

            print("async per-call cost...", flush=True)
            lines += [
                "",
                "## Per call, async: `AsyncVerbex` (our default pool: 20) vs raw `httpx.AsyncClient` (100)",
                "",
                "| concurrent tasks | verbex_client µs/call | raw httpx µs/call | ratio |",
                "|---|---|---|---|",
            ]
            for tasks in sizes.async_tasks:
                figs = interleaved(
                    sizes.rounds,
                    {
                        n: (
                            lambda n=n, t=tasks: worker(ours, "call", n, api, sizes.async_calls, t)[
                                "per_call"
                            ]
                        )
                        for n in ("verbex", "httpx")
                    },
                )
                r = ratio(figs["verbex"], figs["httpx"])
                lines.append(
                    f"| {tasks} | {figs['verbex'].span(1e6, '.1f')} | {figs['httpx'].span(1e6, '.1f')} | "
                    f"{r.span(1, '.2f')} |"
                )
                target = 1.10 if tasks <= 10 else 1.0
                summary.append(
                    (
                        f"async per call, {tasks} tasks",
                        f"{r.median:.2f}x",
                        "raw httpx 1.00x",
                        f"{r.median:.2f}",
                        f"<= {target:.2f}",
                        _met(r.median <= target),
                    )
                )

        if want("imports"):
            print("import time...", flush=True)
            lines += ["", *_imports(ours, peers, sizes, summary)]

        if want("downloads"):
            print("downloads...", flush=True)
            lines += ["", *_downloads(ours, peers, work, datasets[1:], sizes, summary, None)]

        if want("https"):
            print("downloads over HTTPS...", flush=True)
            lines += ["", *_downloads(ours, peers, work, datasets[1:], sizes, summary, tls)]

        if want("write-size"):
            print("write size A/B over HTTPS...", flush=True)
            lines += ["", *_write_sizes(ours, work, datasets[-1], sizes, summary, tls)]

        if want("profile"):
            print("overhead budget...", flush=True)
            lines += ["", *_profile(ours, api, sizes)]

    if want("bulk"):
        print("bulk...", flush=True)
        lines += ["", *_bulk(ours, work, sizes, summary)]

    if want("https-bulk"):
        print("bulk over HTTPS...", flush=True)
        lines += ["", *_bulk_https(ours, peers, work, sizes, summary, tls)]

    header = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; generated by `make bench"
        f"{' (smoke: tiny sizes, figures meaningless)' if args.smoke else ''}` "
        f"on {time.strftime('%Y-%m-%d')}.",
        f"Versions: {_versions(ours, peers)}.",
        "",
        "| figure | ours | best peer | ratio | target | met |",
        "|---|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in summary],
        "",
        "Ratios are per-round ratios from interleaved runs, then their median; "
        "times are medians with min-max.",
        "",
    ]
    text = "\n".join(header + lines + MISSES) + "\n"
    (work / "RESULTS.md").write_text(text)
    if not args.smoke and args.only is None:
        RESULTS.write_text(text)
    print(text)
    return 0


MISSES = [
    "",
    "## What limits each figure, what was tried",
    "",
    "- **This run's machine.** 2 cores and nothing else running, in a VM whose speed keeps",
    "  changing: the same work by hand at 16 (below) took 1.12 s in this run, 1.12-1.68 s in",
    "  last session's three runs, and 1.24-1.70 s in this session's A/Bs between them;",
    "  google-cloud-storage's bulk run 3.21 s here (2.79-4.32 s before). Page-cache writes",
    "  also swing between identical runs (1 GiB of 256 KiB `pwrite`s: 0.22-0.74 s, all system",
    "  time; 1 MiB writes 0.22-1.57 s), and every figure that writes a GiB moves with them.",
    "  Each run starts with the previous run's dirty pages on disk (`os.sync`, off the clock).",
    "  Medians of interleaved rounds and per-round ratios are the fairest view this machine",
    "  gives; a figure near its target flips between runs (this run: 64 MiB and 1 GiB against",
    "  google-cloud-storage and the HTTPS bulk against it, all met in one run or another). So",
    "  each HTTPS figure has two references measured in the same rounds: the receive floor",
    "  (urllib3 reading and dropping the bytes) and the same work by hand (what any client",
    "  doing our job must do, in as few lines as it can be written).",
    "- **vs google-cloud-storage, one file (target 2x: 1.95x at 64 MiB, 1.87x at 1 GiB here;",
    "  last session 1.80-2.22x and 1.21-1.98x, one run meeting 64 MiB).** The same work by",
    "  hand (urllib3, crc32c, 64 KiB `pwrite`s, rename) was 1.83x and 2.04x",
    "  google-cloud-storage here, the receive floor 2.19x and 2.44x: ours with `fsync=False`",
    "  ran at 1.09x and 0.95x the by-hand speed, 0.9x the floor's. google-cloud-storage 3.17.1",
    "  took 0.16 s for 64 MiB and 2.37 s per GiB here, not the 6.55 s per GiB the issue",
    "  measured. Tried and not kept: the writes on a second thread (slower than writing inline:",
    "  1.47 s against 1.15 s per GiB in a minimal loop).",
    "- **HTTPS bulk speed-up (target 10x with default fsync: 7.2x here; 5.5-8.8x in last",
    "  session's three runs).** The same work by hand at 16 (threads that each call the API,",
    "  GET, crc32c, write, fdatasync and rename, nothing else) reached 10.4x here, the receive",
    "  floor 12.9x; ours ran at 0.70x the by-hand speed (0.77-0.86x before, 0.80-0.88x in this",
    "  session's A/Bs of 6-10 interleaved rounds), using ~0.3-0.7 more client CPU-seconds per",
    "  batch. `perf stat` of one batch each: ours 71-75k context switches, 17-19k page faults",
    "  and 8.6k CPU migrations; by hand 52-56k, 11k and 4.3k. Most of the difference is the",
    "  slot hand-over: 32 workers with fsync, so that a file waiting for its flush lends its",
    "  slot to a parked worker, and every lend wakes a worker whose memory has gone cold.",
    "  Tried this session:",
    "  - a worker keeping its slot through the flush while flushes are fast: 0.90-0.92x the",
    "    time of this batch (A/Bs of 6-10 rounds; page faults down to the by-hand count), but",
    "    the plain-http batch, which slots and not the CPU limit, took 1.14x (1.29 s against",
    "    0.84 s at 16 in a full run, under its met 10x). Reverted: a rule that tells the two",
    "    apart (measuring the batch's rate with and without lending) is the next step;",
    "  - the environment's proxies read once per storage pool instead of per request (~60",
    "    µs) and a cheaper check of the signed URL (~16 µs): kept, 0.94-1.00x in A/Bs;",
    "  - the directory and manifest fsyncs switched off: 0.92x with the slot kept, no clear",
    "    change (0.99x) with it lent, as shipped, where the flush overlaps the next download.",
    "    Kept: they make a rename and a manifest line durable before the item is reported;",
    "    sharing one round of them among files that finish together would go with keeping the",
    "    slot;",
    "  - each worker signing its own URL instead of the signing thread: no better (1.03-1.05x);",
    "  - 1 MiB reads, or 256 KiB / 1 MiB writes (with the slot kept): 0.92-0.96x, inside the",
    "    rounds' spread (0.8-1.25) and against the single-file A/B below, so not taken.",
    "  Measured after this run (8-10 interleaved rounds each, the VM slower: the same work by",
    "  hand took 1.39-1.65 s at 16, about 7-8.5x ours at 1, where 10x needs 1.17 s):",
    "  - where ours differs from by hand: the same 16 plain threads with our signing, running",
    "    the by-hand download function instead of ours, took 0.84-0.92x the time and ~10k",
    "    fewer context switches; our `signed_url` against a raw httpx POST made no difference.",
    "    At concurrency 1 ours costs 6.6-7.7 ms of CPU per file, by hand 5.7-6.3 ms: the",
    "    `.part` lock (open, flock and two stats against a bare open), the directory fsync,",
    "    the manifest line (~0.18 ms), the signed-URL check (~0.13 ms, httpx's URL parse) and",
    "    the per-item path checks (~0.2 ms). At 16 each costs more than its own CPU: perf puts",
    "    ~80% of the context switches in `take_gil`, and every system call that lets go of the",
    "    GIL, and every millisecond of Python, adds hand-overs of it;",
    "  - concurrency: by hand with 8, 12, 16 and 24 threads used 1.1-1.2, 1.34, 1.5 and 1.85",
    "    CPU-seconds for the same 200 files, and 12 were as fast as 16. Ours at 12 and 8 took",
    "    0.89x and 0.93x the time of ours at 16, with 0.85x and 0.73x the CPU (32k and 11.5k",
    "    context switches against 56k); on the plain-http batch 12 took 0.94x and 8 1.18x. On",
    "    this VM at its speed that day, 16 is past the concurrency that finishes the batch",
    "    soonest, by hand as for ours: each thread past what the CPU serves adds GIL hand-overs",
    "    to every other. Lending the slot keeps all 16 receiving, which is its cost here;",
    "    fewer spare workers for it (18 or 20 instead of 32) changed nothing (1.01-1.04x, the",
    "    same context switches);",
    "  - each flush on one of 4 flushing threads, the receiving thread going straight on to its",
    "    next download (no lending): 0.93-0.99x here and 0.99x on the plain-http batch, no",
    "    clear win, not kept; 2 or 4 signing threads: 1.06x and 1.13x (more threads again);",
    "  - glibc's per-thread arenas (`MALLOC_ARENA_MAX=1`, or a 64 MiB trim threshold): page",
    "    faults 19k -> 12-14k, time 0.97x. So the page faults are not the cost; keeping the",
    "    slot's gain (0.94x in the same rounds) follows its context switches (47k against 54k).",
    "- **HTTPS download vs curl.** With fsync on, `_files` starts writeback every 4 MiB written",
    "  (`posix_fadvise(POSIX_FADV_DONTNEED)`), so the disk writes overlap the transfer and the",
    "  fdatasync before the rename waits for the last few MiB: 1.37 s against 1.80 s for 1 GiB",
    "  in an A/B of 5 interleaved rounds (0.090 s against 0.117 s for 64 MiB). Our default",
    "  against `curl -o` + `sync FILE`: 1.47x at 64 MiB and 1.65x at 1 GiB here (1.23-1.44x at",
    "  1 GiB last session, 0.91x before early writeback). `fsync=False` against plain `curl",
    "  -o`: 1.22x at 64 MiB, 1.20x at 1 GiB. Peak RSS 38 MiB at both sizes (flat: one 256 KiB",
    "  read and its slices in flight).",
    "- **Per call (target 1.10x raw httpx: 1.12x here, rounds 0.95-1.32; 1.08-1.10x in last",
    "  session's runs).** `client.call` sends the generated operation's `_get_kwargs` request",
    "  itself, through the client's transport, and parses with its `_parse_response` (it ran",
    "  `sync_detailed`, with its `Response` wrapper and a context variable to find the reply:",
    "  1.16x). Without a socket (an in-memory transport, GC on), a `signed_url` costs ~35 µs",
    "  more than raw httpx's ~120 µs: ~9 µs our transport (auth, attempts, error mapping), ~10",
    "  µs the generated request and model, ~15 µs the argument checks and `SignedRecordingUrl`,",
    "  spread over ~80 more Python calls than raw httpx's ~940.",
    "- **Write size (shipped: 256 KiB reads, 64 KiB writes).** The A/B rows move with the page",
    "  cache: this run 256 KiB writes with 1 MiB reads 0.94x the shipped time, every other",
    "  pair 1.01-1.10x, and 1 MiB writes with 1 MiB reads 2.57x (bimodal); last session 64 KiB",
    "  writes beat 256 KiB in all three full runs (1.30-1.61x) and in a focused set of 8",
    "  rounds (1.45 s against 1.74 s per GiB, lower system time). Large writes are bimodal on",
    "  this kernel (1 MiB `pwrite`s: 0.22-1.57 s per GiB in a minimal loop), most likely the",
    "  page cache's large-folio allocations on a fragmented VM; 64 KiB costs a few more system",
    "  calls when memory is not fragmented. Reads stay 256 KiB: 1 MiB reads won nothing clear",
    "  and cost memory per download.",
    "- **Download vs curl, plain http.** Like for like: `fsync=False` against plain `curl -o`",
    "  (both leave the kernel to write back), and our default, which fsyncs before the atomic",
    "  rename, against `curl -o` + `sync FILE`. The engine is the HTTPS one (urllib3 reads of",
    "  256 KiB, crc32c, 64 KiB `pwrite`s, one fdatasync before the rename). The download",
    "  worker imports urllib3 before the clock starts, as its docstring always said (it had",
    "  been ~40 ms of every figure), and plain-http storage builds no TLS context (~20 ms).",
    "- **Bulk speed-up, plain http.** Not the server: nginx and the helper use 0.1-0.2 CPU-s",
    "  per batch. The client is CPU- and GIL-bound on 2 cores: per recording it signs a URL",
    "  through httpx (on a signing thread just ahead of the downloads), sends the storage",
    "  request, receives, hashes, writes and renames; 64 threads are slower than 16. With",
    "  fsync, 10.6x here (9.3-13.1x in last session's runs); here the slot hand-over is what",
    "  keeps it over 10x (see the HTTPS bulk item).",
    "- **Async per call.** `sniffio` is a dependency because httpcore retries a failed import",
    "  of it on every async request (~1 ms each without it); raw httpx in the same venv",
    "  benefits equally, so the ratios compare the clients, not the import. At 50 tasks the cost",
    "  is httpcore's queue: at every event it rescans each waiting request against each",
    "  connection, checking idle ones for readability (cProfile: about half of a call's CPU).",
    "  `AsyncVerbex` holds calls beyond its 20 connections on a semaphore in front of the pool",
    "  (bounded by the pool timeout): 0.85x -> 0.74x raw httpx with 100 connections in an A/B",
    "  of 6 interleaved rounds. A smaller pool would be cheaper still on loopback (10: ~0.55x)",
    "  but halves what a far-away API can serve at once, so the default stays 20.",
    "  50 tasks: 0.98x here (0.90-1.02x in last session's runs), 10 tasks 1.01x (1.02-1.16x):",
    "  spreads like these between rounds are the shared machine.",
    "- **Import.** `import verbex_client` loads the package root only; the rest loads on first",
    "  use. A `signed_url` call needs httpx, attrs and the generated operation (its models are",
    "  attrs classes): those alone cost 1.25-1.35x `import httpx` here (attrs by itself about",
    "  0.2x), the floor for any client calling the generated code, and ours adds 0.1-0.2x on",
    "  top (the first-call row and its floor above; fourteen small modules of ours, no other",
    "  library). Not done: dropping attrs, a core dependency of the generated code, which is",
    "  never edited by hand.",
]


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _versions(ours: Path, peers: Path) -> str:
    code = (
        "import importlib.metadata as m, sys; print(', '.join(f'{p} {m.version(p)}' for p in sys.argv[1:]))"
    )
    a = subprocess.run(
        [str(ours), "-c", code, "verbex-client", "httpx", "attrs"], capture_output=True, text=True
    )
    b = subprocess.run(
        [str(peers), "-c", code, "openai", "retell-sdk", "requests", "httpx", "google-cloud-storage"],
        capture_output=True,
        text=True,
    )
    nginx = (
        subprocess.run(["nginx", "-v"], capture_output=True, text=True)
        .stderr.strip()
        .replace("nginx version: ", "")
    )
    curl = (
        subprocess.run(["curl", "--version"], capture_output=True, text=True)
        .stdout.split("\n")[0]
        .split(" ")[1]
    )
    return f"{a.stdout.strip()}; peers venv: {b.stdout.strip()}; {nginx}; curl {curl}"


# What a signed_url call loads on first use: the generated operation and its attrs models.
OPERATION = "import verbex_api.api.call_recording.get_signed_url_v1_call_recording_signed_url_post"


def _imports(ours: Path, peers: Path, sizes: Sizes, summary: list[tuple[str, ...]]) -> list[str]:
    verbex_bin = str(ours.parent / "verbex")
    runs = {
        "bare interpreter": [str(ours), "-c", "pass"],
        "import httpx": [str(ours), "-c", "import httpx"],
        "import verbex_client": [str(ours), "-c", "import verbex_client"],
        "from verbex_client import Verbex": [str(ours), "-c", "from verbex_client import Verbex"],
        "Verbex + what a first call imports": [
            str(ours),
            "-c",
            f"from verbex_client import Verbex; {OPERATION}",
        ],
        "floor: httpx + attrs": [str(ours), "-c", "import httpx, attrs"],
        "floor: httpx + the generated operation": [str(ours), "-c", f"import httpx; {OPERATION}"],
        "verbex --help": [verbex_bin, "--help"],
        "peers: bare interpreter": [str(peers), "-c", "pass"],
        "peers: import openai": [str(peers), "-c", "import openai"],
        "peers: import retell": [str(peers), "-c", "import retell"],
        "peers: import httpx": [str(peers), "-c", "import httpx"],
    }
    figs = interleaved(sizes.import_runs, {n: (lambda a=a: wall(a)) for n, a in runs.items()})
    bare, peers_bare = figs["bare interpreter"].median, figs["peers: bare interpreter"].median
    net = {n: f.median - (peers_bare if n.startswith("peers") else bare) for n, f in figs.items()}
    httpx_net = net["import httpx"]
    lines = [
        "## Import time (fresh process, net of a bare interpreter)",
        "",
        "| what | ms, median (min-max) | net ms | net / net `import httpx` |",
        "|---|---|---|---|",
    ]
    for name, fig in figs.items():
        reference = net["peers: import httpx"] if name.startswith("peers") else httpx_net
        share = f"{net[name] / reference:.2f}" if "bare" not in name and reference > 0 else "-"
        lines.append(f"| {name} | {fig.span(1e3, '.1f')} | {net[name] * 1e3:.1f} | {share} |")
    r_import = net["import verbex_client"] / httpx_net
    r_verbex = net["from verbex_client import Verbex"] / httpx_net
    r_first_call = net["Verbex + what a first call imports"] / httpx_net
    r_floor = net["floor: httpx + the generated operation"] / httpx_net
    r_help = net["verbex --help"] / httpx_net
    r_openai = net["peers: import openai"] / net["peers: import httpx"]
    summary.append(
        (
            "import verbex_client (net, vs import httpx)",
            f"{r_import:.2f}x",
            f"openai {r_openai:.2f}x",
            f"{r_import:.2f}",
            "<= 1.20",
            _met(r_import <= 1.2),
        )
    )
    summary.append(
        (
            "from verbex_client import Verbex (net)",
            f"{r_verbex:.2f}x",
            f"openai {r_openai:.2f}x",
            f"{r_verbex:.2f}",
            "(reported)",
            "-",
        )
    )
    summary.append(
        (
            "Verbex + its first call's imports (net); floor: httpx + generated code",
            f"{r_first_call:.2f}x",
            f"floor {r_floor:.2f}x",
            f"{r_first_call:.2f}",
            "(reported)",
            "-",
        )
    )
    summary.append(
        (
            "verbex --help (net, vs import httpx)",
            f"{r_help:.2f}x",
            "-",
            f"{r_help:.2f}",
            "<= 0.50",
            _met(r_help <= 0.5),
        )
    )
    top = subprocess.run(
        [str(ours), "-X", "importtime", "-c", "from verbex_client import Verbex"],
        capture_output=True,
        text=True,
    ).stderr.splitlines()[1:]
    rows = sorted((line.split("|") for line in top if line.count("|") == 2), key=lambda p: -int(p[1]))[:10]
    lines += [
        "",
        "Top cumulative imports of `from verbex_client import Verbex` (`python -X importtime`, µs):",
        "",
        "| module | cumulative µs | self µs |",
        "|---|---|---|",
    ]
    lines += [f"| `{p[2].strip()}` | {p[1].strip()} | {p[0].split(':')[1].strip()} |" for p in rows]
    return lines


def _profile(ours: Path, api: str, sizes: Sizes) -> list[str]:
    result = worker(ours, "profile", api, sizes.profile_calls)
    result.pop("maxrss_kib", None)
    total = result["total (Recordings.signed_url)"]
    lines = [
        "## Overhead budget: where a `signed_url` call spends its time (cProfile, cumulative)",
        "",
        "| part | µs per call (under the profiler) | share of the call |",
        "|---|---|---|",
    ]
    for name, seconds in result.items():
        lines.append(f"| {name} | {seconds * 1e6:.1f} | {seconds / total:.0%} |")
    lines += [
        "",
        "Parts nest (parsing includes from_dict and timestamps); the profiler inflates absolute times.",
    ]
    return lines


def _server_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by `pids` and their children (nginx workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid in pids or ppid in pids:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _start_helper(ours: Path, port: int, storage_url: str, latency: float) -> subprocess.Popen[str]:
    """The bulk runs' API and delaying helper (worker.py `serve`), once it says it is ready."""
    proc = subprocess.Popen(
        [str(ours), WORKER, "serve", str(port), storage_url, str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        proc.wait(timeout=10)
        raise SystemExit("the bulk helper did not start")
    return proc


def _bulk(ours: Path, work: Path, sizes: Sizes, summary: list[tuple[str, ...]]) -> list[str]:
    """download_many against nginx, each storage reply held back `bulk_latency` by auth_request."""
    helper_port = free_port()
    storage = BulkStorage(
        free_port(),
        helper_port,
        work / "www" / "bulk",
        make_bulk_objects(work / "www" / "bulk", sizes.bulk_count, sizes.bulk_size),
    )
    storage_url = f"http://127.0.0.1:{storage.port}"

    def helper(latency: float) -> subprocess.Popen[str]:
        return _start_helper(ours, helper_port, storage_url, latency)

    api = f"http://127.0.0.1:{helper_port}"
    dest = work / "bulk"
    server_cpu: dict[str, Figure] = {}
    client_cpu: dict[str, Figure] = {}

    def run(c: int, fsync: bool, pids: list[int], flavour: str = "sync") -> float:
        shutil.rmtree(dest, ignore_errors=True)
        before = _server_cpu_seconds(pids)
        mode = "fsync" if fsync else "nofsync"
        result = worker(ours, "bulk", api, "bench-key", sizes.bulk_count, c, dest, mode, flavour)
        key = f"{c}-{mode}" + ("-async" if flavour == "async" else "")
        server_cpu.setdefault(key, Figure()).values.append(_server_cpu_seconds(pids) - before)
        client_cpu.setdefault(key, Figure()).values.append(result["cpu"])
        return result["seconds"]

    key_c = 16 if 16 in sizes.bulk_concurrency else max(sizes.bulk_concurrency)

    with Nginx(work, [], storage) as nginx:
        assert nginx.proc is not None
        proc = helper(sizes.bulk_latency)
        pids = [nginx.proc.pid, proc.pid]
        try:
            figs = interleaved(
                sizes.bulk_rounds,
                {
                    **{
                        (c, fsync): (lambda c=c, fsync=fsync: run(c, fsync, pids))
                        for fsync in (True, False)
                        for c in sizes.bulk_concurrency
                    },
                    (key_c, "async"): lambda: run(key_c, False, pids, "async"),
                },
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        proc = helper(0.0)
        pids = [nginx.proc.pid, proc.pid]
        top = max(sizes.bulk_concurrency)
        try:
            no_latency = interleaved(sizes.bulk_rounds, {"none": lambda: run(top, False, pids)})["none"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    shutil.rmtree(dest, ignore_errors=True)
    mib = sizes.bulk_count * sizes.bulk_size / (1 << 20)
    lines = [
        f"## Bulk: `download_many` of {sizes.bulk_count} x {sizes.bulk_size >> 10} KiB, "
        f"{sizes.bulk_latency * 1000:.0f} ms added storage latency",
        "",
        "Storage is nginx (sendfile); `auth_request` holds each reply back by asking a helper that",
        "only sleeps. The API is the same asyncio helper. Both run in their own processes.",
        "",
        "| concurrency | default (fsync): seconds | speed-up vs 1 | `fsync=False`: seconds | speed-up vs 1 "
        "| client CPU s | servers CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in sizes.bulk_concurrency:
        durable, fast = figs[(c, True)], figs[(c, False)]
        lines.append(
            f"| {c} | {durable.span(1, '.2f')} | {ratio(figs[(1, True)], durable).span(1, '.1f')}x "
            f"| {fast.span(1, '.2f')} | {ratio(figs[(1, False)], fast).span(1, '.1f')}x "
            f"| {client_cpu[f'{c}-nofsync'].median:.2f} | {server_cpu[f'{c}-nofsync'].median:.2f} |"
        )
    lines += [
        "",
        "CPU columns are for the `fsync=False` runs: the client's own process time, and nginx's",
        "plus the helper's. Two cores in all; CPU seconds near twice the wall time mean CPU-bound.",
        "",
        f"`AsyncVerbex.download_many`, concurrency {key_c}, `fsync=False`: "
        f"{figs[(key_c, 'async')].span(1, '.2f')} s, "
        f"{ratio(figs[(1, False)], figs[(key_c, 'async')]).span(1, '.1f')}x the sync run at concurrency 1 "
        f"(client CPU {client_cpu[f'{key_c}-nofsync-async'].median:.2f} s).",
    ]
    cpu = server_cpu[f"{top}-nofsync"].median  # the last runs: the no-latency ones
    lines += [
        "",
        f"Server headroom: with no added latency, concurrency {top} and `fsync=False` the batch takes "
        f"{no_latency.span(1, '.2f')} s ({mib / no_latency.median:.0f} MiB/s) and the servers use "
        f"{cpu:.2f} CPU-seconds of it: the server is not what limits the runs above.",
    ]
    for fsync, label in ((True, "default (fsync)"), (False, "`fsync=False`")):
        speedup = ratio(figs[(1, fsync)], figs[(key_c, fsync)]).median
        summary.append(
            (
                f"bulk speed-up, concurrency {key_c} vs 1, {label}",
                f"{speedup:.1f}x",
                "-",
                f"{speedup:.1f}",
                ">= 10",
                _met(speedup >= 10),
            )
        )
    return lines


GCS = "google-cloud-storage Blob.download_to_filename"
FLOOR = "receive floor: urllib3 read and dropped"  # what TLS + HTTP alone cost: no checksum, no file
WORK_FLOOR = "the same work by hand: urllib3, crc32c, 64 KiB pwrites, rename (no fsync)"


def _downloads(
    ours: Path,
    peers: Path,
    work: Path,
    datasets: list[Dataset],
    sizes: Sizes,
    summary: list[tuple[str, ...]],
    tls: Tls | None,
) -> list[str]:
    """Each object downloaded to disk in interleaved rounds: curl, our client, and raw httpx
    (plain http) or google-cloud-storage (HTTPS, `tls` given), from the same nginx."""
    env = tls.client_env() if tls is not None else None
    cacert = ["--cacert", str(tls.ca)] if tls is not None else []
    downloaders = {
        "verbex_client (default)": (ours, "verbex"),
        "verbex_client fsync=False": (ours, "verbex-nofsync"),
    }
    downloaders.update(
        {GCS: (peers, "gcs"), FLOOR: (ours, "floor"), WORK_FLOOR: (ours, "work-floor")}
        if tls is not None
        else {"raw httpx iter_raw": (ours, "httpx")}
    )
    prefix = "HTTPS download" if tls is not None else "download"
    if tls is None:
        lines = ["## Download to disk from nginx (sendfile on)", ""]
    else:
        lines = [
            "## Download to disk over HTTPS (nginx, TLS 1.3, a trustme certificate for 127.0.0.1)",
            "",
            "Every client verifies the server against the benchmark's CA: curl with `--cacert`, ours",
            "through `SSL_CERT_FILE`, google-cloud-storage (anonymous, `api_endpoint` = this nginx,",
            "GETting `/download/storage/v1/b/bench/o/<object>?alt=media`, the same file) through",
            "`REQUESTS_CA_BUNDLE`. Ours and google-cloud-storage verify crc32c from `x-goog-hash`.",
            "The receive floor is urllib3 (our venv) reading the same URL and dropping the bytes: no",
            "checksum, no file; no Python client can beat it by much on this TLS stack. The same work",
            "by hand adds what every download here must do: crc32c and the file (64 KiB `pwrite`s,",
            "renamed into place), no fsync, no lock, retry or check beyond the checksum.",
            "",
        ]
    lines += [
        "| size | client | seconds, median (min-max) | GB/s | ratio to curl (time) | CPU s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    peaks: list[float] = []
    target = work / "downloaded.ogg"
    for d in datasets:
        url = f"https://127.0.0.1:{d.tls_port}" if tls is not None else f"http://127.0.0.1:{d.port}"
        rss: dict[str, list[float]] = {name: [] for name in downloaders}
        cpu: dict[str, Figure] = {}

        def run_worker(
            name: str,
            url: str = url,
            d: Dataset = d,
            rss: dict[str, list[float]] = rss,
            cpu: dict[str, Figure] = cpu,
        ) -> float:
            python, contender = downloaders[name]
            result = worker(python, "download", contender, url, target, d.path.name, env=env)
            rss[name].append(result["maxrss_kib"] / 1024)
            cpu.setdefault(name, Figure()).values.append(result["cpu"])
            target.unlink(missing_ok=True)
            return result["seconds"]

        def run_curl(fsync: bool, url: str = url, cpu: dict[str, Figure] = cpu) -> float:
            signed = json.loads(
                subprocess.run(
                    ["curl", "-s", *cacert, "-X", "POST", url + "/v1/call-recording/signed-url"],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )["signed_url"]
            seconds, used = timed(["curl", "-s", *cacert, "-o", str(target), signed])
            if fsync:  # coreutils `sync FILE` fsyncs just that file
                seconds += wall(["sync", str(target)])
            else:
                cpu.setdefault("curl -o", Figure()).values.append(used)
            target.unlink(missing_ok=True)
            return seconds

        contenders: dict[str, Callable[[], float]] = {
            "curl -o": lambda: run_curl(False),
            "curl -o, then sync FILE": lambda: run_curl(True),
        }
        contenders.update({name: (lambda name=name: run_worker(name)) for name in downloaders})
        figs = interleaved(sizes.download_rounds, contenders)
        for name, fig in figs.items():
            peak = f"{statistics.median(rss[name]):.0f}" if name in rss else "-"
            used = f"{cpu[name].median:.2f}" if name in cpu else "-"
            gbps = d.size / fig.median / 1e9
            lines.append(
                f"| {d.name} | {name} | {fig.span(1, '.2f')} | {gbps:.2f} | "
                f"{ratio(fig, figs['curl -o']).span(1, '.2f')} | {used} | {peak} |"
            )
        peer = GCS if tls is not None else "raw httpx iter_raw"
        peer_label = "google-cloud-storage" if tls is not None else "raw httpx"
        peer_speed = ratio(figs["curl -o"], figs[peer]).median
        rows = [
            ("verbex_client fsync=False", "curl -o", "`fsync=False` vs curl -o", 1.0),
            ("verbex_client (default)", "curl -o, then sync FILE", "default (fsync) vs curl -o + sync", 1.0),
            ("verbex_client (default)", "curl -o", "default (fsync) vs curl -o", None),
        ]
        if tls is not None:  # google-cloud-storage does not fsync: like for like is fsync=False
            rows += [
                ("verbex_client fsync=False", GCS, "`fsync=False` vs google-cloud-storage", 2.0),
                ("verbex_client (default)", GCS, "default (fsync) vs google-cloud-storage", None),
                (FLOOR, GCS, "receive floor (no checksum, no file) vs google-cloud-storage", None),
                ("verbex_client fsync=False", FLOOR, "`fsync=False` vs the receive floor", None),
                (WORK_FLOOR, GCS, "the same work by hand vs google-cloud-storage", None),
                ("verbex_client fsync=False", WORK_FLOOR, "`fsync=False` vs the same work by hand", None),
            ]
        for ours_name, other, label, target_speed in rows:
            speed = ratio(figs[other], figs[ours_name])  # >1 means ours is faster
            summary.append(
                (
                    f"{prefix} {d.name}, {label}",
                    f"{speed.median:.2f}x {speed.spread()}",
                    f"{peer_label} {peer_speed:.2f}x" if other == "curl -o" else "-",
                    f"{speed.median:.2f}",
                    f">= {target_speed:.2f}" if target_speed else "(reported)",
                    _met(speed.median >= target_speed) if target_speed else "-",
                )
            )
        peak_rss = statistics.median(rss["verbex_client (default)"])
        peaks.append(peak_rss)
        summary.append(
            (
                f"{prefix} {d.name}, peak RSS",
                f"{peak_rss:.0f} MiB",
                "-",
                "-",
                "<= 64 MiB",
                _met(peak_rss <= 64),
            )
        )
    if tls is not None and len(peaks) > 1:
        growth = peaks[-1] - peaks[0]
        summary.append(
            (
                f"HTTPS peak RSS, {datasets[-1].name} minus {datasets[0].name}",
                f"{growth:+.1f} MiB",
                "-",
                "-",
                "flat (<= +8 MiB)",
                _met(growth <= 8),
            )
        )
    return lines


# The write size A/B: (_files.WRITE_SLICE, _storage.CHUNK_SIZE) pairs.
WRITE_SIZES = [(w, c) for c in (256 << 10, 1 << 20) for w in (64 << 10, 256 << 10, 1 << 20)]


def _write_sizes(
    ours: Path, work: Path, d: Dataset, sizes: Sizes, summary: list[tuple[str, ...]], tls: Tls
) -> list[str]:
    """Our HTTPS download (`fsync=False`) with each write slice and read size, interleaved."""
    current = tuple(
        int(v)
        for v in subprocess.run(
            [
                str(ours),
                "-c",
                "from verbex_client import _files, _storage; print(_files.WRITE_SLICE, _storage.CHUNK_SIZE)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    )
    url = f"https://127.0.0.1:{d.tls_port}"
    target = work / "downloaded.ogg"
    rss: dict[tuple[int, int], list[float]] = {pair: [] for pair in WRITE_SIZES}

    def run(pair: tuple[int, int]) -> float:
        result = worker(ours, "download", f"verbex-ab-{pair[0]}-{pair[1]}", url, target, env=tls.client_env())
        rss[pair].append(result["maxrss_kib"] / 1024)
        target.unlink(missing_ok=True)
        return result["seconds"]

    figs = interleaved(sizes.ab_rounds, {pair: (lambda pair=pair: run(pair)) for pair in WRITE_SIZES})
    base = figs[current] if current in figs else figs[WRITE_SIZES[1]]
    lines = [
        f"## Write size A/B: {d.name} over HTTPS, `fsync=False`",
        "",
        "`_files.WRITE_SLICE` (bytes per `pwrite`) and `_storage.CHUNK_SIZE` (bytes per urllib3",
        f"`read()`), set in the worker process; the shipped values are {current[0] >> 10} KiB /",
        f"{current[1] >> 10} KiB. {sizes.ab_rounds} interleaved rounds.",
        "",
        "| write slice | read size | seconds, median (min-max) | ratio to shipped (time) | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for pair, fig in figs.items():
        lines.append(
            f"| {pair[0] >> 10} KiB | {pair[1] >> 10} KiB | {fig.span(1, '.2f')} | "
            f"{ratio(fig, base).span(1, '.2f')} | {statistics.median(rss[pair]):.0f} |"
        )
    best = min(figs, key=lambda pair: ratio(figs[pair], base).median)
    speed = ratio(base, figs[best])
    summary.append(
        (
            f"write size A/B, best {best[0] >> 10}/{best[1] >> 10} KiB vs shipped "
            f"{current[0] >> 10}/{current[1] >> 10} KiB",
            f"{speed.median:.2f}x {speed.spread()}",
            "-",
            f"{speed.median:.2f}",
            "(reported)",
            "-",
        )
    )
    return lines


def _bulk_https(
    ours: Path, peers: Path, work: Path, sizes: Sizes, summary: list[tuple[str, ...]], tls: Tls
) -> list[str]:
    """download_many over HTTPS at 16 and 1, and google-cloud-storage's transfer_manager at 16,
    against one nginx whose replies `auth_request` holds back `bulk_latency`."""
    directory = work / "www" / "bulk"
    helper_port = free_port()
    storage = BulkStorage(
        free_port(),
        helper_port,
        directory,
        make_bulk_objects(directory, sizes.bulk_count, sizes.bulk_size),
        tls=tls,
    )
    storage_url = f"https://127.0.0.1:{storage.tls_port}"
    api, dest, env = f"http://127.0.0.1:{helper_port}", work / "bulk", tls.client_env()
    key_c = 16 if 16 in sizes.bulk_concurrency else max(sizes.bulk_concurrency)
    cpu: dict[str, Figure] = {}
    server_cpu: dict[str, Figure] = {}
    pids: list[int] = []

    def measured(key: str, python: Path, *args: object) -> float:
        shutil.rmtree(dest, ignore_errors=True)
        before = _server_cpu_seconds(pids)
        result = worker(python, *args, env=env)
        server_cpu.setdefault(key, Figure()).values.append(_server_cpu_seconds(pids) - before)
        cpu.setdefault(key, Figure()).values.append(result["cpu"])
        return result["seconds"]

    def run_ours(key: str, c: int, fsync: bool) -> float:
        mode = "fsync" if fsync else "nofsync"
        return measured(key, ours, "bulk", api, "bench-key", sizes.bulk_count, c, dest, mode, "sync")

    def run_gcs(key: str, c: int) -> float:
        return measured(key, peers, "bulk-gcs", storage_url, sizes.bulk_count, c, dest)

    def run_floor(key: str, c: int) -> float:
        return measured(key, ours, "bulk-floor", storage_url, sizes.bulk_count, c)

    def run_work_floor(key: str, c: int) -> float:
        return measured(key, ours, "bulk-work-floor", api, sizes.bulk_count, c, dest)

    names = {
        "ours 1": "`download_many`, concurrency 1, default (fsync)",
        "ours c": f"`download_many`, concurrency {key_c}, default (fsync)",
        "ours c nofsync": f"`download_many`, concurrency {key_c}, `fsync=False`",
        "gcs c": f"google-cloud-storage `transfer_manager.download_many`, {key_c} threads",
        "floor c": f"receive floor: urllib3, {key_c} threads, read and dropped (no API, no file)",
        "work c": f"the same work by hand, {key_c} threads: API call, GET, crc32c, write, fdatasync, rename",
    }
    with Nginx(work, [], storage) as nginx:
        assert nginx.proc is not None
        proc = _start_helper(ours, helper_port, storage_url, sizes.bulk_latency)
        pids += [nginx.proc.pid, proc.pid]
        try:
            figs = interleaved(
                sizes.bulk_rounds,
                {
                    "ours 1": lambda: run_ours("ours 1", 1, True),
                    "ours c": lambda: run_ours("ours c", key_c, True),
                    "ours c nofsync": lambda: run_ours("ours c nofsync", key_c, False),
                    "gcs c": lambda: run_gcs("gcs c", key_c),
                    "floor c": lambda: run_floor("floor c", key_c),
                    "work c": lambda: run_work_floor("work c", key_c),
                },
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    shutil.rmtree(dest, ignore_errors=True)
    lines = [
        f"## Bulk over HTTPS: {sizes.bulk_count} x {sizes.bulk_size >> 10} KiB, "
        f"{sizes.bulk_latency * 1000:.0f} ms added storage latency",
        "",
        "The same nginx and delaying helper as the bulk section, storage over HTTPS (the API stays",
        "plain http on loopback). google-cloud-storage GETs the same files under its media path",
        "(also held back), with crc32c checks; it signs nothing, ours asks the API for each URL.",
        "The receive floor GETs the same URLs with urllib3 and drops the bytes: no signing, no",
        "checksum, no file. The same work by hand is the least a client doing our job can do: 16",
        "threads that each call the API (httpx), GET (urllib3), crc32c, write, fdatasync and",
        "rename, with no lock, retry or check beyond the checksum.",
        "",
        "| run | seconds, median (min-max) | speed-up vs ours at 1 | client CPU s | servers CPU s |",
        "|---|---|---|---|---|",
    ]
    for key, label in names.items():
        lines.append(
            f"| {label} | {figs[key].span(1, '.2f')} | {ratio(figs['ours 1'], figs[key]).span(1, '.1f')}x "
            f"| {cpu[key].median:.2f} | {server_cpu[key].median:.2f} |"
        )
    for label, a, b, target_speed in (
        (f"HTTPS bulk speed-up, concurrency {key_c} vs 1, default (fsync)", "ours 1", "ours c", 10.0),
        (f"HTTPS bulk at {key_c}, default (fsync) vs google-cloud-storage", "gcs c", "ours c", 2.0),
        (f"HTTPS bulk at {key_c}, `fsync=False` vs google-cloud-storage", "gcs c", "ours c nofsync", None),
        (f"HTTPS bulk receive floor at {key_c} vs ours at 1 (a ceiling)", "ours 1", "floor c", None),
        (f"HTTPS bulk at {key_c}, default (fsync): our time / the floor's", "ours c", "floor c", None),
        (f"HTTPS bulk, the same work by hand at {key_c} vs ours at 1", "ours 1", "work c", None),
        (f"HTTPS bulk at {key_c}, default (fsync) vs the same work by hand", "work c", "ours c", None),
    ):
        speed = ratio(figs[a], figs[b])
        summary.append(
            (
                label,
                f"{speed.median:.2f}x {speed.spread()}",
                "-",
                f"{speed.median:.2f}",
                f">= {target_speed:g}" if target_speed else "(reported)",
                _met(speed.median >= target_speed) if target_speed else "-",
            )
        )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
