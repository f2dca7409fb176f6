"""Sending API requests: one request path that every operation goes through.

`RetryingTransport` / `AsyncRetryingTransport` are httpx transports in front of
the API's connection pool. Every request made through the client's httpx
clients (the recordings resource, `client.call`, and any generated operation
through `client.api`, today's or a regeneration's) gets the same
authorisation, retries with backoff (Retry-After honoured), error mapping to
our named exceptions and debug logging, with no code per operation.

`_Attempts` holds every decision (retry or not, how long to wait, what to
log, which exception to raise), so the sync and async loops stay a few lines
of I/O each and cannot drift apart. Exceptions are raised outside `except`
blocks, so none carries an httpx error (whose text may quote the key) as its
`__context__`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self

import httpx

from . import _exceptions as exc
from ._config import USER_AGENT, ClientOptions
from ._errors import closed_error, request_secrets, send_error
from ._logging import logger
from ._parsing import invalid_reply, status_error
from ._retries import backoff_delay, is_retryable_status, parse_retry_after

if TYPE_CHECKING:
    import asyncio

    import verbex_api

    from ._network import NetworkSettings


# What the generated client's `token` holds: the key itself is added by our transport, so the
# generated client (whose repr shows every field) never holds it.
TOKEN_PLACEHOLDER = "(added by verbex_client's transport)"

Outcome = float | Exception | None  # retry after that many seconds / raise this / hand the response back
Attempted = httpx.Response | float | Exception  # the reply to hand back, or what to do instead


class Hooks:
    """Injectable time sources, so retry tests run without really sleeping."""

    __slots__ = ("async_sleep", "jitter", "monotonic", "sleep", "wall_clock")

    def __init__(self) -> None:
        import asyncio

        self.sleep: Callable[[float], None] = time.sleep
        self.async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall_clock: Callable[[], float] = time.time
        self.jitter: Callable[[], float] = random.random


class _Attempts:
    """The attempts of one logical request: every decision, no I/O."""

    __slots__ = ("owner", "request", "retries_done", "started")

    def __init__(self, request: httpx.Request, owner: _BaseTransport) -> None:
        self.request, self.owner = request, owner
        self.retries_done = 0
        self.started = 0.0

    def begin(self) -> Exception | None:
        """Start an attempt; a closed client's error instead, if it was closed meanwhile."""
        self.started = self.owner.hooks.monotonic()
        return closed_error() if self.owner.is_closed() else None

    def _elapsed_ms(self) -> float:
        return (self.owner.hooks.monotonic() - self.started) * 1000.0

    def _log(self, outcome: str) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                self.request.method,
                self.request.url.path,
                outcome,
                self._elapsed_ms(),
                self.retries_done + 1,
            )

    def after_response(self, response: httpx.Response) -> Outcome:
        """None to hand a < 400 reply back, else a delay before retrying, or the status's exception."""
        status = response.status_code
        self._log(str(status))
        if status < 400:
            return None
        hint = parse_retry_after(response.headers, self.owner.hooks.wall_clock())
        if is_retryable_status(status) and self.retries_done < self.owner.options.max_retries:
            return self._schedule(f"status {status}", hint)
        return self.owner.status_error(response, retry_after=hint)

    def after_read_error(self, error: Exception, response: httpx.Response) -> float | Exception:
        """The body failed to arrive (a network fault: retry) or to decode (judged without it)."""
        if not isinstance(error, httpx.DecodingError):
            return self.after_error(error)
        self._log(f"{response.status_code} with an undecodable body")
        if response.status_code < 400:
            return invalid_reply(response, "the body cannot be decoded (DecodingError)")
        if is_retryable_status(response.status_code) and self.retries_done < self.owner.options.max_retries:
            return self._schedule(f"status {response.status_code}", None)
        return self.owner.status_error(response, retry_after=None, content=b"")

    def after_error(self, error: Exception) -> float | Exception:
        """A delay before retrying a network fault, or our exception for the failure."""
        if self.owner.is_closed():  # closed while in flight: the pool's own error means that
            return closed_error()
        mapped, retryable = send_error(error, self.request, self.owner.options.api_key)
        self._log(type(error).__name__)
        if not retryable or self.retries_done >= self.owner.options.max_retries:
            return mapped
        return self._schedule(mapped.message, None)

    def _schedule(self, reason: str, hint: float | None) -> float:
        delay = backoff_delay(self.retries_done, hint, jitter=self.owner.hooks.jitter)
        self.retries_done += 1
        logger.info(
            "%s %s: %s; retry %d of %d in %.2f s",
            self.request.method,
            self.request.url.path,
            reason,
            self.retries_done,
            self.owner.options.max_retries,
            delay,
        )
        return delay


class _PoolState:
    """Shared by a client and its `with_options` copies: closing the owner closes them all."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False


class _BaseTransport:
    # The API's connection pool: the user's http_client, or ours (a bare httpx transport, one
    # client layer less per request, unless proxies apply: then a client, which reads them).
    pool: httpx.Client | httpx.HTTPTransport | httpx.AsyncClient | httpx.AsyncHTTPTransport

    def __init__(self, options: ClientOptions, *, owns_http: bool, hooks: Hooks) -> None:
        self.options = options
        self.owns_http = owns_http
        self.hooks = hooks
        self.pool_state = _PoolState()
        self.closed = False

    def _sharing_pool_of(self, parent: _BaseTransport) -> Self:
        self.pool_state = parent.pool_state
        return self

    # -- the API request path ---------------------------------------------------------------

    def is_closed(self) -> bool:
        pool = self.pool
        user_closed = isinstance(pool, httpx.Client | httpx.AsyncClient) and pool.is_closed
        return self.closed or self.pool_state.closed or user_closed

    def prepare(self, request: httpx.Request) -> _Attempts:
        """Authorise `request` (whichever httpx client built it) and start its attempts."""
        headers = request.headers
        headers["Authorization"] = self.options.authorization
        if headers.get("User-Agent", "").startswith("python-httpx/"):
            # Built by an httpx client the generated code made itself (client.api.with_headers()
            # and the like): ours carry the user agent and default headers, so add them here.
            headers["User-Agent"] = USER_AGENT
            for name, value in self.options.default_headers.items():
                if name not in headers:
                    headers[name] = value
        pool = self.pool
        if isinstance(pool, httpx.Client | httpx.AsyncClient):  # a user's http_client: its headers too
            for name, value in pool.headers.items():
                if name not in headers:
                    headers[name] = value
        return _Attempts(request, self)

    def status_error(
        self, response: httpx.Response, *, retry_after: float | None, content: bytes | None = None
    ) -> exc.APIStatusError:
        """The exception for a final error reply, with the operation's own meaning of its status."""
        from ._recordings import operation_errors  # only on errors: the happy path never loads it

        request = response.request
        path = request.url.path
        base_path = self.options.base_path
        key = (request.method, path[len(base_path) :] if path.startswith(base_path) else path)
        return status_error(
            response,
            secrets=request_secrets(request, self.options.api_key),
            retry_after=retry_after,
            content=content,
            meanings=operation_errors().get(key),
            base_url=self.options.base_url,
        )

    def _api_client_args(self, transport: httpx.BaseTransport | httpx.AsyncBaseTransport) -> dict[str, Any]:
        # trust_env=False: proxies from the environment are the pool's business (its own
        # httpx client reads them); mounted here they would bypass our transport.
        return {
            "base_url": self.options.base_url,
            "headers": self.options.headers,
            "timeout": self.options.timeout,
            "transport": transport,
            "trust_env": False,
        }

    def _generated(
        self, transport: httpx.BaseTransport | httpx.AsyncBaseTransport, *, strict: bool
    ) -> verbex_api.AuthenticatedClient:
        """A generated client whose requests all go through `transport` (copies it makes too)."""
        import verbex_api

        return verbex_api.AuthenticatedClient(
            base_url=self.options.base_url,
            token=TOKEN_PLACEHOLDER,
            timeout=self.options.timeout,
            httpx_args={"transport": transport, "trust_env": False},
            raise_on_unexpected_status=strict,
        )


class RetryingTransport(httpx.BaseTransport):
    """The httpx transport of every API request (sync): auth, retries, error mapping."""

    def __init__(self, owner: SyncTransport) -> None:
        self._owner = owner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempts = self._owner.prepare(request)
        while True:
            outcome = self._attempt(request, attempts)
            if isinstance(outcome, httpx.Response):
                return outcome
            if isinstance(outcome, Exception):
                raise outcome
            self._owner.hooks.sleep(outcome)

    def _attempt(self, request: httpx.Request, attempts: _Attempts) -> Attempted:
        closed = attempts.begin()
        if closed is not None:
            return closed
        try:
            pool = self._owner.pool
            if isinstance(pool, httpx.Client):
                response = pool.send(request, stream=True)
            else:
                response = pool.handle_request(request)
                response.request = request
        except Exception as error:  # the boundary: everything becomes ours
            return attempts.after_error(error)
        try:
            response.read()  # inside the boundary: a broken body or a read timeout is ours too
        except Exception as error:
            response.close()
            return attempts.after_read_error(error, response)
        except BaseException:  # Ctrl-C: give the connection back before leaving
            response.close()
            raise
        outcome = attempts.after_response(response)
        return response if outcome is None else outcome

    def close(self) -> None:
        """Nothing: the pool belongs to the Verbex client, which closes it (httpx clients call this)."""


class AsyncRetryingTransport(httpx.AsyncBaseTransport):
    """Async twin of RetryingTransport; requests past the pool size wait on the client's gate."""

    def __init__(self, owner: AsyncTransport) -> None:
        self._owner = owner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempts = self._owner.prepare(request)
        while True:
            outcome = await self._attempt(request, attempts)
            if isinstance(outcome, httpx.Response):
                return outcome
            if isinstance(outcome, Exception):
                raise outcome
            await self._owner.hooks.async_sleep(outcome)

    async def _attempt(self, request: httpx.Request, attempts: _Attempts) -> Attempted:
        closed = attempts.begin()
        if closed is not None:
            return closed
        gate = self._owner.gate
        if gate is not None:
            waited_too_long = await self._enter(gate)
            if waited_too_long is not None:
                return attempts.after_error(waited_too_long)
        try:
            try:
                pool = self._owner.pool
                if isinstance(pool, httpx.AsyncClient):
                    response = await pool.send(request, stream=True)
                else:
                    response = await pool.handle_async_request(request)
                    response.request = request
            except Exception as error:  # the boundary: everything becomes ours
                return attempts.after_error(error)
            try:
                await response.aread()
            except Exception as error:
                await response.aclose()
                return attempts.after_read_error(error, response)
            except BaseException:  # cancelled: give the connection back before leaving
                await response.aclose()
                raise
        finally:
            if gate is not None:
                gate.release()
        outcome = attempts.after_response(response)
        return response if outcome is None else outcome

    async def _enter(self, gate: asyncio.Semaphore) -> httpx.PoolTimeout | None:
        """Acquire the gate; waiting stands for waiting on the pool, so its timeout bounds it."""
        if not gate.locked():
            await gate.acquire()
            return None
        import asyncio

        try:
            async with asyncio.timeout(self._owner.options.timeout.pool):
                await gate.acquire()
        except TimeoutError:
            return httpx.PoolTimeout("no connection free within the pool timeout")
        return None

    async def aclose(self) -> None:
        """Nothing: the pool belongs to the AsyncVerbex client, which closes it."""


def _proxied() -> bool:
    """Whether the environment (or the OS settings) names a proxy: httpx clients honour those."""
    import urllib.request

    return bool(urllib.request.getproxies())


def new_pool(options: ClientOptions, network: NetworkSettings) -> httpx.Client | httpx.HTTPTransport:
    """Our API connection pool (no headers: every request arrives built and authorised)."""
    from ._config import DEFAULT_LIMITS

    if network.proxy is None and network.trust_env and _proxied():
        return httpx.Client(timeout=options.timeout, verify=network.ssl_context(), limits=DEFAULT_LIMITS)
    return httpx.HTTPTransport(verify=network.ssl_context(), proxy=network.proxy, limits=DEFAULT_LIMITS)


def new_async_pool(
    options: ClientOptions, network: NetworkSettings
) -> httpx.AsyncClient | httpx.AsyncHTTPTransport:
    from ._config import DEFAULT_LIMITS

    if network.proxy is None and network.trust_env and _proxied():
        return httpx.AsyncClient(timeout=options.timeout, verify=network.ssl_context(), limits=DEFAULT_LIMITS)
    return httpx.AsyncHTTPTransport(verify=network.ssl_context(), proxy=network.proxy, limits=DEFAULT_LIMITS)


class SyncTransport(_BaseTransport):
    pool: httpx.Client | httpx.HTTPTransport

    def __init__(
        self,
        options: ClientOptions,
        http: httpx.Client | None,
        hooks: Hooks | None = None,
        *,
        pool: httpx.Client | httpx.HTTPTransport | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        from ._network import NetworkSettings

        shared = pool or http
        super().__init__(options, owns_http=shared is None, hooks=hooks or Hooks())
        self.pool = shared or new_pool(options, network or NetworkSettings())
        self.retrying = RetryingTransport(self)
        # What the recordings resource and client.call send through; client.api has its own
        # (a user may change its headers or timeout) over the same transport.
        self.api_http = httpx.Client(**self._api_client_args(self.retrying))

    def derive(self, options: ClientOptions) -> SyncTransport:
        """A transport for other options over the same connection pool (not owning it)."""
        return SyncTransport(options, None, self.hooks, pool=self.pool)._sharing_pool_of(self)

    def generated_client(self, *, strict: bool) -> verbex_api.AuthenticatedClient:
        http = self.api_http if strict else httpx.Client(**self._api_client_args(self.retrying))
        return self._generated(self.retrying, strict=strict).set_httpx_client(http)

    def close(self) -> None:
        self.closed = True
        if self.owns_http:
            self.pool_state.closed = True
            self.pool.close()


class AsyncTransport(_BaseTransport):
    pool: httpx.AsyncClient | httpx.AsyncHTTPTransport

    def __init__(
        self,
        options: ClientOptions,
        http: httpx.AsyncClient | None,
        hooks: Hooks | None = None,
        *,
        pool: httpx.AsyncClient | httpx.AsyncHTTPTransport | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        from ._network import NetworkSettings

        shared = pool or http
        super().__init__(options, owns_http=shared is None, hooks=hooks or Hooks())
        self.pool = shared or new_async_pool(options, network or NetworkSettings())
        # In front of our own pool, requests past its size wait on a semaphore
        # instead of in httpcore's queue, which rescans every waiting request
        # against every connection at each event: at 50 tasks on 20 connections
        # that was ~15% of each call's CPU. A user's client is left as configured.
        self.gate: asyncio.Semaphore | None = None
        if http is None:
            import asyncio

            from ._config import POOL_SIZE

            self.gate = asyncio.Semaphore(POOL_SIZE)
        self.retrying = AsyncRetryingTransport(self)
        self.api_http = httpx.AsyncClient(**self._api_client_args(self.retrying))

    def derive(self, options: ClientOptions) -> AsyncTransport:
        """A transport for other options over the same connection pool (not owning it)."""
        derived = AsyncTransport(options, None, self.hooks, pool=self.pool)._sharing_pool_of(self)
        derived.gate = self.gate  # the pool is shared, so is its gate
        return derived

    def generated_client(self, *, strict: bool) -> verbex_api.AuthenticatedClient:
        http = self.api_http if strict else httpx.AsyncClient(**self._api_client_args(self.retrying))
        return self._generated(self.retrying, strict=strict).set_async_httpx_client(http)

    async def aclose(self) -> None:
        self.closed = True
        if self.owns_http:
            self.pool_state.closed = True
            await self.pool.aclose()
