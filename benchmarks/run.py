"""`make bench`: per-call cost of `Verbex.recordings.signed_url` against raw httpx, side by side.

Interleaved rounds (A B, then B A, ...) against the same local server, so
machine noise hits both sides alike; medians, min-max and ratios go to
benchmarks/RESULTS.md. `--smoke` runs tiny sizes (part of `make test`).

This is the first figure of the benchmark suite; nginx-served figures,
import time, download throughput and bulk speed-up are still to come.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import verbex_client
from verbex_client.testing import Sandbox

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def per_call_seconds(fn: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; does not write RESULTS.md")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    rounds, calls = (2, 20) if args.smoke else (args.rounds, args.calls)

    with Sandbox() as sandbox:
        sandbox.add_recording("bench-call", b"x" * 1024)
        url = f"{sandbox.base_url}/v1/call-recording/signed-url"
        body = {"call_id": "bench-call", "expiration_url_in_minutes": 10}
        headers = {"Authorization": f"Bearer {sandbox.api_key}"}
        with sandbox.client() as client, httpx.Client(headers=headers) as raw:

            def ours() -> object:
                return client.recordings.signed_url("bench-call")

            def raw_httpx() -> object:
                response = raw.post(url, json=body)
                response.raise_for_status()
                return json.loads(response.content)

            ours(), raw_httpx()  # warm both connections
            samples: dict[str, list[float]] = {"verbex_client": [], "raw httpx": []}
            for r in range(rounds):
                order = [("verbex_client", ours), ("raw httpx", raw_httpx)]
                for name, fn in order if r % 2 == 0 else reversed(order):
                    samples[name].append(per_call_seconds(fn, calls))

    ratios = [a / b for a, b in zip(samples["verbex_client"], samples["raw httpx"], strict=True)]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}, httpx {httpx.__version__},"
        f" verbex-client {verbex_client.__version__}.",
        f"Server: the bundled sandbox (Python, threaded) on 127.0.0.1;"
        f" {rounds} interleaved rounds x {calls} calls.",
        "",
        "| figure | median | min-max |",
        "|---|---|---|",
    ]
    for name, values in samples.items():
        ms = [v * 1000 for v in values]
        lines.append(
            f"| {name}, ms per signed-URL call | {statistics.median(ms):.3f} | {min(ms):.3f}-{max(ms):.3f} |"
        )
    lines.append(
        f"| ratio verbex_client / raw httpx (per round) | {statistics.median(ratios):.3f} |"
        f" {min(ratios):.3f}-{max(ratios):.3f} |"
    )
    lines += [
        "",
        "A Python server narrows differences between clients (its own cost dominates); the nginx-served",
        "figures the benchmark issue asks for are not measured yet.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.smoke:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
