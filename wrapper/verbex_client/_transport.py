"""Sending API requests: one retry policy, a sync and an async loop around it.

`_Attempts` holds every decision (retry or not, how long to wait, what to
log, which exception to raise), so the two loops below stay a few lines of
I/O each and cannot drift apart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self

import httpx

from . import _exceptions as exc
from ._config import ClientOptions
from ._logging import logger
from ._retries import backoff_delay, is_retryable_status, parse_retry_after

if TYPE_CHECKING:
    import asyncio

    from ._network import NetworkSettings


def connection_error(error: httpx.TransportError) -> exc.APIConnectionError:
    """Our exception for an httpx transport failure; its text names the failure kind only."""
    if isinstance(error, httpx.TimeoutException):
        return exc.APITimeoutError(f"request timed out ({type(error).__name__})")
    return exc.APIConnectionError(f"connection failed ({type(error).__name__})")


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
    """The attempts of one logical request."""

    __slots__ = ("hooks", "max_retries", "method", "path", "retries_done", "started")

    def __init__(self, method: str, path: str, max_retries: int, hooks: Hooks) -> None:
        self.method, self.path, self.max_retries, self.hooks = method, path, max_retries, hooks
        self.retries_done = 0
        self.started = 0.0

    def begin(self) -> None:
        self.started = self.hooks.monotonic()

    def _elapsed_ms(self) -> float:
        return (self.hooks.monotonic() - self.started) * 1000.0

    def after_response(self, response: httpx.Response) -> float | None:
        """Delay before retrying this response, or None to hand it back."""
        status = response.status_code
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.1f ms (attempt %d)",
                self.method,
                self.path,
                status,
                self._elapsed_ms(),
                self.retries_done + 1,
            )
        if status < 400 or not is_retryable_status(status) or self.retries_done >= self.max_retries:
            return None
        hint = parse_retry_after(response.headers, self.hooks.wall_clock())
        return self._schedule(f"status {status}", hint)

    def after_error(self, error: httpx.TransportError) -> float:
        """Delay before retrying after a transport failure; raises ours when out of retries."""
        mapped = connection_error(error)
        logger.debug(
            "%s %s -> %s after %.1f ms (attempt %d)",
            self.method,
            self.path,
            type(error).__name__,
            self._elapsed_ms(),
            self.retries_done + 1,
        )
        if self.retries_done >= self.max_retries:
            raise mapped from error
        return self._schedule(mapped.message, None)

    def _schedule(self, reason: str, hint: float | None) -> float:
        delay = backoff_delay(self.retries_done, hint, jitter=self.hooks.jitter)
        self.retries_done += 1
        logger.info(
            "%s %s: %s; retry %d of %d in %.2f s",
            self.method,
            self.path,
            reason,
            self.retries_done,
            self.max_retries,
            delay,
        )
        return delay


class _BaseTransport:
    def __init__(
        self, options: ClientOptions, *, owns_http: bool, http_has_headers: bool, hooks: Hooks
    ) -> None:
        self.options = options
        self.owns_http = owns_http
        self.http_has_headers = http_has_headers
        self.hooks = hooks
        # Our own httpx client is built with the API headers, so requests need
        # none of their own; a user's client (or a with_options copy with other
        # credentials sharing our pool) gets them per request instead.
        self.request_headers: dict[str, str] | None = None if http_has_headers else options.headers
        # Parsed once per path: httpx would parse the URL string again on every request.
        self._urls: dict[str, httpx.URL] = {}

    def _sharing_pool_of(self, parent: _BaseTransport) -> Self:
        # The shared httpx client carries the parent's headers; ours need sending
        # per request unless they are the same.
        self.http_has_headers = parent.http_has_headers and self.options.headers == parent.options.headers
        self.request_headers = None if self.http_has_headers else self.options.headers
        return self

    def _request_args(self, method: str, path: str, body: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "method": method,
            "url": self._urls.get(path)
            or self._urls.setdefault(path, httpx.URL(self.options.base_url + path)),
            "json": body,
            "timeout": self.options.timeout,
        }
        if self.request_headers is not None:
            args["headers"] = self.request_headers
        return args


def _pool_options(network: NetworkSettings) -> dict[str, Any]:
    from ._config import DEFAULT_LIMITS

    return {
        "limits": DEFAULT_LIMITS,
        "verify": network.ssl_context(),
        "proxy": network.proxy,
        "trust_env": network.trust_env,
    }


def new_http_client(options: ClientOptions, network: NetworkSettings) -> httpx.Client:
    return httpx.Client(
        base_url=options.base_url, headers=options.headers, timeout=options.timeout, **_pool_options(network)
    )


def new_async_http_client(options: ClientOptions, network: NetworkSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=options.base_url, headers=options.headers, timeout=options.timeout, **_pool_options(network)
    )


class SyncTransport(_BaseTransport):
    def __init__(
        self,
        options: ClientOptions,
        http: httpx.Client | None,
        hooks: Hooks | None = None,
        *,
        network: NetworkSettings | None = None,
    ) -> None:
        super().__init__(
            options, owns_http=http is None, http_has_headers=http is None, hooks=hooks or Hooks()
        )
        if http is None:
            from ._network import NetworkSettings

            http = new_http_client(options, network or NetworkSettings())
        self.http = http

    def derive(self, options: ClientOptions) -> SyncTransport:
        """A transport for other options over the same connection pool (not owning it)."""
        return SyncTransport(options, self.http, self.hooks)._sharing_pool_of(self)

    def close(self) -> None:
        if self.owns_http:
            self.http.close()

    def request(self, method: str, path: str, body: Any) -> httpx.Response:
        """Send with retries; returns the final response (any status) or raises APIConnectionError."""
        args = self._request_args(method, path, body)
        attempts = _Attempts(method, path, self.options.max_retries, self.hooks)
        while True:
            attempts.begin()
            try:
                response = self.http.request(**args)
            except httpx.TransportError as error:
                delay = attempts.after_error(error)
            else:
                retry_in = attempts.after_response(response)
                if retry_in is None:
                    return response
                delay = retry_in
                response.close()
            self.hooks.sleep(delay)


class AsyncTransport(_BaseTransport):
    def __init__(
        self,
        options: ClientOptions,
        http: httpx.AsyncClient | None,
        hooks: Hooks | None = None,
        *,
        network: NetworkSettings | None = None,
    ) -> None:
        super().__init__(
            options, owns_http=http is None, http_has_headers=http is None, hooks=hooks or Hooks()
        )
        own = http is None
        if http is None:
            from ._network import NetworkSettings

            http = new_async_http_client(options, network or NetworkSettings())
        self.http = http
        # In front of our own pool, requests past its size wait on a semaphore
        # instead of in httpcore's queue, which rescans every waiting request
        # against every connection at each event: at 50 tasks on 20 connections
        # that was ~15% of each call's CPU. A user's client is left as configured.
        self.gate: asyncio.Semaphore | None = None
        if own:
            import asyncio

            from ._config import POOL_SIZE

            self.gate = asyncio.Semaphore(POOL_SIZE)

    def derive(self, options: ClientOptions) -> AsyncTransport:
        """A transport for other options over the same connection pool (not owning it)."""
        derived = AsyncTransport(options, self.http, self.hooks)._sharing_pool_of(self)
        derived.gate = self.gate  # the pool is shared, so is its gate
        return derived

    async def aclose(self) -> None:
        if self.owns_http:
            await self.http.aclose()

    async def request(self, method: str, path: str, body: Any) -> httpx.Response:
        """Async twin of SyncTransport.request."""
        args = self._request_args(method, path, body)
        attempts = _Attempts(method, path, self.options.max_retries, self.hooks)
        while True:
            attempts.begin()
            try:
                response = await self._send(args)
            except httpx.TransportError as error:
                delay = attempts.after_error(error)
            else:
                retry_in = attempts.after_response(response)
                if retry_in is None:
                    return response
                delay = retry_in
                await response.aclose()
            await self.hooks.async_sleep(delay)

    async def _send(self, args: dict[str, Any]) -> httpx.Response:
        """One attempt, through the gate when the pool is ours (the whole body is read inside)."""
        gate = self.gate
        if gate is None:
            return await self.http.request(**args)
        if gate.locked():
            import asyncio

            # Waiting here stands for waiting on the pool, so httpx's pool timeout bounds it.
            try:
                async with asyncio.timeout(self.options.timeout.pool):
                    await gate.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection free within the pool timeout") from None
        else:
            await gate.acquire()
        try:
            return await self.http.request(**args)
        finally:
            gate.release()
