"""The sandbox's HTTP server: the Verbex API endpoint and GCS-style storage on one port."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from ._faults import Fault
from ._storage import StorageError, StoredObject, check, parse_range

if TYPE_CHECKING:
    from ._sandbox import Sandbox

API_PATH = "/v1/call-recording/signed-url"
_SLICE = 16 << 10  # bytes per paced send (storage_bytes_per_second)
_DEFAULT_ERROR_BODIES = {
    429: {"error": "rate_limited", "message": "Too many requests"},
    500: {"error": "internal_error", "message": "Internal server error"},
    502: {"error": "bad_gateway", "message": "Bad gateway"},
    503: {"error": "unavailable", "message": "Service unavailable"},
}


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded server that can close its keep-alive connections on shutdown."""

    daemon_threads = False  # joined on server_close: no threads leak past stop()
    block_on_close = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of new connections (a batch
    # starting) overflows it and the kernel drops SYNs, which clients retry only
    # after 1 s.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, tls: ssl.SSLContext | None = None) -> None:
        self.sandbox = sandbox
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.peak_connections = 0
        super().__init__(address, SandboxHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.tls is not None:  # the handshake happens on the handler's thread, not here
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-reply (or mid-handshake) is normal here (faults, cancels).
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _validation_error(loc: list[Any], msg: str, kind: str, value: Any = None) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind, "input": value}


def validate_request_body(raw: bytes) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """FastAPI/pydantic-style validation of CallRecordingRequest: (body, errors)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None, [_validation_error(["body", 0], "JSON decode error", "json_invalid", {})]
    if not isinstance(data, dict):
        return None, [
            _validation_error(
                ["body"], "Input should be a valid dictionary or object", "model_attributes_type", data
            )
        ]
    errors = []
    if "call_id" not in data:
        errors.append(_validation_error(["body", "call_id"], "Field required", "missing", data))
    elif not isinstance(data["call_id"], str):
        errors.append(
            _validation_error(
                ["body", "call_id"], "Input should be a valid string", "string_type", data["call_id"]
            )
        )
    minutes = data.get("expiration_url_in_minutes", 10)
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        errors.append(
            _validation_error(
                ["body", "expiration_url_in_minutes"], "Input should be a valid integer", "int_type", minutes
            )
        )
    return (data if not errors else None), errors


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "verbex-sandbox"
    sys_version = ""
    timeout = 30  # an idle keep-alive connection is dropped after this
    server: SandboxHTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus
        # the client's delayed ACK stalls every keep-alive reply by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)
            self.server.peak_connections = max(self.server.peak_connections, len(self.server.connections))

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read sb.requests instead
        pass

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return b""
        return self.rfile.read(int(length))

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: object, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST, before any response byte."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _common_fault(self, fault: Fault) -> bool:
        """Apply a fault that any target shares; True when the request is answered."""
        if fault.action == "delay":
            self.sandbox._pause(fault.seconds)
            return False
        if fault.action == "reset":
            self._reset()
            return True
        if fault.action == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            body = fault.body
            if body is None:
                payload = _DEFAULT_ERROR_BODIES.get(
                    fault.status, {"error": "error", "message": "Injected failure"}
                )
                body = json.dumps(payload).encode()
            self._send(fault.status, body, fault.content_type, extra)
            return True
        if fault.action == "body":
            self._send(fault.status, fault.body or b"", fault.content_type)
            return True
        return False

    # -- routing ----------------------------------------------------------------------------------

    def do_POST(self) -> None:
        body = self._read_body()
        self.sandbox._record(self, body, "api")
        path = urlsplit(self.path).path
        if path != API_PATH:
            self._send_json(404, {"detail": "Not Found"})
            return
        self._api(body)

    def do_GET(self) -> None:
        self._route_get()

    def do_HEAD(self) -> None:
        self._route_get()

    def _other_method(self) -> None:
        """FastAPI's answer to a method the route does not have (storage: GET/HEAD only too)."""
        self.sandbox._record(self, self._read_body(), "api")
        self._send_json(405, {"detail": "Method Not Allowed"}, {"Allow": "POST"})

    def __getattr__(self, name: str) -> Any:
        # Any method without a do_X (PUT, TRACE, QUERY, ...) gets 405 rather than 501.
        if name.startswith("do_"):
            return self._other_method
        raise AttributeError(name)

    def _route_get(self) -> None:
        path = urlsplit(self.path).path
        if path == API_PATH:
            self._other_method()
            return
        self.sandbox._record(self, b"", "storage")
        self.sandbox._storage_started()
        try:
            self._storage()
        finally:
            self.sandbox._storage_ended()

    # -- API --------------------------------------------------------------------------------------

    def _api(self, body: bytes) -> None:
        sandbox = self.sandbox
        if sandbox.api_latency:
            sandbox._pause(sandbox.api_latency)
        fault = sandbox.faults.take("api")
        if fault is not None and self._common_fault(fault):
            return
        auth = self.headers.get("Authorization")
        if not auth:
            self._send_json(401, {"error": "missing_api_key", "message": "Missing API key"})
            return
        if auth != f"Bearer {sandbox.api_key}":
            self._send_json(401, {"error": "invalid_api_key", "message": "Invalid API key"})
            return
        data, errors = validate_request_body(body)
        if data is None:
            self._send_json(422, {"detail": errors})
            return
        minutes = data.get("expiration_url_in_minutes", 10)
        call_id = data["call_id"]
        issued = sandbox._issue_url(call_id, minutes)
        if issued is None:
            self._send_json(
                404, {"error": "recording_not_found", "message": f"No recording found for call {call_id}"}
            )
            return
        self._send_json(200, issued)

    # -- storage ----------------------------------------------------------------------------------

    def _storage_error(self, error: StorageError, extra: dict[str, str] | None = None) -> None:
        self._send(error.status, error.xml(), "application/xml; charset=UTF-8", extra)

    def _storage(self) -> None:
        sandbox = self.sandbox
        if sandbox.storage_latency:
            sandbox._pause(sandbox.storage_latency)
        parts = urlsplit(self.path)
        sandbox._wait_if_held(unquote(parts.path))
        fault = sandbox.faults.take("storage")
        if fault is not None and self._common_fault(fault):
            return
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        obj = sandbox._object_at(unquote(parts.path))
        try:
            signature = check(sandbox._secret, parts.path, query, sandbox._now())
            sandbox._check_url_limits(signature)
            if obj is None:
                raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
            transcode = obj.content_encoding == "gzip" and "gzip" not in self.headers.get(
                "Accept-Encoding", ""
            )
            byte_range = None if transcode else parse_range(self.headers.get("Range"), obj.size)
            if fault is not None and byte_range is not None:
                if fault.action == "ignore_range":
                    byte_range = None
                elif fault.action == "shift_range":
                    byte_range = (min(byte_range[0] + fault.delta, byte_range[1]), byte_range[1])
        except StorageError as error:
            extra = {"Content-Range": f"bytes */{obj.size}"} if error.status == 416 and obj else None
            self._storage_error(error, extra)
            return
        if transcode:
            self._serve_transcoded(obj)
            return
        self._serve_object(obj, byte_range, fault, signature)

    def _object_headers(self, obj: StoredObject) -> None:
        self.send_header("Content-Type", obj.content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", obj.etag)
        hashes = {"crc32c": obj.crc32c_b64, "md5": obj.md5_b64}
        for name in self.sandbox.storage_hashes:
            self.send_header("x-goog-hash", f"{name}={hashes[name]}")
        self.send_header("x-goog-stored-content-length", str(obj.size))
        if obj.content_encoding:
            self.send_header("x-goog-stored-content-encoding", obj.content_encoding)

    def _serve_transcoded(self, obj: StoredObject) -> None:
        """GCS's decompressive transcoding: the whole object decompressed, no Content-Length, no
        Content-Encoding, yet x-goog-hash of the stored (compressed) bytes."""
        import gzip

        with open(obj.path, "rb") as f:
            data = gzip.decompress(f.read())
        self.send_response(200)
        self._object_headers(obj)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_file(self, f: BinaryIO, offset: int, count: int) -> int:
        """sendfile, or paced to `storage_bytes_per_second` in 16 KiB slices (a slow link)."""
        rate = self.sandbox.storage_bytes_per_second
        if not count:
            return 0
        if not rate:
            return int(self.connection.sendfile(f, offset, count))
        sent = 0
        for _ in range(-(-count // _SLICE)):  # bounded: one slice per step
            sent += int(self.connection.sendfile(f, offset + sent, min(_SLICE, count - sent)))
            self.sandbox._pause(_SLICE / rate)
        return sent

    def _serve_object(
        self, obj: StoredObject, byte_range: tuple[int, int] | None, fault: Fault | None, signature: str
    ) -> None:
        start, end = byte_range if byte_range else (0, obj.size - 1)
        length = max(end - start + 1, 0)
        send_length = length
        declared = length
        if fault is not None and fault.action == "cut":
            send_length = min(fault.after_bytes, length)
        if fault is not None and fault.action == "bad_length":
            declared = max(length + fault.delta, 0)
            send_length = min(length, declared)
        budget = self.sandbox._bytes_budget(signature)
        if budget is not None and budget < send_length:
            send_length = budget  # the URL "expires" mid-body: cut here, refuse it afterwards
        tail_as_200 = fault is not None and fault.action == "tail_as_200" and byte_range is not None
        self.send_response(206 if byte_range and not tail_as_200 else 200)
        if tail_as_200:  # a broken proxy: the tail, called 200, without the object's hashes
            self.send_header("Content-Type", obj.content_type)
        else:
            self._object_headers(obj)
        self.send_header("Content-Length", str(declared))
        if obj.content_encoding:
            self.send_header("Content-Encoding", obj.content_encoding)
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{end}/{obj.size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.action == "corrupt":
            with open(obj.path, "rb") as f:
                f.seek(start)
                data = bytearray(f.read(length))
            at = (fault.at - start) if fault.at is not None else length // 2
            if 0 <= at < len(data):
                data[at] ^= 0xFF
            self.wfile.write(bytes(data))
            sent = len(data)
        else:
            stall = fault if fault is not None and fault.action == "stall" else None
            with open(obj.path, "rb") as f:
                sent = self._send_file(
                    f, start, min(stall.after_bytes, send_length) if stall else send_length
                )
                if stall is not None and sent < send_length:
                    self.sandbox._pause(stall.seconds)
                    sent += self._send_file(f, start + sent, send_length - sent)
        self.sandbox._count_bytes(signature, sent)
        if send_length < declared:
            # Promised more than we sent: end the connection so the client sees it.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        elif declared < length:
            self.close_connection = True
