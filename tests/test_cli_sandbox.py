"""`verbex sandbox` and `python -m verbex_client.testing`: one command, one set of options."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from test_cli_output import VERBEX, run_on_a_terminal

from conftest import ROOT

COMMANDS = {
    "verbex sandbox": [VERBEX, "sandbox"],
    "python -m verbex_client.testing": [sys.executable, "-m", "verbex_client.testing"],
}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VERBEX_")}


class RunningSandbox:
    """A standalone sandbox process: what it printed up to "Ctrl-C stops the sandbox."."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=clean_env())
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        for _ in range(20):  # bounded: the banner is a handful of lines
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        self.env = clean_env()
        for line in self.lines[:2]:
            name, _, value = line.partition("=")
            self.env[name] = value

    def command_to_try(self) -> list[str]:
        """The printed download command, as argv (its variables are in self.env)."""
        text = "\n".join(self.lines)
        command = re.search(r"\n {4}(verbex recordings download .*)", text)
        assert command is not None, text
        return shlex.split(command.group(1))

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=10)


def test_both_commands_take_the_same_options() -> None:
    helps = {}
    for name, argv in COMMANDS.items():
        out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60, env=clean_env())
        assert out.returncode == 0, out.stderr
        usage, _, rest = out.stdout.partition("\n\n")  # the usage lines wrap by the name's length
        assert usage.startswith(f"usage: {name} [-h]")
        helps[name] = rest.replace(name, "PROG")
    assert helps["verbex sandbox"] == helps["python -m verbex_client.testing"]
    for option in ("--host", "--port", "--api-key", "--recordings", "--size", "--rate", "--any-call-id"):
        assert option in helps["verbex sandbox"]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_prints_the_url_the_key_and_a_command_that_works(name: str, tmp_path: Path) -> None:
    sandbox = RunningSandbox([*COMMANDS[name], "--recordings", "2", "--size", "2MB", "--rate", "4MB"])
    try:
        assert sandbox.env["VERBEX_BASE_URL"].startswith("http://127.0.0.1:")
        assert sandbox.env["VERBEX_API_KEY"].startswith("API_")
        assert "demo-call-001 demo-call-002 (2 WAV recordings, 2.0 MB each)" in sandbox.lines[2]
        argv = sandbox.command_to_try()
        assert argv[:3] == ["verbex", "recordings", "download"]
        started = time.monotonic()
        out = subprocess.run(
            [VERBEX, *argv[1:]], cwd=tmp_path, env=sandbox.env, capture_output=True, text=True, timeout=60
        )
        elapsed = time.monotonic() - started
    finally:
        assert sandbox.stop() == 0
    assert out.returncode == 0, out.stderr
    assert "2 downloaded, 0 skipped, 0 failed; 4.0 MB" in out.stderr
    assert elapsed >= 0.4  # 2 MB each at 4 MB/s: paced by --rate
    for n in (1, 2):
        path = tmp_path / "demo-recordings" / f"webcall_demo-call-00{n}_agent_demo.wav"
        assert path.stat().st_size == 2_000_000
        with wave.open(str(path)) as w:  # a real WAV file, as big as asked
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
            assert w.getnframes() == (2_000_000 - 44) // 2


def test_many_recordings_get_an_ids_file_in_the_command(tmp_path: Path) -> None:
    sandbox = RunningSandbox([VERBEX, "sandbox", "--recordings", "7"])
    try:
        argv = sandbox.command_to_try()
        ids_file = Path(argv[argv.index("--ids-file") + 1])
        assert ids_file.read_text().split() == [f"demo-call-00{n}" for n in range(1, 8)]
    finally:
        assert sandbox.stop() == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--size", "20XB"], "argument --size: expected bytes such as 500kB, 20MB or 1GiB, got '20XB'"),
        (["--size", "10"], "argument --size: at least 1kB"),
        (["--recordings", "-1"], "argument --recordings: expected a whole number >= 0"),
        (["--port", "70000"], "argument --port: expected a port from 0 to 65535"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], expected: str) -> None:
    out = subprocess.run(
        [VERBEX, "sandbox", *args], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert out.returncode == 2 and expected in out.stderr, out.stderr


def test_the_readme_one_liner_shows_progress_bars(tmp_path: Path) -> None:
    """The README's command to watch the progress display, run as written, then what it prints."""
    readme = (ROOT / "README.md").read_text()
    one_liner = re.search(r"`(verbex sandbox --recordings [^`]*)`", readme)
    assert one_liner is not None, "the README documents a sandbox with big recordings"
    sandbox = RunningSandbox([VERBEX, *shlex.split(one_liner.group(1))[1:]])
    try:
        argv = sandbox.command_to_try()
        status, screen = run_on_a_terminal(sandbox.env, *argv[1:], cwd=tmp_path)
    finally:
        assert sandbox.stop() == 0
    assert status == 0, screen
    assert re.search(r"demo-call-001 .* \d+\.\d/\d+\.\d MB +\d+\.\d MB/s +0:00:\d\d", screen), screen
    assert re.search(r"total .* \d/5 files .* MB/s", screen) and "5 downloaded, 0 skipped, 0 failed" in screen
