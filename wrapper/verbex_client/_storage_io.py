"""Reading storage replies: httpx, or a zero-copy stdlib path for downloads to disk.

`http.client`'s `readinto` receives straight into our buffer, which makes
downloads about 1.5x faster than iterating httpx's body (see
benchmarks/RESULTS.md). It is used only where it is equivalent: plain GETs
to http(s) URLs with no proxy configured for the host; anything else goes
through httpx.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import mmap
import socket
import ssl
import struct
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol
from urllib.parse import urlsplit

import httpx

CHUNK_SIZE = 1 << 20
# Receive buffers are page-aligned anonymous maps, not bytearrays: a bytearray's bytes
# start 16 bytes into a page (malloc's header), so a body byte lands 16 bytes past where
# it sits in the server's page-cache page (nginx's sendfile, any zero-copy server), and
# the kernel's copy into it stalls on 4K aliasing (loads look like they depend on the
# stores just made): the recv() took 3-4x the CPU here. Aligned, each byte keeps its offset.
# They are recycled (fresh 1 MiB buffers cost page faults: ~1 ms per reply,
# a third of a 2 MiB download's time). Each download thread hands them out in a ring;
# a buffer is refilled RING_SIZE chunks after it was handed out, and the hashing
# thread's queue holds at most _fetch.HASH_QUEUE_DEPTH chunks plus the one it is
# hashing, so by then it is done. Between downloads they wait in a shared pool, so
# the next download (on any thread: async downloads start one each) reuses them.
RING_SIZE = 20
POOL_KEEP = 32  # idle buffers kept for later downloads (MiB); emptied when a client closes
MAX_IDLE_PER_HOST = 32


class _Ring(threading.local):
    def __init__(self) -> None:
        self.buffers: list[mmap.mmap] = []
        self.turn = 0

    def next(self) -> mmap.mmap:
        if len(self.buffers) < RING_SIZE and self.turn >= len(self.buffers):
            with _POOL_LOCK:
                buffer = _POOL.pop() if _POOL else None
            self.buffers.append(_new_buffer() if buffer is None else buffer)
        buffer = self.buffers[self.turn % len(self.buffers)]
        self.turn += 1
        return buffer


def _new_buffer() -> mmap.mmap:
    if hasattr(mmap, "MAP_PRIVATE"):  # mmap's default is MAP_SHARED: a forked child would share it
        return mmap.mmap(-1, CHUNK_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return mmap.mmap(-1, CHUNK_SIZE)  # Windows: private to the process already


_RING = _Ring()
_POOL: list[mmap.mmap] = []
_POOL_LOCK = threading.Lock()


def release_receive_buffers() -> None:
    """After a download (its hashing finished): its buffers go back to the pool for the next."""
    buffers, _RING.buffers, _RING.turn = _RING.buffers, [], 0
    with _POOL_LOCK:
        _POOL.extend(buffers[: max(POOL_KEEP - len(_POOL), 0)])


def drop_pooled_buffers() -> None:
    """Free the idle buffers (a closing client: a service should not keep them for nothing)."""
    with _POOL_LOCK:
        _POOL.clear()


# What a storage request can raise on the wire, from either path.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, OSError, http.client.HTTPException)


class StorageReply(Protocol):
    status_code: int
    headers: Mapping[str, str]  # case-insensitive lookups
    goog_hash: list[str]

    def read(self) -> bytes: ...

    def chunks(self) -> Iterator[bytes | bytearray | memoryview]: ...


Opener = Callable[[str, dict[str, str]], AbstractContextManager[StorageReply]]


class _HttpxReply:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.goog_hash = response.headers.get_list("x-goog-hash")

    def read(self) -> bytes:
        return self._response.read()

    def chunks(self) -> Iterator[bytes]:
        return self._response.iter_raw()


def httpx_opener(client: httpx.Client) -> Opener:
    @contextmanager
    def open_reply(url: str, headers: dict[str, str]) -> Iterator[StorageReply]:
        with client.stream("GET", url, headers=headers) as response:
            yield _HttpxReply(response)

    return open_reply


class _StdlibReply:
    def __init__(self, response: http.client.HTTPResponse, direct: _DirectBody | None = None) -> None:
        self._response = response
        self._direct = direct
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers  # type: ignore[assignment]  # Message: a str mapping
        self.goog_hash = response.headers.get_all("x-goog-hash") or []

    def read(self) -> bytes:
        return self._response.read()

    def chunks(self) -> Iterator[memoryview]:
        response = self._response
        length = response.length
        if self._direct is not None and length is not None and length > io.DEFAULT_BUFFER_SIZE:
            yield from self._direct.chunks(response, length)
            return
        while True:
            buffer = _RING.next()
            n = response.readinto(buffer)
            if not n:
                return
            yield memoryview(buffer)[:n]

    @property
    def reusable(self) -> bool:
        """Body read to its end and the server keeps the connection open."""
        response = self._response
        return response.isclosed() and not response.will_close and not response.length


class _DirectBody:
    """Linux, plain http, a Content-Length body: fill each buffer with recv(MSG_WAITALL).

    `http.client` receives whatever a loopback or LAN socket holds at the time
    (often 64-100 KiB), one poll() and one recv() each: a GIL hand-over every
    time, which adds up when many threads download at once. Here the socket
    blocks (its read timeout moved into SO_RCVTIMEO) until a whole 1 MiB
    buffer is there. A read that times out after receiving some bytes returns
    them and is simply repeated, so a slow link never looks stalled; no byte
    for a whole read timeout raises TimeoutError (after one to two timeouts).
    """

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        self.sock, self.timeout = sock, timeout

    def chunks(self, response: http.client.HTTPResponse, length: int) -> Iterator[memoryview]:
        """The body (`length` > http.client's buffer size) in full buffers; stops early at EOF."""
        remaining = length
        self.sock.settimeout(None)
        try:
            first = True
            while remaining:
                view = memoryview(_RING.next())[: min(remaining, CHUNK_SIZE)]
                n = 0
                if first:
                    # http.client may hold the body's first bytes (at most its buffer size, less
                    # than we ask for): readinto1 hands those over and leaves its buffer empty.
                    n = response.fp.readinto1(view) or 0  # None: SO_RCVTIMEO ran out
                    first = False
                stalled: TimeoutError | None = None
                try:
                    while n < len(view) and (got := self._recv(view[n:])):
                        n += got
                except TimeoutError as error:
                    stalled = error
                if n:
                    yield view[:n]  # kept even when the server then went silent: resumed from here
                    remaining -= n
                if stalled is not None:
                    raise stalled
                if n < len(view):  # the server closed the connection early
                    return
            response.close()  # read to the end: the connection may serve another request
            response.length = 0
        finally:
            self.sock.settimeout(self.timeout)

    def _recv(self, view: memoryview) -> int:
        """Bytes received into `view`: all of it, fewer after a timeout or at EOF (0)."""
        try:
            return self.sock.recv_into(view, len(view), socket.MSG_WAITALL)
        except BlockingIOError:  # SO_RCVTIMEO ran out with nothing received
            raise TimeoutError("storage read timed out") from None


_DIRECT_READS = sys.platform.startswith("linux") and hasattr(socket, "MSG_WAITALL")


def _direct_body(conn: http.client.HTTPConnection, timeout: float | None, fresh: bool) -> _DirectBody | None:
    sock = conn.sock
    if not _DIRECT_READS or not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return None  # TLS sockets take no recv flags
    if fresh and timeout is not None:
        seconds = int(timeout)
        micros = int((timeout - seconds) * 1e6) or (0 if seconds else 1)  # 0 would mean "never"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))
    return _DirectBody(sock, timeout)


class Aborter:
    """Lets another thread unblock a request stuck on the network (async cancellation).

    `abort()` shuts the watched connection's socket down, so a blocked connect,
    send or recv fails at once; requests started afterwards fail before sending.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self.aborted = False

    def watch(self, conn: http.client.HTTPConnection | None) -> None:
        with self._lock:
            if self.aborted and conn is not None:
                raise ConnectionAbortedError("download cancelled")
            self._conn = conn

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class ConnectionPool:
    """Idle keep-alive `http.client` connections per (scheme, host, port); thread-safe."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        # Read once, as httpx reads its proxy settings once per client (os.environ is slow to scan).
        self.proxies = urllib.request.getproxies()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    @contextmanager
    def open(
        self, url: str, headers: dict[str, str], aborter: Aborter | None = None
    ) -> Iterator[StorageReply]:
        watch = aborter.watch if aborter is not None else (lambda conn: None)
        parts = urlsplit(url)
        scheme = parts.scheme
        key = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        with self._lock:
            idle = self._idle.get(key)
            conn = idle.pop() if idle else None
        reused = conn is not None
        conn = conn or self._connect(*key)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        reusable = False
        try:
            try:
                watch(conn)
                conn.request("GET", target, headers={"Accept-Encoding": "identity", **headers})
                watch(conn)  # now with its socket, which abort() can shut down
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                conn.close()  # the server closed an idle keep-alive connection: one fresh try
                conn = self._connect(*key)
                reused = False
                watch(conn)
                conn.request("GET", target, headers={"Accept-Encoding": "identity", **headers})
                watch(conn)
                response = conn.getresponse()
            reply = _StdlibReply(response, _direct_body(conn, self.timeout, fresh=not reused))
            yield reply
            reusable = reply.reusable
        finally:
            watch(None)
            if reusable:
                with self._lock:
                    idle = self._idle.setdefault(key, [])
                    if len(idle) < MAX_IDLE_PER_HOST:
                        idle.append(conn)
                        conn = None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        drop_pooled_buffers()


def can_use_stdlib(url: str, proxies: Mapping[str, str] | None = None) -> bool:
    """Plain http(s) with no proxy configured for the host (proxies need httpx)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if proxies is None:
        proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname))
