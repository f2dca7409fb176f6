"""`Verbex` and `AsyncVerbex`: options, the connection pool, and resources."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import httpx

from ._config import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ClientOptions, resolve_options
from ._logging import install_redaction, setup_from_env
from ._recordings import AsyncRecordings, Recordings
from ._transport import AsyncTransport, SyncTransport

if TYPE_CHECKING:
    import verbex_api

_OVERRIDABLE = frozenset({"api_key", "base_url", "timeout", "max_retries", "default_headers"})


def _overridden(options: ClientOptions, overrides: dict[str, Any]) -> ClientOptions:
    unknown = set(overrides) - _OVERRIDABLE
    if unknown:
        raise TypeError(f"with_options() got unexpected option(s): {', '.join(sorted(unknown))}")
    merged: dict[str, Any] = {
        "api_key": options.api_key,
        "base_url": options.base_url,
        "timeout": options.timeout,
        "max_retries": options.max_retries,
        "default_headers": options.default_headers,
    }
    merged.update(overrides)
    return resolve_options(**merged)


def _prepare(
    api_key: str | None,
    base_url: str | None,
    timeout: float | httpx.Timeout,
    max_retries: int,
    default_headers: Mapping[str, str] | None,
) -> ClientOptions:
    options = resolve_options(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        default_headers=default_headers,
    )
    setup_from_env()
    install_redaction()
    return options


TransportT = TypeVar("TransportT", SyncTransport, AsyncTransport)


class _ClientBase(Generic[TransportT]):
    _options: ClientOptions
    _transport: TransportT

    def _setup(self, transport: TransportT) -> None:
        self._transport = transport
        self._options = transport.options
        self._add_resources()

    def _add_resources(self) -> None:
        raise NotImplementedError

    def with_options(self, **overrides: Any) -> Self:
        """A copy with some options changed, sharing this client's connection pool."""
        copy = object.__new__(type(self))
        copy._setup(self._transport.derive(_overridden(self._options, overrides)))
        return copy

    @property
    def base_url(self) -> str:
        return self._options.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return self._options.timeout

    @property
    def max_retries(self) -> int:
        return self._options.max_retries

    def _generated_client(self) -> verbex_api.Client:
        import verbex_api

        # The plain Client, not AuthenticatedClient (whose repr shows the token):
        # the credentials live in the httpx client's headers instead.
        return verbex_api.Client(base_url=self._options.base_url, timeout=self._options.timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._options.base_url!r}, max_retries={self.max_retries})"


class Verbex(_ClientBase[SyncTransport]):
    """Synchronous client. `Verbex()` reads `VERBEX_API_KEY` and `VERBEX_BASE_URL`.

    Use as a context manager, or call `close()`, to release connections.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(f"http_client must be an httpx.Client, not {type(http_client).__name__}")
        options = _prepare(api_key, base_url, timeout, max_retries, default_headers)
        self._setup(SyncTransport(options, http_client))

    def _add_resources(self) -> None:
        self.recordings = Recordings(self)

    @functools.cached_property
    def api(self) -> verbex_api.Client:
        """The generated low-level client, configured like this one (escape hatch)."""
        from ._transport import new_http_client

        api = self._generated_client()
        if self._transport.http_has_headers:
            return api.set_httpx_client(self._transport.http)
        self._extra_http = new_http_client(self._options)
        return api.set_httpx_client(self._extra_http)

    def close(self) -> None:
        """Close the connection pool (a client passed in as `http_client` is left open)."""
        self._transport.close()
        extra = self.__dict__.pop("_extra_http", None)
        if extra is not None:
            extra.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncVerbex(_ClientBase[AsyncTransport]):
    """Asynchronous client with the same options as `Verbex`; use `async with` or `aclose()`."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}")
        options = _prepare(api_key, base_url, timeout, max_retries, default_headers)
        self._setup(AsyncTransport(options, http_client))

    def _add_resources(self) -> None:
        self.recordings = AsyncRecordings(self)

    @functools.cached_property
    def api(self) -> verbex_api.Client:
        """The generated low-level client, configured like this one (escape hatch)."""
        from ._transport import new_async_http_client

        api = self._generated_client()
        if self._transport.http_has_headers:
            return api.set_async_httpx_client(self._transport.http)
        self._extra_http = new_async_http_client(self._options)
        return api.set_async_httpx_client(self._extra_http)

    async def aclose(self) -> None:
        """Close the connection pool (a client passed in as `http_client` is left open)."""
        await self._transport.aclose()
        extra = self.__dict__.pop("_extra_http", None)
        if extra is not None:
            await extra.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
