"""schemathesis judges the sandbox's API side against openapi.json (it must not drift)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import ROOT, require_tool
from verbex_client.testing import Sandbox
from verbex_client.testing._audio import tone_wav


def run_schemathesis(sandbox: Sandbox, cwd: Path, max_examples: int) -> subprocess.CompletedProcess[str]:
    tool = require_tool("schemathesis", "pip install schemathesis (it is in the dev extra: make install)")
    return subprocess.run(
        [
            tool,
            "run",
            str(ROOT / "openapi.json"),
            "--url",
            sandbox.base_url,
            "-H",
            f"Authorization: Bearer {sandbox.api_key}",
            "--generation-database",
            "none",
            "--seed",
            "20261128",
            "--max-examples",
            str(max_examples),
        ],
        cwd=cwd,  # it writes .hypothesis/ and .schemathesis/ where it runs
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sandbox_conforms_to_the_spec(tmp_path: Path) -> None:
    with Sandbox(any_call_id=tone_wav(seconds=0.1)) as sandbox:
        result = run_schemathesis(sandbox, tmp_path, max_examples=150)
        served = len(sandbox.api_requests())
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout and served >= 150


def test_schemathesis_catches_a_drifted_sandbox(tmp_path: Path) -> None:
    with Sandbox(any_call_id=tone_wav(seconds=0.1)) as sandbox:
        sandbox.respond_next(b'{"file_name": "x.ogg", "signed_url": "http://h/x"}', count=10_000)
        result = run_schemathesis(sandbox, tmp_path, max_examples=20)
    assert result.returncode != 0
    assert "expires_at" in result.stdout
