"""`Verbex` and `AsyncVerbex`: options, the connection pool, and resources."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import httpx

from ._config import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ClientOptions, resolve_options
from ._logging import install_redaction, setup_from_env
from ._network import NetworkSettings, Verify, check_proxy, check_verify
from ._recordings import AsyncRecordings, Recordings
from ._transport import AsyncTransport, SyncTransport
from ._validation import check_bool

if TYPE_CHECKING:
    import verbex_api

    from ._storage import AsyncStorage, SyncStorage

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


def _network(verify: object, proxy: object, trust_env: object) -> NetworkSettings:
    return NetworkSettings(check_verify(verify), check_proxy(proxy), check_bool("trust_env", trust_env))


class _Shared:
    """What a client and its `with_options` copies share: network settings and storage pools."""

    def __init__(self, network: NetworkSettings, allow_insecure_storage: bool) -> None:
        self.network = network
        self.allow_insecure_storage = allow_insecure_storage
        self.sync_storage: SyncStorage | None = None
        self.async_storage: AsyncStorage | None = None
        self.closed = False


TransportT = TypeVar("TransportT", SyncTransport, AsyncTransport)


class _ClientBase(Generic[TransportT]):
    _options: ClientOptions
    _transport: TransportT
    _shared: _Shared

    _owns_shared = True

    def _setup(self, transport: TransportT, shared: _Shared) -> None:
        self._transport = transport
        self._options = transport.options
        self._shared = shared
        self._add_resources()

    @property
    def _allow_insecure_storage(self) -> bool:
        return self._shared.allow_insecure_storage

    def _check_open(self) -> None:
        if self._shared.closed:
            from ._exceptions import ClientClosedError

            raise ClientClosedError(f"this {type(self).__name__} is closed; create a new client")

    def _add_resources(self) -> None:
        raise NotImplementedError

    def with_options(self, **overrides: Any) -> Self:
        """A copy with some options changed, sharing this client's connection pool."""
        copy = object.__new__(type(self))
        copy._setup(self._transport.derive(_overridden(self._options, overrides)), self._shared)
        copy._owns_shared = False  # closing a copy leaves the pools it shares open
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
        verify: Verify = True,
        proxy: str | None = None,
        trust_env: bool = True,
        allow_insecure_storage: bool = False,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(f"http_client must be an httpx.Client, not {type(http_client).__name__}")
        options = _prepare(api_key, base_url, timeout, max_retries, default_headers)
        network = _network(verify, proxy, trust_env)
        shared = _Shared(network, check_bool("allow_insecure_storage", allow_insecure_storage))
        self._setup(SyncTransport(options, http_client, network=network), shared)

    def _add_resources(self) -> None:
        self.recordings = Recordings(self)

    def _storage_sync(self) -> SyncStorage:
        """The storage pools, made on first use and shared with `with_options` copies."""
        self._check_open()
        shared = self._shared
        if shared.sync_storage is None:
            from ._config import POOL_SIZE, USER_AGENT
            from ._storage import SyncStorage

            shared.sync_storage = SyncStorage(shared.network, USER_AGENT, POOL_SIZE)
        return shared.sync_storage

    @functools.cached_property
    def api(self) -> verbex_api.Client:
        """The generated low-level client, configured like this one (escape hatch)."""
        from ._transport import new_http_client

        api = self._generated_client()
        if self._transport.http_has_headers:
            return api.set_httpx_client(self._transport.http)
        self._extra_http = new_http_client(self._options, self._shared.network)
        return api.set_httpx_client(self._extra_http)

    def close(self) -> None:
        """Close the connection pools (a client passed in as `http_client` is left open)."""
        shared = self._shared
        if self._owns_shared:
            shared.closed = True
            if shared.sync_storage is not None:
                shared.sync_storage.close()
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
        verify: Verify = True,
        proxy: str | None = None,
        trust_env: bool = True,
        allow_insecure_storage: bool = False,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}")
        options = _prepare(api_key, base_url, timeout, max_retries, default_headers)
        network = _network(verify, proxy, trust_env)
        shared = _Shared(network, check_bool("allow_insecure_storage", allow_insecure_storage))
        self._setup(AsyncTransport(options, http_client, network=network), shared)

    def _add_resources(self) -> None:
        self.recordings = AsyncRecordings(self)

    def _storage_async(self) -> AsyncStorage:
        """The storage pool, made on first use and shared with `with_options` copies."""
        self._check_open()
        shared = self._shared
        if shared.async_storage is None:
            from ._config import DEFAULT_LIMITS, USER_AGENT
            from ._storage import AsyncStorage

            shared.async_storage = AsyncStorage(shared.network, USER_AGENT, DEFAULT_LIMITS)
        return shared.async_storage

    @functools.cached_property
    def api(self) -> verbex_api.Client:
        """The generated low-level client, configured like this one (escape hatch)."""
        from ._transport import new_async_http_client

        api = self._generated_client()
        if self._transport.http_has_headers:
            return api.set_async_httpx_client(self._transport.http)
        self._extra_http = new_async_http_client(self._options, self._shared.network)
        return api.set_async_httpx_client(self._extra_http)

    async def aclose(self) -> None:
        """Close the connection pools (a client passed in as `http_client` is left open)."""
        shared = self._shared
        if self._owns_shared:
            shared.closed = True
            if shared.async_storage is not None:
                await shared.async_storage.aclose()
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
