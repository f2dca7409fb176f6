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
        "## Download to disk over HTTPS",
        "## Write size A/B",
        "## Overhead budget",
        "## Bulk",
        "## Bulk over HTTPS",
    ):
        assert section in report, section
    for figure in (
        "per call vs raw httpx",
        "import verbex_client",
        "verbex --help",
        "download 1 MiB",
        "bulk speed-up",
        "AsyncVerbex.download_many`, concurrency",
        "HTTPS download 1 MiB, `fsync=False` vs curl -o",
        "HTTPS download 1 MiB, `fsync=False` vs google-cloud-storage",
        "HTTPS download 1 MiB, peak RSS",
        "HTTPS peak RSS, 2 MiB minus 1 MiB",
        "write size A/B, best",
        "HTTPS bulk speed-up",
        "HTTPS bulk at 4, default (fsync) vs google-cloud-storage",
    ):
        assert figure in report, figure
    assert "| openai |" in report and "| retell-sdk |" in report and "| curl -o |" in report
    assert "| google-cloud-storage Blob.download_to_filename |" in report
    assert "google-cloud-storage `transfer_manager.download_many`" in report
