"""The `verbex` command as a user runs it: a subprocess against the sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verbex_client.testing import Sandbox
from verbex_client.testing._audio import DEMO_CALL_IDS, demo_recording

BIG = os.urandom(3_000_000)


def with_recordings(sandbox: Sandbox, **extra: bytes) -> Sandbox:
    """The demo recordings, plus `extra` (call id -> bytes, stored as `<call id>.ogg`)."""
    for call_id in DEMO_CALL_IDS:
        data, name = demo_recording(call_id)
        sandbox.add_recording(call_id, data, name)
    for call_id, data in extra.items():
        sandbox.add_recording(call_id, data, f"{call_id}.ogg")
    return sandbox


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    return with_recordings(verbex_sandbox, big=BIG)


def env_for(sb: Sandbox | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBEX_")}
    if sb is not None:
        env.update(VERBEX_API_KEY=sb.api_key, VERBEX_BASE_URL=sb.base_url)
    env.update(extra)
    return env


def verbex(
    sb: Sandbox | None, *args: str, cwd: Path | None = None, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verbex_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        input=stdin,
        env=env_for(sb, **env),
    )


def name_of(call_id: str) -> str:
    return demo_recording(call_id)[1]


def test_url_prints_only_the_url(sb: Sandbox) -> None:
    out = verbex(sb, "recordings", "url", "demo-call-001")
    assert out.returncode == 0 and out.stderr == ""
    (line,) = out.stdout.splitlines()
    assert line.startswith(sb.base_url) and "X-Goog-Signature=" in line


def test_url_json_has_every_field(sb: Sandbox) -> None:
    out = verbex(sb, "recordings", "url", "demo-call-001", "--expires-in-minutes", "60", "--json")
    body = json.loads(out.stdout)
    assert set(body) == {"call_id", "file_name", "url", "expiration_minutes", "expires_at", "received_at"}
    assert body["expiration_minutes"] == 60 and body["expires_at"].endswith("Z")
    assert body["file_name"] == name_of("demo-call-001")


def test_download_non_tty_prints_one_plain_line_per_file_and_a_summary(sb: Sandbox, tmp_path: Path) -> None:
    out = verbex(sb, "recordings", "download", "demo-call-001", "demo-call-002", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("downloaded demo-call-00") for line in lines)
    assert "\x1b[" not in out.stdout + out.stderr  # no terminal control codes when piped
    assert "2 downloaded, 0 skipped, 0 failed" in out.stderr
    for call_id in ("demo-call-001", "demo-call-002"):
        assert (tmp_path / name_of(call_id)).read_bytes() == demo_recording(call_id)[0]


def test_download_json_lines_and_rerun_skips(sb: Sandbox, tmp_path: Path) -> None:
    first = verbex(sb, "recordings", "download", "demo-call-001", "nope", "-o", str(tmp_path), "--json")
    assert first.returncode == 1
    rows = {row["call_id"]: row for row in map(json.loads, first.stdout.splitlines())}  # in finishing order
    assert sorted(rows) == ["demo-call-001", "nope"]
    assert set(rows["demo-call-001"]) == {"call_id", "status", "path", "bytes", "error"}
    assert rows["demo-call-001"]["status"] == "downloaded" and rows["demo-call-001"]["error"] is None
    assert rows["nope"]["status"] == "failed" and "recording not found (404" in rows["nope"]["error"]
    again = verbex(sb, "recordings", "download", "demo-call-001", "nope", "-o", str(tmp_path), "--json")
    statuses = {row["call_id"]: row["status"] for row in map(json.loads, again.stdout.splitlines())}
    assert statuses == {"demo-call-001": "skipped", "nope": "failed"}


def test_single_call_to_a_file_path(sb: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "call.wav"
    out = verbex(sb, "recordings", "download", "demo-call-003", "-o", str(target))
    assert out.returncode == 0 and target.read_bytes() == demo_recording("demo-call-003")[0]
    exists = verbex(sb, "recordings", "download", "demo-call-003", "-o", str(target))
    assert exists.returncode == 1 and "use --overwrite" in exists.stderr
    assert (
        verbex(sb, "recordings", "download", "demo-call-003", "-o", str(target), "--overwrite").returncode
        == 0
    )


def test_ids_file_from_stdin(sb: Sandbox, tmp_path: Path) -> None:
    ids = "# this week's calls\ndemo-call-001\n\n  demo-call-002  \ndemo-call-001\n"
    out = verbex(sb, "recordings", "download", "--ids-file", "-", "-o", str(tmp_path), "--quiet", stdin=ids)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [name_of("demo-call-001"), name_of("demo-call-002"), "manifest.jsonl"]
    )


def test_ids_file_from_a_path(sb: Sandbox, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("demo-call-002\n")
    # A trailing slash names a directory to create (like cp); without one, a single call goes to that file.
    out = verbex(sb, "recordings", "download", "--ids-file", str(ids), "-o", f"{tmp_path / 'out'}/")
    assert out.returncode == 0 and (tmp_path / "out" / name_of("demo-call-002")).exists()
    as_file = verbex(sb, "recordings", "download", "--ids-file", str(ids), "-o", str(tmp_path / "one.wav"))
    assert (
        as_file.returncode == 0 and (tmp_path / "one.wav").read_bytes() == demo_recording("demo-call-002")[0]
    )


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            {"status": 401, "body": b'{"error": "invalid_api_key", "message": "Invalid API key"}'},
            "error: authentication failed (401 invalid_api_key): Invalid API key. Set VERBEX_API_KEY or pass --api-key.",
        ),
        (
            {"status": 404, "body": b'{"error": "recording_not_found", "message": "No recording"}'},
            "error: recording not found (404 recording_not_found): No recording.",
        ),
        (
            {
                "status": 422,
                "body": b'{"detail": [{"loc": ["body", "call_id"], "msg": "Field required", "type": "missing"}]}',
            },
            "error: request rejected (422): body.call_id: Field required.",
        ),
        (
            {
                "status": 503,
                "body": b"<html><title>503 Service Unavailable</title></html>",
                "content_type": "text/html",
            },
            "error: server error (503): 503 Service Unavailable.",
        ),
    ],
)
def test_api_errors_are_one_line_without_traceback(
    sb: Sandbox, fault: dict[str, object], expected: str
) -> None:
    sb.fail_next(10, **fault)  # type: ignore[arg-type]
    out = verbex(sb, "--max-retries", "0", "recordings", "url", "demo-call-001")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == expected
    assert sb.api_key not in out.stderr


def test_unreachable_api(tmp_path: Path) -> None:
    out = verbex(
        None,
        "--max-retries",
        "0",
        "recordings",
        "url",
        "c1",
        VERBEX_API_KEY="API_some_key_123",
        VERBEX_BASE_URL="http://127.0.0.1:9",
    )
    assert out.returncode == 1 and out.stderr.startswith("error: could not reach the API")
    assert "127.0.0.1:9" in out.stderr and "--base-url" in out.stderr  # the host, and the flag to fix it
    assert "Traceback" not in out.stderr


def test_debug_shows_logs_and_the_traceback(sb: Sandbox) -> None:
    out = verbex(sb, "--debug", "recordings", "url", "nope")
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "RecordingNotFoundError" in out.stderr
    assert "POST /v1/call-recording/signed-url -> 404" in out.stderr
    assert sb.api_key not in out.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["recordings"],
        ["recordings", "download"],
        ["recordings", "url"],
        ["recordings", "url", "c1", "--expires-in-minutes", "soon"],
        ["recordings", "url", "c1", "--expires-in-minutes", "0"],
        ["recordings", "download", "c1", "--concurrency", "0"],
        ["recordings", "download", "--ids-file", "/nonexistent/ids.txt"],
        ["--timeout", "-1", "recordings", "url", "c1"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(sb: Sandbox, args: list[str]) -> None:
    out = verbex(sb, *args)
    assert out.returncode == 2, out.stderr
    assert "error" in out.stderr or "usage" in out.stderr
    assert "Traceback" not in out.stderr and sb.requests == []


def test_missing_api_key_is_a_usage_error_naming_the_variable() -> None:
    out = verbex(None, "recordings", "url", "c1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr == "error: no API key: pass --api-key KEY or set VERBEX_API_KEY\n"


@pytest.mark.parametrize(("flag", "fsynced"), [([], True), (["--no-fsync"], False)])
def test_no_fsync_reaches_the_download(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: list[str], fsynced: bool
) -> None:
    from test_downloads import FsyncCounter

    from verbex_client.__main__ import main

    counter = FsyncCounter(monkeypatch)
    for name, value in env_for(sb).items():
        monkeypatch.setenv(name, value)
    ids = ["demo-call-001", "demo-call-002"]
    assert main(["recordings", "download", *ids, "-o", str(tmp_path), "--quiet", *flag]) == 0
    assert main(["recordings", "download", "demo-call-003", "-o", str(tmp_path / "one.wav"), *flag]) == 0
    assert (tmp_path / "one.wav").read_bytes() == demo_recording("demo-call-003")[0]
    assert (counter.calls > 0) == fsynced


def test_help_explains_every_option_with_examples() -> None:
    top = verbex(None, "--help")
    assert top.returncode == 0
    for option in (
        "--api-key",
        "--base-url",
        "--timeout",
        "--max-retries",
        "--debug",
        "--version",
        "examples:",
    ):
        assert option in top.stdout
    download = verbex(None, "recordings", "download", "--help")
    for option in (
        "--ids-file",
        "-o",
        "--concurrency",
        "--overwrite",
        "--no-fsync",
        "--quiet",
        "--json",
        "examples:",
    ):
        assert option in download.stdout
    for text in (top.stdout, download.stdout):  # the exit status of `verbex ... | head -1`, documented
        assert "141 stdout closed early" in text
    assert verbex(None, "--version").stdout.startswith("verbex-client ")


def test_help_imports_neither_the_http_stack_nor_rich_nor_the_sandbox() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "verbex_client", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    modules = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "verbex_client._cli" in modules
    for heavy in ("httpx", "httpcore", "rich", "verbex_client.testing", "verbex_api", "attrs"):
        assert heavy not in modules, heavy


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "verbex"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("verbex-client ")


def test_tty_shows_progress_bars(sb: Sandbox, tmp_path: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "verbex_client",
            "recordings",
            "download",
            "big",
            "demo-call-001",
            "-o",
            str(tmp_path),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env_for(sb, COLUMNS="120"),
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(controller, 65536)
        except OSError:
            break  # the child closed the terminal
        if not data:
            break
        screen += data
    assert proc.wait(timeout=30) == 0
    os.close(controller)
    text = screen.decode(errors="replace")
    assert "total" in text and "━" in text and "3.0 MB" in text  # a total bar with byte counts
    assert "2 downloaded, 0 skipped, 0 failed" in text
    # Bars on the terminal; the piped stdout still gets one plain line per file.
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    assert sorted(line.split()[1] for line in out.splitlines()) == ["big", "demo-call-001"]
    assert "\x1b[" not in out
    assert (tmp_path / "big.ogg").read_bytes() == BIG


def test_sigint_leaves_no_target_and_a_rerun_completes(sb: Sandbox, tmp_path: Path) -> None:
    sb.cut_next_download(1_000_000)
    sb.delay_next(30, target="storage")  # the resume request hangs: interrupt it there
    # Ctrl-C's handler as an interactive shell leaves it, whatever this run inherited (a
    # background job's SIGINT is ignored, and children inherit that).
    main = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('verbex_client', run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", main, "recordings", "download", "big", "-o", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(sb),
    )
    part = tmp_path / "big.ogg.part"
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size == 1_000_000) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert part.exists() and part.stat().st_size == 1_000_000
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not (tmp_path / "big.ogg").exists() and part.exists()
    sb.clear_faults()
    sb.clear_requests()
    rerun = verbex(sb, "recordings", "download", "big", "-o", str(tmp_path))
    assert rerun.returncode == 0, rerun.stderr
    assert (tmp_path / "big.ogg").read_bytes() == BIG and not part.exists()
    assert sb.storage_requests()[0].headers["Range"] == "bytes=1000000-"


# -- errors in the command's own words ------------------------------------------------------

PYTHON_NAMES = (
    "api_key=",
    "expires_in_minutes",
    "timeout must",
    "concurrency must",
    "max_retries",
    "base_url",
)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {"VERBEX_API_KEY": ""}, "VERBEX_API_KEY is empty: pass --api-key KEY or set VERBEX_API_KEY"),
        (["--api-key", " "], {}, "--api-key is empty: pass --api-key KEY or set VERBEX_API_KEY"),
        ([], {"VERBEX_API_KEY": "API_key_with_newline\n"}, "the API key from VERBEX_API_KEY has surrounding"),
        (["--base-url", "ftp://host"], {}, "--base-url must be an http(s) URL such as https://api.verbex.ai"),
        ([], {"VERBEX_BASE_URL": "localhost:8080"}, "VERBEX_BASE_URL must be an http(s) URL"),
        (["--timeout", "0"], {}, "argument --timeout: expected a number of seconds > 0, got '0'"),
        (["--max-retries", "-1"], {}, "argument --max-retries: expected a whole number >= 0, got '-1'"),
    ],
)
def test_configuration_errors_name_the_flag_or_variable(
    sb: Sandbox, args: list[str], env: dict[str, str], expected: str
) -> None:
    out = verbex(sb, *args, "recordings", "url", "demo-call-001", **env)
    assert out.returncode == 2 and expected in out.stderr, out.stderr
    assert not any(name in out.stderr for name in PYTHON_NAMES), out.stderr
    assert "Traceback" not in out.stderr and sb.requests == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["url", "c1", "--expires-in-minutes", "0"], "argument --expires-in-minutes: expected whole minutes"),
        (["download", "c1", "--expires-in-minutes", "20000"], "from 1 to 10080 (7 days), got '20000'"),
        (["download", "c1", "--concurrency", "0"], "argument --concurrency: expected a whole number >= 1"),
        (["download", "c1", "x" * 513], "invalid call id 'xxx"),
    ],
)
def test_argument_errors_name_the_flag(sb: Sandbox, args: list[str], expected: str) -> None:
    out = verbex(sb, "recordings", *args)
    assert out.returncode == 2 and expected in out.stderr, out.stderr
    assert not any(name in out.stderr for name in PYTHON_NAMES), out.stderr
    assert sb.requests == []


def test_a_bad_call_id_in_the_ids_file_names_its_line(sb: Sandbox, tmp_path: Path) -> None:
    out = verbex(sb, "recordings", "download", "--ids-file", "-", "-o", str(tmp_path), stdin="c1\nc\x072\n")
    assert out.returncode == 2 and sb.requests == []
    assert (
        "error: invalid call id 'c\\x072' (--ids-file line 2): must not contain control characters"
        in out.stderr
    )


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_existing_file_as_the_destination_of_several_calls_is_named(
    sb: Sandbox, tmp_path: Path, overwrite: list[str]
) -> None:
    target = tmp_path / "taken.wav"
    target.write_bytes(b"mine")
    out = verbex(
        sb, "recordings", "download", "demo-call-001", "demo-call-002", "-o", str(target), *overwrite
    )
    assert out.returncode == 2 and sb.requests == [], out.stderr
    assert f"-o {target}: that is an existing file, and 2 call ids need a directory" in out.stderr
    assert "[Errno" not in out.stderr and "error: 17" not in out.stderr
    assert target.read_bytes() == b"mine"


def test_an_existing_recording_in_the_directory_is_named_with_the_flag(sb: Sandbox, tmp_path: Path) -> None:
    existing = tmp_path / name_of("demo-call-001")
    existing.write_bytes(b"mine")
    out = verbex(sb, "recordings", "download", "demo-call-001", "-o", str(tmp_path))
    assert out.returncode == 1
    assert (
        f"{existing} exists (use --overwrite to replace it)" in out.stderr
        and "overwrite=True" not in out.stderr
    )
    assert existing.read_bytes() == b"mine"


# -- destinations -------------------------------------------------------------------------------


def test_a_trailing_slash_means_a_directory_for_one_call_too(sb: Sandbox, tmp_path: Path) -> None:
    out = verbex(sb, "recordings", "download", "demo-call-001", "-o", f"{tmp_path / 'new' / 'dir'}/")
    assert out.returncode == 0, out.stderr
    assert [p.name for p in (tmp_path / "new" / "dir").iterdir()] == [name_of("demo-call-001")]


@pytest.mark.parametrize("dest", [None, "."])
def test_a_single_download_into_a_directory_writes_no_manifest(
    sb: Sandbox, tmp_path: Path, dest: str | None
) -> None:
    out = verbex(sb, "recordings", "download", "demo-call-002", *(["-o", dest] if dest else []), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [p.name for p in tmp_path.iterdir()] == [name_of("demo-call-002")]  # no manifest.jsonl


def test_a_trailing_slash_on_an_existing_file_is_a_usage_error(sb: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    out = verbex(sb, "recordings", "download", "demo-call-001", "-o", f"{tmp_path / 'file'}/")
    assert out.returncode == 2 and "exists and is not a directory" in out.stderr and sb.requests == []


def test_sizes_use_the_units_of_the_progress_bars(sb: Sandbox, tmp_path: Path) -> None:
    out = verbex(sb, "recordings", "download", "demo-call-001", "big", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "(32.0 kB)" in out.stdout and "(3.0 MB)" in out.stdout  # rich's DownloadColumn: kB, MB
    assert "KB" not in out.stdout + out.stderr
    assert re.search(r"; 3\.0 MB in \d+\.\d s \(\d[\d.,]* [kMG]?B/s\)$", out.stderr.splitlines()[-1])


def test_human_bytes_matches_rich() -> None:
    from rich.filesize import decimal

    from verbex_client._cli import human_bytes

    for size in (0, 1, 2, 999, 1000, 1049, 32_044, 999_999, 1_000_000, 3_000_000, 10**12, 10**24, 10**27):
        assert human_bytes(size) == decimal(size), size


def test_plain_http_storage_needs_allow_insecure_storage(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from verbex_client.__main__ import main

    for name, value in env_for(sb).items():
        monkeypatch.setenv(name, value)
    reply = (
        b'{"file_name": "a.ogg", "signed_url": "http://storage.example.invalid/a.ogg?X-Goog-Signature=abc123def456",'
        b' "expiration_minutes": 10, "expires_at": "2099-01-01T00:00:00Z"}'
    )
    sb.respond_next(reply)
    assert main(["recordings", "download", "demo-call-001", "-o", str(tmp_path / "a.ogg")]) == 1
    assert "plain http" in capsys.readouterr().err
    sb.respond_next(reply)
    args = [
        "recordings",
        "download",
        "demo-call-001",
        "-o",
        str(tmp_path / "a.ogg"),
        "--allow-insecure-storage",
    ]
    assert main(["--max-retries", "0", *args]) == 1
    err = capsys.readouterr().err
    assert "plain http" not in err and "storage.example.invalid" in err and "abc123def456" not in err
