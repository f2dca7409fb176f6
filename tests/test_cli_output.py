"""`verbex recordings download` output as it happens: lines while the batch runs, a closed
stdout, and the progress display on a real pseudo-terminal. Each test runs the real command."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cli import env_for, name_of, with_recordings

from verbex_client.testing import Sandbox

VERBEX = str(Path(sys.executable).parent / "verbex")  # the installed console script
SLOW = os.urandom(400_000)
BIG = os.urandom(4_000_000)


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    return with_recordings(verbex_sandbox, slow=SLOW, big=BIG)


class Child:
    """A running `verbex` whose stdout and stderr are read as they arrive, never past a deadline."""

    def __init__(self, sb: Sandbox, *args: str) -> None:
        self.proc = subprocess.Popen(
            [VERBEX, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_for(sb),
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out, self.err = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        self.text = {self.out: "", self.err: ""}
        self.open = {self.out, self.err}

    @property
    def stdout(self) -> list[str]:
        return self.text[self.out].splitlines()

    @property
    def stderr(self) -> list[str]:
        return self.text[self.err].splitlines()

    def close_stdout(self) -> None:
        """What `head -1` does once it has its line."""
        assert self.proc.stdout is not None
        self.open.discard(self.out)
        self.proc.stdout.close()

    def read_until(self, done: Callable[[], bool], seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            left = deadline - time.monotonic()
            assert left > 0 and self.open, f"gave up waiting; stdout={self.stdout} stderr={self.stderr}"
            ready, _, _ = select.select(list(self.open), [], [], left)
            for fd in ready:
                data = os.read(fd, 65536)
                if data:
                    self.text[fd] += data.decode()
                else:
                    self.open.discard(fd)

    def finish(self, seconds: float = 30) -> int:
        self.read_until(lambda: not self.open, seconds)
        return self.proc.wait(timeout=seconds)


def stall_the_third_download(sb: Sandbox) -> None:
    """With --concurrency 1 storage sees the calls in order: the third body stalls for a minute."""
    sb.delay_next(0, count=2, target="storage")  # the first two pass untouched
    sb.stall_next_download(100_000, seconds=60)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_lines_stream_while_the_batch_is_still_running(
    sb: Sandbox, tmp_path: Path, json_flag: list[str]
) -> None:
    stall_the_third_download(sb)
    ids = ["demo-call-001", "nope", "demo-call-002", "slow"]
    child = Child(sb, "recordings", "download", *ids, "-o", str(tmp_path), "--concurrency", "1", *json_flag)
    try:
        if json_flag:  # every call, failed or not, is one JSON object on stdout
            child.read_until(lambda: len(child.stdout) == 3)
            rows = {row["call_id"]: row["status"] for row in map(json.loads, child.stdout)}
            assert rows == {"demo-call-001": "downloaded", "nope": "failed", "demo-call-002": "downloaded"}
        else:
            child.read_until(lambda: len(child.stdout) == 2 and len(child.stderr) == 1)
            assert [line.split()[:2] for line in child.stdout] == [
                ["downloaded", "demo-call-001"],
                ["downloaded", "demo-call-002"],
            ]
            assert child.stderr[0].startswith("error: nope: recording not found (404")
        # ...all while the last call is still being received, and before any summary.
        assert child.proc.poll() is None and not (tmp_path / "slow.ogg").exists()
        assert not any("downloaded," in line for line in child.stderr)
    finally:
        child.proc.send_signal(signal.SIGTERM)  # ends like Ctrl-C, leaving the .part
    assert child.finish() == 130
    assert "interrupted" in child.stderr[-1] and "2 downloaded, 0 skipped, 1 failed" in child.stderr[-1]


def test_the_summary_comes_last_on_stderr(sb: Sandbox, tmp_path: Path) -> None:
    child = Child(sb, "recordings", "download", "demo-call-001", "nope", "demo-call-003", "-o", str(tmp_path))
    assert child.finish() == 1
    assert len(child.stdout) == 2 and child.stderr[0].startswith("error: nope:")
    assert child.stderr[-1].startswith("2 downloaded, 0 skipped, 1 failed; ")


def test_a_closed_stdout_stops_the_batch_quietly_with_status_141(tmp_path: Path) -> None:
    """`verbex ... --json | head -1`: the next write finds the pipe closed; the batch stops."""
    with Sandbox() as sb:
        recordings = {f"call-{n}": os.urandom(200_000) for n in range(4)}
        for call_id, data in recordings.items():
            sb.add_recording(call_id, data, f"{call_id}.ogg")
        sb.delay_next(0, target="storage")  # in order (--concurrency 1): the first passes untouched,
        sb.stall_next_download(100_000, seconds=60)  # the second stalls until the sandbox stops
        args = ["recordings", "download", *recordings, "-o", str(tmp_path), "--concurrency", "1", "--json"]
        child = Child(sb, "--max-retries", "0", *args)
        child.read_until(lambda: len(child.stdout) == 1)  # head -1 read its line...
        child.close_stdout()  # ...and exits
        sb.stop()  # ends the stall: that call's outcome is written to the closed pipe
        assert child.finish() == 141
    stderr = "\n".join(child.stderr)
    assert "Broken pipe" not in stderr and "Errno 32" not in stderr and "Traceback" not in stderr
    assert child.stderr[-1].endswith("stopped: stdout was closed")
    assert json.loads(child.stdout[0])["call_id"] == "call-0"
    files = {path.name for path in tmp_path.iterdir()}
    listed = [json.loads(line)["file"] for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert listed[0] == "call-0.ogg" and set(listed) <= files  # a manifest that parses, of files there
    for name in files - {"manifest.jsonl"}:  # complete recordings, or .part files a rerun resumes
        if not name.endswith(".part"):
            assert (tmp_path / name).read_bytes() == recordings[name.removesuffix(".ogg")], name


def run_on_a_terminal(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run `verbex` with stdout and stderr on a pseudo-terminal; (exit status, everything shown)."""
    import pty

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [VERBEX, *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        cwd=cwd,
        env={**env, "COLUMNS": "120", "LINES": "40"},
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            screen += data
        status = proc.wait(timeout=30)
    finally:
        os.close(controller)
    return status, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))


def test_progress_on_a_terminal_can_be_trusted(sb: Sandbox, tmp_path: Path) -> None:
    sb.storage_bytes_per_second = 2_000_000  # 4 MB: about 2 s, long enough to show rates
    ids = ["big", "demo-call-001", "nope"]
    status, screen = run_on_a_terminal(
        env_for(sb), "recordings", "download", *ids, "-o", str(tmp_path), "--concurrency", "1"
    )
    assert status == 1, screen
    # The total covers the whole batch: files done of all of them, and bytes of a total that
    # counts the files not started yet at the average known size ("~") until their sizes are known.
    assert re.search(r"total .* 0/3 files +\d+\.\d/~\d+\.\d MB", screen), screen
    assert re.search(r"total .* 3/3 files +4\.0/4\.0 MB", screen), screen
    # A bar per active file with its own rate and an ETA computed from it.
    assert re.search(r"big .* \d\.\d/4\.0 MB +\d\.\d MB/s +0:00:0\d", screen), screen
    # One unit system everywhere: rich's powers of 1000 (kB, MB), in the bars and the summary.
    units = set(re.findall(r"\d (bytes|[kKMG]i?B)\b", screen))
    assert units <= {"bytes", "kB", "MB"}, units
    # The failure shows as it happens; at the end, the files written and the failures with reasons.
    error_at = screen.index("error: nope: recording not found (404")
    recap = screen[screen.index("written:") :]
    assert error_at < screen.index("written:")
    for call_id in ("big", "demo-call-001"):
        assert f"{tmp_path / (name_of(call_id) if call_id != 'big' else 'big.ogg')} (" in recap
    assert "failed:\n  nope: recording not found (404" in recap.replace("\r\n", "\n")
    assert recap.rstrip().endswith(")") and "2 downloaded, 0 skipped, 1 failed; 4.0 MB in" in recap
    assert (tmp_path / "big.ogg").read_bytes() == BIG


def test_many_files_on_a_terminal_point_to_the_manifest(sb: Sandbox, tmp_path: Path) -> None:
    for n in range(25):
        sb.add_recording(f"many-{n}", b"x" * 1000, f"many-{n}.ogg")
    status, screen = run_on_a_terminal(
        env_for(sb),
        "recordings",
        "download",
        *(f"many-{n}" for n in range(25)),
        "-o",
        str(tmp_path),
        "--no-fsync",
    )
    assert status == 0, screen
    assert f"written: 25 files in {tmp_path}, each listed in {tmp_path / 'manifest.jsonl'}" in screen
    assert "many-3.ogg (" not in screen


def test_debug_logs_replace_the_bars_rather_than_tear_them(sb: Sandbox, tmp_path: Path) -> None:
    status, screen = run_on_a_terminal(
        env_for(sb, VERBEX_LOG="debug"), "recordings", "download", "demo-call-001", "-o", str(tmp_path)
    )
    assert status == 0, screen
    assert "POST /v1/call-recording/signed-url -> 200" in screen and "━" not in screen
