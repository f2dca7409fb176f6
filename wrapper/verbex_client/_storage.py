"""The storage client: GET requests to the hosts that serve signed URLs.

Owned by `Verbex` / `AsyncVerbex` (shared by their `with_options` copies) and
separate from the API pool, so no API header (the key above all) can ever
reach a storage host. One receive path per mode:

- sync bodies are read with urllib3 (`read()` of 256 KiB, filled in C from
  TLS records): over HTTPS, httpx's sync stream hands over one 16 KiB TLS
  record per iteration and took ~2x the time for a large recording (see
  benchmarks/RESULTS.md);
- async bodies are read with httpx's async stream (the event loop is never
  blocked, cancellation is immediate, connect included).

Both use the same TLS context, proxy rules, timeouts and headers.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from ._errors import closed_error
from ._exceptions import DownloadError
from ._network import NetworkSettings

if TYPE_CHECKING:
    import urllib3

    from ._fetch import Failure

CHUNK_SIZE = 256 << 10
ERROR_BODY_LIMIT = 64 << 10  # of an error reply, enough for GCS's XML
# The stored bytes, always: GCS would otherwise decompress a gzip-stored object
# while its x-goog-hash stays the hash of the stored bytes (decompressive transcoding).
ACCEPT_ENCODING = "gzip"


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_storage_url(url: object, call_id: str, *, allow_insecure: bool) -> httpx.URL:
    """A signed URL we may fetch, checked before any connection (the spec types it as any string).

    https only, except loopback hosts (the sandbox, tests) or `allow_insecure`: the URL is a
    bearer credential, and plain http hands it to anyone on the path. Errors name the host,
    never the query, and chain nothing (the parser's exception would hold the whole URL).
    """

    def refuse(reason: str) -> DownloadError:
        return DownloadError(f"the signed URL for call {call_id!r} {reason}", call_id=call_id)

    if not isinstance(url, str):
        raise refuse("is not a string")
    # Printable ASCII leaves one whitespace character to refuse: the space.
    if not url.isascii() or not url.isprintable() or " " in url:
        raise refuse("contains characters a URL cannot carry (spaces, line breaks, non-ASCII)")
    parsed: httpx.URL | None = None
    try:
        parsed = httpx.URL(url)
        port = parsed.port  # a malformed port raises here
    except (httpx.InvalidURL, ValueError, UnicodeError):
        pass
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise refuse("is not a valid http(s) URL")
    del port
    if parsed.scheme == "http" and not allow_insecure and not is_loopback(parsed.host):
        raise refuse(
            f"is plain http (host {parsed.host}): refusing to send a bearer URL unencrypted; "
            "pass allow_insecure_storage=True to allow it"
        )
    return parsed


def describe_url(url: httpx.URL) -> str:
    """Host and path, for logs and messages (the query holds the credential and signature)."""
    return f"{url.host}{url.path}"


def transport_failure(error: BaseException, url: httpx.URL) -> Failure:
    """What a failed storage request tells us, as plain facts: no exception object is kept
    (urllib3's and httpx's exceptions carry the URL, query included)."""
    from ._fetch import Failure

    timeout = isinstance(error, httpx.TimeoutException) or "Timeout" in type(error).__name__
    return Failure(kind=type(error).__name__, host=url.host, timeout=timeout)


class _Urllib3Reply:
    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers
        self.goog_hash: list[str] = response.headers.getlist("x-goog-hash")

    def read(self) -> bytes:
        return self._response.read(ERROR_BODY_LIMIT)

    def chunks(self) -> Iterator[bytes]:
        read = self._response.read
        while data := read(CHUNK_SIZE):
            yield data


class SyncStorage:
    """Blocking storage requests through urllib3 pools (one per proxy), thread-safe."""

    def __init__(self, network: NetworkSettings, user_agent: str, pool_size: int) -> None:
        import urllib3

        self._network, self._user_agent, self._pool_size = network, user_agent, pool_size
        # What a request or its body can raise on the wire: urllib3 wraps http.client's own
        # errors (ProtocolError); a socket error may still arrive bare.
        self.errors: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
        self._pools: dict[tuple[str | None, bool], urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._ssl: Any = None
        # Made on a client's first download (see _client._Shared), as httpx reads them per client.
        self._environment_proxies = network.environment_proxies()
        self.closed = False

    def _pool_for(self, proxy: str | None, url: httpx.URL) -> urllib3.PoolManager:
        # Plain-http storage (a sandbox) needs no TLS context: loading certifi's bundle costs
        # ~20 ms, once per client. Anything that may do TLS gets ours, never urllib3's default.
        tls = url.scheme == "https" or (proxy or "").startswith("https:")
        with self._lock:
            if self.closed:
                raise closed_error()
            pool = self._pools.get((proxy, tls))
            if pool is None:
                import urllib3

                options: dict[str, Any] = {"maxsize": self._pool_size, "block": False, "retries": False}
                if tls:
                    if self._ssl is None:
                        self._ssl = self._network.ssl_context()
                    options["ssl_context"] = self._ssl
                pool = (
                    urllib3.ProxyManager(proxy, **options)
                    if proxy is not None
                    else urllib3.PoolManager(**options)
                )
                self._pools[(proxy, tls)] = pool
        return pool

    @contextmanager
    def get(self, url: httpx.URL, headers: dict[str, str], timeout: httpx.Timeout) -> Iterator[_Urllib3Reply]:
        """One GET, its body not yet read; the connection goes back to the pool afterwards."""
        import urllib3

        pool = self._pool_for(self._network.proxy_for(url, self._environment_proxies), url)
        response = pool.urlopen(
            "GET",
            str(url),
            headers={"User-Agent": self._user_agent, "Accept-Encoding": ACCEPT_ENCODING, **headers},
            preload_content=False,
            decode_content=False,
            redirect=False,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout.connect, read=timeout.read),
        )
        try:
            yield _Urllib3Reply(response)
        finally:
            if not response.closed:
                response.close()  # body not read to its end: the connection cannot be reused
            response.release_conn()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.clear()


class _HttpxReply:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.goog_hash = response.headers.get_list("x-goog-hash")

    async def read(self) -> bytes:
        body = bytearray()
        async for chunk in self._response.aiter_raw():
            body += chunk
            if len(body) >= ERROR_BODY_LIMIT:
                break
        return bytes(body)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_raw()


class AsyncStorage:
    """Storage requests through an httpx.AsyncClient (no API headers, our TLS and proxy)."""

    errors: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError)

    def __init__(self, network: NetworkSettings, user_agent: str, limits: httpx.Limits) -> None:
        self._network, self._user_agent, self._limits = network, user_agent, limits
        self._client: httpx.AsyncClient | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.closed = False

    def executor(self) -> ThreadPoolExecutor:
        """Threads for file writes, fsyncs and renames, which would block the event loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._limits.max_connections or 20, thread_name_prefix="verbex-file"
            )
        return self._executor

    def _http(self) -> httpx.AsyncClient:
        if self.closed:
            raise closed_error()
        if self._client is None:  # created on first use: its TLS context costs ~50 ms
            network = self._network
            self._client = httpx.AsyncClient(
                verify=network.ssl_context(),
                proxy=network.proxy,
                trust_env=network.trust_env,
                limits=self._limits,
                headers={"User-Agent": self._user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            )
        return self._client

    @asynccontextmanager
    async def get(
        self, url: httpx.URL, headers: dict[str, str], timeout: httpx.Timeout
    ) -> AsyncIterator[_HttpxReply]:
        async with self._http().stream("GET", url, headers=headers, timeout=timeout) as response:
            yield _HttpxReply(response)

    async def aclose(self) -> None:
        self.closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)  # every download waited for its own file work
