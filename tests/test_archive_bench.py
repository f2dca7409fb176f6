"""`benchmarks/archive.py --smoke`: the archive benchmark's every path runs (sandbox and moto
processes, S3 vs local, LocalCluster with 1 and 2 workers), so it cannot rot."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_archive_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "archive.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (ROOT / ".build" / "bench-smoke" / "ARCHIVE.md").read_text()
    for figure in (
        "## `download_many`: S3 (moto) vs a local directory",
        "| `s3://archive/...` (moto) |",
        "| moto alone: the same PUTs from memory",
        "## Distributed: `verbex_client.distributed.download_many` on a LocalCluster, into S3",
        "| 2 |",
        "## What an archive of 10 million recordings needs",
        "machines x",
    ):
        assert figure in report, figure
