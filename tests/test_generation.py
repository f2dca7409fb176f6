"""`make generate` is deterministic; `make check-generated` catches hand edits and stale specs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

VENV = Path(sys.executable).parent.parent


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The files generation reads and writes, copied so tests can break them."""
    dest = tmp_path / "repo"
    dest.mkdir()
    for name in (
        "openapi.json",
        "generator-config.yaml",
        "Makefile",
        "pyproject.toml",
        "package.json",
        "package-lock.json",
    ):
        shutil.copy2(ROOT / name, dest / name)
    for folder in ("generated", "scripts"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def make(repo: Path, *targets: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    node_stamp = ROOT / "node_modules" / ".installed-stamp"
    env = {"VERBEX_OPTIC": str(ROOT / "node_modules" / ".bin" / "optic"), **env}
    return subprocess.run(
        ["make", "-s", f"VENV={VENV}", f"NODE_STAMP={node_stamp}", *targets],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_check_generated_passes_on_the_committed_tree(repo_copy: Path) -> None:
    result = make(repo_copy, "check-generated")
    assert result.returncode == 0, result.stderr


def test_generate_twice_gives_identical_output(repo_copy: Path) -> None:
    assert make(repo_copy, "generate").returncode == 0
    first = tree(repo_copy / "generated")
    assert make(repo_copy, "generate").returncode == 0
    assert tree(repo_copy / "generated") == first


def test_committed_generated_tree_is_exactly_what_generate_writes(repo_copy: Path) -> None:
    assert make(repo_copy, "generate").returncode == 0
    committed = {k: v for k, v in tree(ROOT / "generated").items() if "__pycache__" not in k}
    assert tree(repo_copy / "generated") == committed


def test_check_generated_fails_after_a_hand_edit(repo_copy: Path) -> None:
    target = repo_copy / "generated" / "verbex_api" / "models" / "call_recording_request.py"
    target.write_text(target.read_text() + "\n# hand edit\n")
    result = make(repo_copy, "check-generated")
    assert result.returncode != 0
    assert "make generate" in result.stderr
    assert "models/call_recording_request.py" in result.stderr


def test_check_generated_fails_on_an_extra_file(repo_copy: Path) -> None:
    (repo_copy / "generated" / "verbex_api" / "patch.py").write_text("x = 1\n")
    result = make(repo_copy, "check-generated")
    assert result.returncode != 0 and "patch.py" in result.stderr


def test_check_generated_fails_after_a_spec_edit_without_regeneration(repo_copy: Path) -> None:
    spec_path = repo_copy / "openapi.json"
    spec = json.loads(spec_path.read_text())
    spec["components"]["schemas"]["CallRecordingRequest"]["properties"]["note"] = {"type": "string"}
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    result = make(repo_copy, "check-generated")
    assert result.returncode != 0
    assert "make generate" in result.stderr
    # and regenerating repairs it
    assert make(repo_copy, "generate").returncode == 0
    assert make(repo_copy, "check-generated").returncode == 0
