"""`make demo`'s script runs end to end (its own checks make it exit non-zero on any failure)."""

from __future__ import annotations

import subprocess
import sys
import wave

from conftest import ROOT


def test_demo_fetches_a_verified_real_recording() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "byte-identical" in result.stdout and "sandbox stopped" in result.stdout
    target = ROOT / ".build" / "demo" / "webcall_demo-call-001_agent_demo.wav"
    with wave.open(str(target)) as w:
        assert w.getnframes() == 2 * w.getframerate()
    assert not list(target.parent.glob("*.part"))
