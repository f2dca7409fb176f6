"""`make demo`'s script runs end to end (its own checks make it exit non-zero on any failure)."""

from __future__ import annotations

import subprocess
import sys
import wave

from conftest import ROOT
from verbex_client.testing._audio import DEMO_CALL_IDS, demo_recording


def test_demo_fetches_verified_real_recordings_with_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, as on a terminal: the order is what a user sees
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout
    assert "$ verbex recordings url demo-call-001" in result.stdout
    download = result.stdout[result.stdout.index("$ verbex recordings download demo-call-001") :]
    lines = download.splitlines()
    summary = next(n for n, line in enumerate(lines) if "3 downloaded, 0 skipped, 0 failed" in line)
    per_file = [n for n, line in enumerate(lines) if line.startswith("downloaded demo-call-00")]
    assert len(per_file) == 3 and max(per_file) < summary  # each call's line, then the summary
    assert result.stdout.count("byte-identical") == 3 and "sandbox stopped" in result.stdout
    for call_id in DEMO_CALL_IDS:
        data, name = demo_recording(call_id)
        target = ROOT / ".build" / "demo" / name
        assert target.read_bytes() == data
        with wave.open(str(target)) as w:
            assert w.getnframes() == (2 + DEMO_CALL_IDS.index(call_id)) * w.getframerate()
    assert not list((ROOT / ".build" / "demo").glob("*.part"))
