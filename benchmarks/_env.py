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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ["openai", "retell-sdk", "requests", "google-cloud-storage==3.17.1"]
# The bucket google-cloud-storage is pointed at: nginx serves each object again under
# its media-download path, /download/storage/v1/b/<bucket>/o/<object>?alt=media.
BUCKET = "bench"
EXAMPLE = json.loads((ROOT / "openapi.json").read_text())["components"]["schemas"][
    "CallRecordingSignedUrlResponse"
]["example"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_nginx(install: bool = False) -> str:
    """nginx from Debian's packages; with `install` (`make bench`, never the smoke test),
    installing it when we may (root with apt-get)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
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
    raise SystemExit("benchmarks need nginx: apt-get install nginx-light (as root; `make bench` does it)")


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
class Tls:
    """A trustme CA and a certificate for 127.0.0.1 it signed, as PEM files nginx and clients read."""

    ca: Path
    cert: Path
    key: Path

    def nginx(self) -> str:
        return f"""
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    ssl_protocols TLSv1.3;"""

    def client_env(self) -> dict[str, str]:
        """The environment that makes each client trust the CA: httpx and `ssl` read
        SSL_CERT_FILE (ours), requests REQUESTS_CA_BUNDLE (google-cloud-storage)."""
        return {**os.environ, "SSL_CERT_FILE": str(self.ca), "REQUESTS_CA_BUNDLE": str(self.ca)}


def make_tls(directory: Path) -> Tls:
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca))
    server.private_key_pem.write_to_path(str(tls.key))
    with open(tls.cert, "wb") as f:
        for blob in server.cert_chain_pems:
            f.write(blob.bytes())
    return tls


def gcs_location(directory: Path, goog_hash: str, extra: str = "") -> str:
    """nginx serving `directory`'s files where google-cloud-storage's media download GETs them."""
    return f"""
    location ~ ^/download/storage/v1/b/{BUCKET}/o/([^/]+)$ {{{extra}
      alias {directory}/$1;
      add_header x-goog-hash "{goog_hash}";
    }}"""


@dataclass
class Dataset:
    """One nginx server: the API answering with a signed URL to one static object
    (plain http on `port`; over HTTPS on `tls_port` too when nginx has a certificate)."""

    name: str
    size: int
    port: int
    path: Path
    goog_hash: str = ""
    tls_port: int = field(default_factory=free_port)


@dataclass
class BulkStorage:
    """nginx serving `count` objects under /bulk/, each reply held back by `auth_request`
    to a delaying helper (worker.py `serve`): the helper only sleeps, nginx sends the bytes.
    """

    port: int
    helper_port: int
    directory: Path
    goog_hash: str
    tls: Tls | None = None
    tls_port: int = field(default_factory=free_port)

    def config(self) -> str:
        tls = (
            f"\n    listen 127.0.0.1:{self.tls_port} ssl backlog=4096;{self.tls.nginx()}" if self.tls else ""
        )
        return f"""
  upstream delayer {{
    server 127.0.0.1:{self.helper_port};
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;{tls}
    location /bulk/ {{
      auth_request /delay;
      alias {self.directory}/;
      add_header x-goog-hash "{self.goog_hash}";
    }}{gcs_location(self.directory, self.goog_hash, chr(10) + "      auth_request /delay;")}
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

    def __init__(
        self,
        work: Path,
        datasets: list[Dataset],
        bulk: BulkStorage | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.work, self.datasets, self.bulk, self.tls = work, datasets, bulk, tls
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        servers = []
        for d in self.datasets:
            listeners = [("http", d.port, "")]
            if self.tls is not None:
                listeners.append(("https", d.tls_port, f" ssl;{self.tls.nginx()}\n   "))
            for scheme, port, ssl in listeners:
                body = dict(EXAMPLE)
                body["file_name"] = d.path.name
                body["signed_url"] = (
                    f"{scheme}://127.0.0.1:{port}/bucket/{d.path.name}?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                    "&X-Goog-Credential=bench&X-Goog-Date=20990101T000000Z&X-Goog-Expires=604800"
                    "&X-Goog-SignedHeaders=host&X-Goog-Signature=bench"
                )
                body["expires_at"] = "2099-01-01T00:00:00.000000000Z"
                servers.append(
                    f"""
  server {{
    listen 127.0.0.1:{port}{ssl or ";"}
    location = /v1/call-recording/signed-url {{
      default_type application/json;
      return 200 '{json.dumps(body)}';
    }}
    location /bucket/ {{
      alias {d.path.parent}/;
      add_header x-goog-hash "{d.goog_hash}";
    }}{gcs_location(d.path.parent, d.goog_hash)}
  }}"""
                )
        # Started as root, nginx's workers drop to `nobody`, who cannot read a checkout in a
        # private directory (mktemp -d): they run as us instead (127.0.0.1 only, our own files).
        user = ""
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            import pwd

            user = f"user {pwd.getpwuid(os.geteuid()).pw_name};"
        return f"""
{user}
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
        if self.tls is not None:
            ports += [d.tls_port for d in self.datasets]
        if self.bulk is not None and self.bulk.tls is not None:
            ports.append(self.bulk.tls_port)
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
