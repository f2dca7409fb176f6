"""`make generate` is deterministic; `make check-generated` catches hand edits and stale specs;
`make regenerate` fetches a spec, updates, and pushes a review branch (end to end, 127.0.0.1 and a
local bare git remote)."""

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


def seed_mypy_cache(cache_dir: Path) -> None:
    """Start a scratch type-check from this checkout's mypy cache (6.8 s cold, 0.4 s warm):
    mypy re-checks every module whose source differs, so only the unchanged ones are reused."""
    cache = ROOT / ".mypy_cache"
    if cache.is_dir() and not cache_dir.exists():
        shutil.copytree(cache, cache_dir)


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


# --- regeneration in CI: `make regenerate` against a spec served from 127.0.0.1 -------------

sys.path.insert(0, str(ROOT / "scripts"))
import release  # noqa: E402
import spec_tools  # noqa: E402

HEALTH_OPERATION = {
    "get": {
        "tags": ["Health"],
        "summary": "Health",
        "operationId": "get_health_v1_health_get",
        "responses": {
            "200": {
                "description": "Successful Response",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"status": {"type": "string"}},
                            "required": ["status"],
                        }
                    }
                },
            }
        },
    }
}


def published_spec(repo: Path) -> dict[str, object]:
    """What the docs site would publish next: the repo's own spec plus one new operation."""
    spec = json.loads((repo / "openapi.json").read_text())
    spec["paths"]["/v1/health"] = HEALTH_OPERATION
    return spec


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def checkout_with_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A scratch git checkout of the repo (one commit on main) and a bare remote it pushed to."""
    # No global or system git config: the job must cope without a configured identity.
    (tmp_path / "gitconfig").write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = copy_repo(tmp_path / "repo")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "seed")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "--quiet", "origin", "main")
    return repo, remote


def test_regenerate_pushes_a_branch_with_the_changelog_entry_as_its_message(
    checkout_with_remote: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, remote = checkout_with_remote
    site = tmp_path / "site" / "api-reference"
    site.mkdir(parents=True)
    published = published_spec(repo)
    (site / "openapi.json").write_text(json.dumps(published))
    version = release.bumped(release.read_version(repo), "minor")
    api_version = published["info"]["version"]  # type: ignore[index]
    with serve_directory(tmp_path / "site") as base_url:
        url = f"{base_url}/api-reference/openapi.json"
        result = make(repo, "regenerate", f"SPEC_URL={url}", "REMOTE=origin")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        heads = git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        branches = sorted(heads.split())
        assert len(branches) == 2 and branches[0] == "main", branches
        branch = branches[1]
        assert (
            branch.startswith(f"regenerate/api-{api_version}-")
            and f"pushed {branch} to origin" in result.stdout
        )

        # the pushed commit: the new spec, the generated package, the version, the changelog
        assert git(remote, "show", f"{branch}:openapi.json") == spec_tools.dumps_normalised(published)
        assert f'__version__ = "{version}"' in git(
            remote, "show", f"{branch}:wrapper/verbex_client/_version.py"
        )
        files = set(git(remote, "diff", "--name-only", "main", branch).split())
        release_files = {"openapi.json", "CHANGELOG.md", "wrapper/verbex_client/_version.py"}
        assert (
            release_files <= files and "generated/verbex_api/api/health/get_health_v1_health_get.py" in files
        )
        assert all(f in release_files or f.startswith("generated/") for f in files), files
        entry = release.latest_entry(git(remote, "show", f"{branch}:CHANGELOG.md"))
        assert entry.startswith(f"## {version} (") and "- GET /v1/health: operation added" in entry
        assert git(remote, "log", "-1", "--format=%B", branch) == release.commit_message(entry) + "\n"
        assert git(remote, "log", "-1", "--format=%an <%ae>", branch).strip() == (
            "verbex-client regeneration <regenerate@verbex-client.invalid>"
        )
        assert git(remote, "rev-parse", f"{branch}~1") == git(
            remote, "rev-parse", "main"
        )  # one commit on main

        # a rerun for the same spec finds the branch already pushed and does nothing
        again = make(repo, "regenerate", f"SPEC_URL={url}", "REMOTE=origin")
        assert again.returncode == 0, again.stderr
        assert "already on origin: nothing to do" in again.stdout
        assert (
            sorted(git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split())
            == branches
        )


def test_regenerate_with_an_unchanged_spec_pushes_nothing(
    checkout_with_remote: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, remote = checkout_with_remote
    (tmp_path / "site").mkdir()
    shutil.copy2(repo / "openapi.json", tmp_path / "site" / "openapi.json")
    with serve_directory(tmp_path / "site") as base_url:
        result = make(repo, "regenerate", f"SPEC_URL={base_url}/openapi.json", "REMOTE=origin")
    assert result.returncode == 0, result.stderr
    assert "nothing to commit" in result.stdout
    assert git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split() == ["main"]
    assert (
        git(repo, "status", "--porcelain") == "" and git(repo, "branch", "--show-current").strip() == "main"
    )


def test_regenerate_reports_a_spec_url_it_cannot_fetch(
    checkout_with_remote: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, remote = checkout_with_remote
    (tmp_path / "site").mkdir()
    before = snapshot(repo)
    with serve_directory(tmp_path / "site") as base_url:
        result = make(repo, "regenerate", f"SPEC_URL={base_url}/missing.json", "REMOTE=origin")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {base_url}/missing.json: cannot fetch the spec: HTTP 404 File not found"], (
        result.stderr
    )
    assert snapshot(repo) == before
    assert git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split() == ["main"]


def test_the_ci_workflow_runs_regeneration_on_a_schedule_and_on_demand() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "regenerate-client.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["regenerate"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert any(c.startswith("make regenerate") for c in commands) and "make install node-tools" in commands
    assert workflow["permissions"]["contents"] == "write"
