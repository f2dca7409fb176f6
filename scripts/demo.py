"""`make demo`: the main job end to end, on 127.0.0.1 only, as a user would do it.

Starts `verbex sandbox` (demo recordings are real WAV files), runs
`verbex recordings url` and `verbex recordings download` against it, proves
the file is byte-identical to what the sandbox stored and is real audio of
the right length, prints where it landed, and stops the sandbox. Any failed
step exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

from verbex_client.testing._audio import DEMO_CALL_IDS, demo_recording

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".build" / "demo"
VERBEX = [sys.executable, "-m", "verbex_client"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def fail(message: str) -> None:
    raise SystemExit(f"demo failed: {message}")


def start_sandbox() -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([*VERBEX, "sandbox"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    env = dict(os.environ)
    for _ in range(2):
        name, _, value = proc.stdout.readline().strip().partition("=")
        env[name] = value
    if not env.get("VERBEX_BASE_URL", "").startswith("http://127.0.0.1:") or not env.get("VERBEX_API_KEY"):
        proc.kill()
        fail("the sandbox did not start")
    return proc, env


def run(args: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    """Run `verbex ARGS`. Its output goes straight to ours, in the order it writes it (each
    per-file line, then the summary; progress bars on a terminal), unless `capture`."""
    print("$ verbex " + " ".join(args), flush=True)
    result = subprocess.run(
        [*VERBEX, *args], env=env, stdout=subprocess.PIPE if capture else None, text=True, timeout=120
    )
    if capture:
        print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        fail(f"`verbex {' '.join(args)}` exited {result.returncode}")
    return result.stdout or ""


def main() -> int:
    call_id = DEMO_CALL_IDS[0]
    shutil.rmtree(OUT, ignore_errors=True)  # a fresh run downloads rather than skips
    OUT.mkdir(parents=True)
    step("starting the sandbox: verbex sandbox")
    proc, env = start_sandbox()
    try:
        print(f"VERBEX_BASE_URL={env['VERBEX_BASE_URL']}")
        step("a signed URL for one call")
        url = run(["recordings", "url", call_id], env, capture=True).strip()
        if not url.startswith(env["VERBEX_BASE_URL"]) or "X-Goog-Signature=" not in url:
            fail(f"unexpected URL {url!r}")
        step("downloading the recordings")
        run(["recordings", "download", *DEMO_CALL_IDS, "-o", os.path.relpath(OUT)], env)
        step("verifying")
        for demo_id in DEMO_CALL_IDS:
            want, name = demo_recording(demo_id)
            target = OUT / name
            data = target.read_bytes() if target.exists() else b""
            if data != want:
                fail(f"{target} is not byte-identical to the recording ({len(data)} vs {len(want)} bytes)")
            with wave.open(str(target)) as w:
                seconds = w.getnframes() / w.getframerate()
                rate, channels = w.getframerate(), w.getnchannels()
            if abs(seconds - (2.0 + DEMO_CALL_IDS.index(demo_id))) > 0.01:
                fail(f"{target} lasts {seconds:.2f} s")
            md5 = hashlib.md5(data).hexdigest()
            print(f"{name}: byte-identical, md5 {md5}, WAV {channels} ch {rate} Hz {seconds:.2f} s")
        step(f"done: the recordings are in {OUT.relative_to(ROOT)}/")
        print(
            "to watch the progress bars: verbex sandbox --recordings 5 --size 20MB --rate 5MB\n"
            "and, in another terminal, the download command it prints"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        step("sandbox stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
