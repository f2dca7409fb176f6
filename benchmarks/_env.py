"""What the benchmarks stand on: nginx on 127.0.0.1, and the venvs the contenders run in."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ["openai", "retell-sdk", "requests"]
EXAMPLE = json.loads((ROOT / "openapi.json").read_text())["components"]["schemas"][
    "CallRecordingSignedUrlResponse"
]["example"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_nginx() -> str:
    """nginx from Debian's packages, installing it when we may (root with apt-get)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx-light"], check=True, env=env, capture_output=True
        )
        subprocess.run(
            ["service", "nginx", "stop"], check=False, capture_output=True
        )  # the package starts one on :80
        if os.path.exists("/usr/sbin/nginx"):
            return "/usr/sbin/nginx"
    raise SystemExit("benchmarks need nginx: apt-get install nginx-light (as root)")


def venv(path: Path, packages: list[str], key: str = "") -> Path:
    """A venv at `path` holding `packages` (reused while its package list and `key` are unchanged)."""
    python = path / "bin" / "python"
    stamp = path / ".packages"
    wanted = "\n".join([*packages, key])
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
            check=True,
            capture_output=True,
        )
        stamp.write_text(wanted)
    return python


def clean_venv(work: Path) -> Path:
    """Our wheel and nothing else (the dev venv's extra packages inflate `import httpx`)."""
    # Rebuilt when pyproject.toml changes (a new dependency), else reused.
    python = venv(work / "venv-ours", [str(ROOT)], (ROOT / "pyproject.toml").read_text())
    # Always the current tree: reinstall just our package, without dependencies.
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--force-reinstall",
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    return python


@dataclass
class Dataset:
    """One nginx server: the API answering with a signed URL to one static object."""

    name: str
    size: int
    port: int
    path: Path
    goog_hash: str = ""


@dataclass
class BulkStorage:
    """nginx serving `count` objects under /bulk/, each reply held back by `auth_request`
    to a delaying helper (worker.py `serve`): the helper only sleeps, nginx sends the bytes.
    """

    port: int
    helper_port: int
    directory: Path
    goog_hash: str

    def config(self) -> str:
        return f"""
  upstream delayer {{
    server 127.0.0.1:{self.helper_port};
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    location /bulk/ {{
      auth_request /delay;
      alias {self.directory}/;
      add_header x-goog-hash "{self.goog_hash}";
    }}
    location = /delay {{
      internal;
      proxy_pass http://delayer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }}
  }}"""


def make_bulk_objects(directory: Path, count: int, size: int) -> str:
    """`count` hard links to one random object of `size` (one page-cache copy); its x-goog-hash."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "source.bin"
    goog_hash = make_object(source, size)
    for i in range(count):
        link = directory / f"bulk-{i}.ogg"
        link.unlink(missing_ok=True)
        os.link(source, link)
    return goog_hash


def make_object(path: Path, size: int) -> str:
    """Random bytes of `size`; returns their `x-goog-hash` (crc32c and md5, as GCS sends)."""
    import google_crc32c

    md5, crc = hashlib.md5(), 0
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            md5.update(piece)
            crc = google_crc32c.extend(crc, piece)
            left -= len(piece)
    crc32c = base64.b64encode(crc.to_bytes(4, "big")).decode()
    return f"crc32c={crc32c},md5={base64.b64encode(md5.digest()).decode()}"


class Nginx:
    """nginx with `sendfile on`, one server per dataset, config and logs under `work`."""

    def __init__(self, work: Path, datasets: list[Dataset], bulk: BulkStorage | None = None) -> None:
        self.work, self.datasets, self.bulk = work, datasets, bulk
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        servers = []
        for d in self.datasets:
            body = dict(EXAMPLE)
            body["file_name"] = d.path.name
            body["signed_url"] = (
                f"http://127.0.0.1:{d.port}/bucket/{d.path.name}?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                "&X-Goog-Credential=bench&X-Goog-Date=20990101T000000Z&X-Goog-Expires=604800"
                "&X-Goog-SignedHeaders=host&X-Goog-Signature=bench"
            )
            body["expires_at"] = "2099-01-01T00:00:00.000000000Z"
            servers.append(
                f"""
  server {{
    listen 127.0.0.1:{d.port};
    location = /v1/call-recording/signed-url {{
      default_type application/json;
      return 200 '{json.dumps(body)}';
    }}
    location /bucket/ {{
      alias {d.path.parent}/;
      add_header x-goog-hash "{d.goog_hash}";
    }}
  }}"""
            )
        return f"""
worker_processes 1;
daemon off;
pid {self.work}/nginx.pid;
error_log {self.work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 120;
  client_body_temp_path {self.work}/nginx-body;
  default_type application/octet-stream;
  {"".join(servers)}
  {self.bulk.config() if self.bulk else ""}
}}
"""

    def __enter__(self) -> Nginx:
        conf = self.work / "nginx.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen([find_nginx(), "-c", str(conf), "-p", str(self.work)])
        deadline = time.monotonic() + 10
        ports = [d.port for d in self.datasets] + ([self.bulk.port] if self.bulk else [])
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise SystemExit(f"nginx did not start; see {self.work}/nginx-error.log") from None
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
