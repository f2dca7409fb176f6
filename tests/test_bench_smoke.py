"""`make bench` with tiny sizes: every benchmark path runs (nginx, venvs, workers), so none can rot."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(
                ROOT / "benchmarks" / "run.py",
            ),
            "--smoke",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (ROOT / ".build" / "bench-smoke" / "RESULTS.md").read_text()
    for section in (
        "## Per call",
        "## Per call, async",
        "## Import time",
        "## Download to disk",
        "## Overhead budget",
        "## Bulk",
    ):
        assert section in report, section
    for figure in (
        "per call vs raw httpx",
        "import verbex_client",
        "verbex --help",
        "download 1 MiB",
        "bulk speed-up",
        "AsyncVerbex.download_many`, concurrency",
    ):
        assert figure in report, figure
    assert "| openai |" in report and "| retell-sdk |" in report and "| curl -o |" in report
