"""`make demo`: the main job end to end, offline, against the bundled sandbox.

Starts the sandbox as its own process (as a user would), asks the API for a
signed URL, downloads the recording through it, proves the file is
byte-identical to what the sandbox stored and is real audio, then stops the
sandbox. Any failed step exits non-zero.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import wave
from pathlib import Path

from verbex_client import Verbex
from verbex_client.testing._audio import DEMO_CALL_IDS, demo_recording

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".build" / "demo"


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def start_sandbox() -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "verbex_client.testing", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip().partition("=")[2]
    api_key = proc.stdout.readline().strip().partition("=")[2]
    if not base_url.startswith("http://127.0.0.1:") or not api_key:
        proc.kill()
        raise SystemExit("demo: the sandbox did not start")
    return proc, base_url, api_key


def show_progress(done: int, total: int | None) -> None:
    if total:
        bar = "#" * (30 * done // total)
        print(f"\r    [{bar:<30}] {done:>7}/{total} bytes", end="", flush=True)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    call_id = DEMO_CALL_IDS[0]
    expected, file_name = demo_recording(call_id)
    step("starting the sandbox (python -m verbex_client.testing)")
    proc, base_url, api_key = start_sandbox()
    try:
        print(f"    VERBEX_BASE_URL={base_url}")
        with Verbex(api_key=api_key, base_url=base_url) as client:
            step(f"client.recordings.signed_url({call_id!r})")
            started = time.perf_counter()
            signed = client.recordings.signed_url(call_id, expires_in_minutes=5)
            took_ms = 1000 * (time.perf_counter() - started)
            print(f"    {signed!r}")
            print(f"    {signed.seconds_remaining():.0f} s left; took {took_ms:.1f} ms")
            if signed.file_name != file_name:
                raise SystemExit(f"demo: server named the file {signed.file_name!r}, expected {file_name!r}")
            target = OUT / signed.file_name
            target.unlink(missing_ok=True)
            step(f"client.recordings.download({call_id!r}, {str(OUT.relative_to(ROOT))!r})")
            result = client.recordings.download(call_id, OUT, progress=show_progress)
            print()
            print(f"    {result!r}")
        if result.path != target:
            raise SystemExit(f"demo: landed at {result.path}, expected {target}")
        step("verifying")
        data = target.read_bytes()
        if data != expected:
            raise SystemExit(f"demo: downloaded bytes differ ({len(data)} vs {len(expected)} bytes)")
        md5 = hashlib.md5(data).hexdigest()
        print(f"    byte-identical: {len(data)} bytes, md5 {md5} (client said {result.md5})")
        with wave.open(str(target)) as w:
            seconds = w.getnframes() / w.getframerate()
            print(
                f"    real audio: WAV, {w.getnchannels()} channel(s), {w.getframerate()} Hz, {seconds:.2f} s"
            )
        if not 1.5 <= seconds <= 10:
            raise SystemExit(f"demo: unexpected duration {seconds:.2f} s")
        step(f"done: {target.relative_to(ROOT)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        step("sandbox stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
