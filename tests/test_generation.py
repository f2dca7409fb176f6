"""`make generate` is deterministic; `make check-generated` catches hand edits and stale specs."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT

VENV = Path(sys.executable).parent.parent


SCRATCH_SKIP = {".git", ".venv", "node_modules", ".build", "__pycache__", ".mypy_cache", ".ruff_cache"}
SCRATCH_SKIP |= {".pytest_cache", ".hypothesis", ".schemathesis", "build", "dist"}


def repo_files() -> list[str]:
    """The repo's files: tracked and new, not ignored (or, outside a git checkout, all but caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if listed.returncode == 0:
        return [name for name in listed.stdout.split("\0") if name]
    return [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*")
        if p.is_file() and not SCRATCH_SKIP & set(p.relative_to(ROOT).parts)
    ]


def copy_repo(dest: Path) -> Path:
    """The repo's files copied to dest: a scratch checkout."""
    for name in repo_files():
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the worktree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)  # copy2: keep mtimes, so make sees nothing stale
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the repo that tests can break."""
    return copy_repo(tmp_path / "repo")


def make(repo: Path, *targets: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`make TARGETS` in a scratch copy, with this checkout's venv and npm tools."""
    node_stamp = ROOT / "node_modules" / ".installed-stamp"
    env = {"VERBEX_OPTIC": str(ROOT / "node_modules" / ".bin" / "optic"), **env}
    return subprocess.run(
        ["make", "-s", f"VENV={VENV}", f"NODE_STAMP={node_stamp}", *targets],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file of a scratch copy except caches and build scratch space."""
    skip = {
        ".build",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".schemathesis",
        "node_modules",
    }
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not skip & set(p.relative_to(repo).parts)
    }


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """A tiny http.server on 127.0.0.1 serving directory; stopped by its own handle."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


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
