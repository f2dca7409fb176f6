"""Third-party servers for tests (Prism), started on 127.0.0.1 and always stopped."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import ROOT

PRISM = ROOT / "node_modules" / ".bin" / "prism"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_prism() -> Path:
    if not PRISM.exists():
        pytest.fail(
            f"Prism is required for the contract tests but {PRISM} is missing: "
            "install Node.js 20+ and npm (apt-get install nodejs npm), then run `make node-tools`"
        )
    return PRISM


@contextmanager
def prism(*args: str) -> Iterator[str]:
    """Run `prism <args> -h 127.0.0.1 -p PORT`; yields its base URL once it answers (bounded wait)."""
    port = free_port()
    log = (ROOT / ".build").resolve()
    log.mkdir(exist_ok=True)
    with open(log / f"prism-{port}.log", "wb") as out:
        proc = subprocess.Popen(
            [str(require_prism()), *args, "-h", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"prism exited with {proc.returncode}; see {out.name}")
                try:
                    httpx.get(base_url + "/", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"prism did not start within 30 s; see {out.name}")
                    time.sleep(0.1)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
