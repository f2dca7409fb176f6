"""A tiny CONNECT proxy on 127.0.0.1 for tests: tunnels bytes, records what it was asked for."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from types import TracebackType
from typing import Self


class _Tunnel(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            data = client.recv(4096)
            if not data:
                return
            head += data
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        self.server.record(f"{method} {target}")
        if method != "CONNECT":
            client.sendall(
                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.server.track(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pump = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
        pump.start()
        _copy(client, upstream)
        pump.join(timeout=10)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.requests: list[str] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def close_all(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()


class ConnectProxy:
    """`with ConnectProxy() as proxy:` then `proxy.url`; `proxy.requests` lists `CONNECT host:port`."""

    def __init__(self) -> None:
        self._server = _ProxyServer()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        return list(self._server.requests)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        self._thread.join(timeout=10)
