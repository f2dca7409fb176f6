"""`Sandbox`: a local, spec-faithful Verbex API plus GCS-style storage, for tests and demos."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, quote, urlsplit

import attrs

from ._faults import Fault, FaultQueue, HeldDownload, Target
from ._server import SandboxHandler, SandboxHTTPServer
from ._storage import StorageError, StoredObject, sign

if TYPE_CHECKING:
    from verbex_client import AsyncVerbex, Verbex

_MASKED = "***"
_SECRET_QUERY = ("X-Goog-Signature", "X-Goog-Credential")


@attrs.frozen
class RecordedRequest:
    """One request the sandbox received. Secrets are masked: Authorization, URL credential/signature."""

    target: Target
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def _safe_object_name(file_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", file_name).lstrip("._")
    return slug or "recording"


@attrs.frozen
class _Recording:
    object_path: str
    obj: StoredObject
    file_name: str


@attrs.define
class _UrlLimit:
    deadline: float | None = None
    bytes_left: int | None = None


class Sandbox:
    """A real HTTP server on 127.0.0.1 that behaves like the Verbex API and GCS.

        with Sandbox() as sb:
            sb.add_recording("call_1", b"...audio...", file_name="call_1.ogg")
            with sb.client() as client:
                url = client.recordings.signed_url("call_1")

    Faults are scripted per test (`fail_next`, `cut_next_download`, ...);
    see the README's sandbox section for the full list with examples.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        bucket: str = "verbex-recordings",
        clock: Callable[[], float] = time.time,
        any_call_id: bytes | None = None,
        tls: bool = False,
    ) -> None:
        self.host, self._port = host, port
        # HTTPS with a certificate from a throw-away CA (trustme); clients trust `ca_bundle`.
        self.tls = tls
        self.ca_bundle: Path | None = None
        self.api_key = api_key or "API_" + secrets.token_urlsafe(45)
        self.bucket = bucket
        self.clock = clock
        # When set, every unknown call id has this recording (for fuzzers that invent ids).
        self.any_call_id = any_call_id
        self.faults = FaultQueue()
        self.api_latency = 0.0
        self.storage_latency = 0.0
        self.storage_bytes_per_second: float | None = None  # a slow link for every body (None: full speed)
        # Which x-goog-hash values storage sends: GCS sends both; composite objects only
        # crc32c; S3-style stores only an md5 (as the ETag).
        self.storage_hashes: tuple[str, ...] = ("crc32c", "md5")
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # ends injected delays and stalls at once on stop()
        self._objects: dict[str, _Recording] = {}
        self._by_path: dict[str, StoredObject] = {}
        self._requests: list[RecordedRequest] = []
        self._storage_in_flight = 0
        self.peak_storage_in_flight = 0  # most storage requests being answered at once
        self._url_limits: dict[str, _UrlLimit] = {}
        self._urls_issued = 0
        self._issued_urls: list[str] = []
        self._pending_limits: list[tuple[int | None, float | None, int | None]] = []
        self._holds: dict[str, HeldDownload] = {}  # by object path
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._tmp = tempfile.mkdtemp(prefix="verbex-sandbox-")
        self._stopping.clear()
        self._server = SandboxHTTPServer((self.host, self._port), self, self._server_tls())
        self._last_base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="verbex-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def _server_tls(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            import trustme
        except ImportError:
            raise RuntimeError(
                "Sandbox(tls=True) needs trustme: pip install 'verbex-client[testing]'"
            ) from None
        assert self._tmp is not None
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(self.host, "localhost", "127.0.0.1").configure_cert(context)
        self.ca_bundle = Path(self._tmp) / "sandbox-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        return context

    def stop(self) -> None:
        """Stop serving, close every connection, join every thread, delete stored bytes."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()  # joins handler threads
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: use `with Sandbox() as sb:` or call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _url_base(self) -> str:
        # Handlers still finishing after stop() (e.g. a delayed reply) must not fail on the port.
        if self._server is not None:
            self._last_base_url = self.base_url
        return self._last_base_url

    def __repr__(self) -> str:
        where = self.base_url if self._server else "stopped"
        return f"Sandbox({where}, recordings={len(self._objects)})"

    # -- data ---------------------------------------------------------------------------------

    def add_recording(
        self,
        call_id: str,
        data_or_path: bytes | str | os.PathLike[str],
        file_name: str | None = None,
        *,
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> None:
        """Make `call_id` have a recording: raw bytes, or a file on disk (served in place).

        `content_encoding="gzip"`: the bytes are the stored, gzip-compressed object; storage
        serves them as GCS does (decompressed unless the client sends `Accept-Encoding: gzip`,
        `x-goog-hash` always of the stored bytes).
        """
        if self._tmp is None:
            self.start()
        assert self._tmp is not None
        if isinstance(data_or_path, bytes | bytearray | memoryview):
            name = file_name if file_name is not None else f"{call_id}.ogg"
            digest = hashlib.sha256(call_id.encode()).hexdigest()[:16]
            disk_path = os.path.join(self._tmp, digest)
            with open(disk_path, "wb") as f:
                f.write(data_or_path)
        else:
            disk_path = os.fspath(data_or_path)
            name = file_name if file_name is not None else Path(disk_path).name
        kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        obj = StoredObject.from_file(disk_path, kind, content_encoding)
        object_path = (
            f"/{self.bucket}/{hashlib.sha256(call_id.encode()).hexdigest()[:16]}/{_safe_object_name(name)}"
        )
        with self._lock:
            old = self._objects.pop(call_id, None)
            if old:
                self._by_path.pop(old.object_path, None)
            self._objects[call_id] = _Recording(object_path, obj, name)
            self._by_path[object_path] = obj

    def remove_recording(self, call_id: str) -> None:
        """Forget a recording: the API answers 404, its old URLs get NoSuchKey."""
        with self._lock:
            entry = self._objects.pop(call_id, None)
            if entry:
                self._by_path.pop(entry.object_path, None)

    @property
    def open_connections(self) -> int:
        """Client connections open right now (keep-alive ones included)."""
        if self._server is None:
            return 0
        with self._server.connections_lock:
            return len(self._server.connections)

    @property
    def peak_connections(self) -> int:
        """Most client connections open at once since start (or `reset_peaks()`)."""
        return self._server.peak_connections if self._server else 0

    def reset_peaks(self) -> None:
        if self._server is not None:
            with self._server.connections_lock:
                self._server.peak_connections = len(self._server.connections)
        with self._lock:
            self.peak_storage_in_flight = self._storage_in_flight

    @property
    def issued_urls(self) -> list[str]:
        """Every signed URL handed out, unmasked: for asserting that none leaked into logs or errors."""
        with self._lock:
            return list(self._issued_urls)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.target == "api"]

    def storage_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.target == "storage"]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- clients ------------------------------------------------------------------------------

    def client_options(self) -> dict[str, Any]:
        """What a client needs to talk to this sandbox: key, base URL, and its CA when HTTPS."""
        options: dict[str, Any] = {"api_key": self.api_key, "base_url": self.base_url}
        if self.ca_bundle is not None:
            options["verify"] = str(self.ca_bundle)
        return options

    def client(self, **options: Any) -> Verbex:
        """A `Verbex` pointed at this sandbox with its key (options override)."""
        from verbex_client import Verbex

        return Verbex(**{**self.client_options(), **options})

    def async_client(self, **options: Any) -> AsyncVerbex:
        from verbex_client import AsyncVerbex

        return AsyncVerbex(**{**self.client_options(), **options})

    # -- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        target: Target = "api",
        retry_after: str | float | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Answer the next `count` requests of `target` with `status` (and `Retry-After`)."""
        ra = None if retry_after is None else str(retry_after)
        self.faults.add(
            Fault(
                target, "status", count, status=status, retry_after=ra, body=body, content_type=content_type
            )
        )

    def respond_next(
        self, body: bytes, *, status: int = 200, content_type: str = "application/json", count: int = 1
    ) -> None:
        """Answer the next API request(s) with exactly this body: malformed JSON, HTML, a field missing..."""
        self.faults.add(Fault("api", "body", count, status=status, body=body, content_type=content_type))

    def delay_next(self, seconds: float, *, count: int = 1, target: Target = "api") -> None:
        """Wait `seconds` before answering the next `count` requests of `target` normally."""
        self.faults.add(Fault(target, "delay", count, seconds=seconds))

    def reset_next(self, count: int = 1, *, target: Target = "api") -> None:
        """Reset the connection (TCP RST) instead of answering the next `count` requests."""
        self.faults.add(Fault(target, "reset", count))

    def cut_next_download(self, after_bytes: int, *, count: int = 1) -> None:
        """Promise the full body, send `after_bytes` of it, then drop the connection."""
        self.faults.add(Fault("storage", "cut", count, after_bytes=after_bytes))

    def stall_next_download(self, after_bytes: int, seconds: float, *, count: int = 1) -> None:
        """Send `after_bytes` of the body, go silent for `seconds`, then send the rest."""
        self.faults.add(Fault("storage", "stall", count, after_bytes=after_bytes, seconds=seconds))

    def corrupt_next_download(self, *, at: int | None = None, count: int = 1) -> None:
        """Flip one byte (object offset `at`, default the middle of what is sent)."""
        self.faults.add(Fault("storage", "corrupt", count, at=at))

    def wrong_length_next_download(self, delta: int = 100, *, count: int = 1) -> None:
        """Declare `Content-Length` off by `delta` bytes (then close the connection)."""
        self.faults.add(Fault("storage", "bad_length", count, delta=delta))

    def ignore_range_next(self, *, count: int = 1) -> None:
        """Answer the next ranged download(s) with 200 and the whole object, as some servers do."""
        self.faults.add(Fault("storage", "ignore_range", count))

    def tail_as_200_next(self, *, count: int = 1) -> None:
        """Answer the next ranged download(s) with 200, a Content-Range and only the asked-for
        tail, without x-goog-hash: a broken proxy or cache."""
        self.faults.add(Fault("storage", "tail_as_200", count))

    def shift_range_next(self, delta: int = 10, *, count: int = 1) -> None:
        """Answer the next ranged download(s) with a 206 starting `delta` bytes later than asked."""
        self.faults.add(Fault("storage", "shift_range", count, delta=delta))

    def expire_urls(
        self, *, after_seconds: float | None = None, after_bytes: int | None = None, count: int | None = None
    ) -> None:
        """Make the next `count` signed URLs (all, when None) die early.

        `after_seconds=0`: dead before the first byte. `after_bytes=K`: the
        download is cut after K bytes and the URL is expired from then on.
        Storage answers a dead URL with 400 `ExpiredToken`, as GCS does.
        """
        with self._lock:
            self._pending_limits.append((count, after_seconds, after_bytes))

    def hold_download(self, call_id: str, *, timeout: float = 60.0) -> HeldDownload:
        """Hold every storage download of `call_id`'s recording until `.release()` (each waits
        at most `timeout` seconds; `.reached` is set once one arrived):

            held = sb.hold_download("call_1")
            ...  # the client's other downloads go on; assert what it reported meanwhile
            held.release()
        """
        with self._lock:
            entry = self._objects.get(call_id)
            if entry is None:
                raise KeyError(f"no recording for {call_id!r}: add_recording() it first")
            held = self._holds[entry.object_path] = HeldDownload(call_id, timeout)
        return held

    def clear_faults(self) -> None:
        self.faults.clear()
        with self._lock:
            self._pending_limits.clear()
            holds, self._holds = list(self._holds.values()), {}
        for held in holds:
            held.release()
        self.api_latency = self.storage_latency = 0.0
        self.storage_bytes_per_second = None

    # -- used by the handler ------------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        """An injected delay or stall; cut short when the sandbox stops (nobody is waiting then)."""
        self._stopping.wait(seconds)

    def _wait_if_held(self, object_path: str) -> None:
        with self._lock:
            held = self._holds.get(object_path)
        if held is not None:
            held.wait(self._stopping)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _record(self, handler: SandboxHandler, body: bytes, target: Target) -> None:
        parts = urlsplit(handler.path)
        query = {
            k: (_MASKED if k in _SECRET_QUERY else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        }
        headers = {k: v for k, v in handler.headers.items()}
        for name in list(headers):
            if name.lower() == "authorization":
                scheme = headers[name].split(" ", 1)[0]
                headers[name] = f"{scheme} {_MASKED}" if " " in headers[name] else _MASKED
        entry = RecordedRequest(target, handler.command, parts.path, query, headers, body)
        with self._lock:
            self._requests.append(entry)

    def _storage_started(self) -> None:
        with self._lock:
            self._storage_in_flight += 1
            self.peak_storage_in_flight = max(self.peak_storage_in_flight, self._storage_in_flight)

    def _storage_ended(self) -> None:
        with self._lock:
            self._storage_in_flight -= 1

    def _object_at(self, path: str) -> StoredObject | None:
        with self._lock:
            return self._by_path.get(path)

    def _issue_url(self, call_id: str, minutes: int) -> dict[str, Any] | None:
        with self._lock:
            entry = self._objects.get(call_id)
        if entry is None and self.any_call_id is not None:
            self.add_recording(call_id, self.any_call_id)
            with self._lock:
                entry = self._objects.get(call_id)
        if entry is None:
            return None
        object_path, name = entry.object_path, entry.file_name
        now = self._now()
        seconds = min(max(minutes, 1) * 60, 604_800)
        with self._lock:
            self._urls_issued += 1
            url_id = self._urls_issued
        query = sign(
            self._secret,
            quote(object_path),
            issued=now,
            expires_seconds=seconds,
            credential="sandbox%40verbex",
            url_id=url_id,
        )
        url = f"{self._url_base()}{quote(object_path)}?{query}"
        signature = dict(parse_qsl(query))["X-Goog-Signature"]
        with self._lock:
            self._issued_urls.append(url)
        self._apply_pending_limit(signature, now)
        expires_at = now + timedelta(seconds=seconds)
        return {
            "file_name": name,
            "signed_url": url,
            "expiration_minutes": minutes,
            # Nine fractional digits, like the real service's example.
            "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
        }

    def _apply_pending_limit(self, signature: str, now: datetime) -> None:
        with self._lock:
            if not self._pending_limits:
                return
            count, after_seconds, after_bytes = self._pending_limits[0]
            if count is not None:
                if count <= 1:
                    self._pending_limits.pop(0)
                else:
                    self._pending_limits[0] = (count - 1, after_seconds, after_bytes)
            deadline = now.timestamp() + after_seconds if after_seconds is not None else None
            self._url_limits[signature] = _UrlLimit(deadline, after_bytes)

    def _check_url_limits(self, signature: str) -> None:
        with self._lock:
            limit = self._url_limits.get(signature)
        if limit is None:
            return
        dead = (limit.deadline is not None and self.clock() >= limit.deadline) or limit.bytes_left == 0
        if dead:
            raise StorageError(400, "ExpiredToken", "The provided token has expired.")

    def _bytes_budget(self, signature: str) -> int | None:
        with self._lock:
            limit = self._url_limits.get(signature)
            return None if limit is None else limit.bytes_left

    def _count_bytes(self, signature: str, sent: int) -> None:
        with self._lock:
            limit = self._url_limits.get(signature)
            if limit is not None and limit.bytes_left is not None:
                limit.bytes_left = max(limit.bytes_left - sent, 0)
