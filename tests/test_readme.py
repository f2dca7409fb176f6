"""Every code block in README.md runs against the sandbox, so the README cannot rot.

Python blocks run as scripts (a block defining `test_*` runs under pytest with
our plugin); shell blocks run line by line. The few shell lines that cannot
run here are listed in NOT_RUN with the test that proves them instead; a new
line that is neither run nor listed fails this test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from verbex_client.testing import Sandbox

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, re.DOTALL | re.MULTILINE)
CALL_IDS = ("call_123", "call_456", "call_1", "call_2")

NOT_RUN = {
    "make test": "it is the command running this test",
    "python -m build --wheel": "proven by test_packaging (it builds the wheel the same way)",
    "pip install dist/verbex_client-*.whl": "proven by test_packaging (fresh venv)",
    "make update-spec SPEC=path/to/new-openapi.json": "run on fixture specs by test_spec_diff and test_spec",
}


@pytest.fixture
def readme_sandbox(verbex_sandbox: Sandbox, tmp_path: Path) -> tuple[Sandbox, dict[str, str]]:
    for call_id in CALL_IDS:
        verbex_sandbox.add_recording(call_id, os.urandom(50_000), file_name=f"{call_id}.ogg")
    (tmp_path / "ids.txt").write_text("call_1\ncall_2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBEX_")}
    env.update(VERBEX_API_KEY=verbex_sandbox.api_key, VERBEX_BASE_URL=verbex_sandbox.base_url)
    return verbex_sandbox, env


def shell_lines() -> list[str]:
    lines = []
    for language, body in BLOCKS:
        if language == "sh":
            for line in body.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    lines.append(command)
    return lines


def test_the_readme_has_blocks_of_both_kinds() -> None:
    kinds = {language for language, _ in BLOCKS}
    assert kinds == {"python", "sh"}, kinds
    assert len(shell_lines()) >= 8


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_python_block_runs(
    index: int, readme_sandbox: tuple[Sandbox, dict[str, str]], tmp_path: Path
) -> None:
    _, env = readme_sandbox
    code = BLOCKS[index][1]
    if re.search(r"^def test_", code, re.MULTILINE):
        (tmp_path / "test_readme_block.py").write_text(code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_block.py"]
    else:
        command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"README block {index} failed:\n{code}\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("command", shell_lines())
def test_shell_line_runs_or_is_proven_elsewhere(
    command: str, readme_sandbox: tuple[Sandbox, dict[str, str]], tmp_path: Path
) -> None:
    if command in NOT_RUN:
        return
    _, env = readme_sandbox
    argv = shlex.split(command)
    if argv[0] == "verbex":
        argv = [sys.executable, "-m", "verbex_client", *argv[1:]]
        cwd = tmp_path
    elif argv[:1] == ["make"] and argv[1:] in (["demo"], ["install"]):
        cwd = ROOT
    else:
        pytest.fail(f"README line {command!r} is neither run here nor listed in NOT_RUN with its proof")
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_not_run_lists_only_lines_that_exist() -> None:
    assert set(NOT_RUN) <= set(shell_lines())
