"""`Verbex` and `AsyncVerbex`: options, the connection pool, and resources."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

import httpx

from ._config import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ClientOptions, resolve_options
from ._exceptions import VerbexError
from ._logging import install_redaction, setup_from_env
from ._models import APIResponse
from ._network import NetworkSettings, Verify, check_proxy, check_verify
from ._operations import call_result, operation_for
from ._recordings import AsyncRecordings, Recordings
from ._transport import AsyncTransport, SyncTransport
from ._validation import check_bool

if TYPE_CHECKING:
    import verbex_api
    from verbex_api.types import Response

    from ._storage import AsyncStorage, SyncStorage

T = TypeVar("T")

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


class _Shared:
    """What a client and its `with_options` copies share besides the API pool: the network
    settings and the storage pools (made on first use, closed by the client that made them)."""

    def __init__(self, network: NetworkSettings, allow_insecure_storage: bool) -> None:
        self.network = network
        self.allow_insecure_storage = allow_insecure_storage
        self.sync_storage: SyncStorage | None = None
        self.async_storage: AsyncStorage | None = None

    def sync(self) -> SyncStorage:
        """The sync storage pools, made on first use (urllib3 loads only then)."""
        if self.sync_storage is None:
            from ._config import POOL_SIZE, USER_AGENT
            from ._storage import SyncStorage

            self.sync_storage = SyncStorage(self.network, USER_AGENT, POOL_SIZE)
        return self.sync_storage

    def async_(self) -> AsyncStorage:
        """The async storage pool, made on first use."""
        if self.async_storage is None:
            from ._config import DEFAULT_LIMITS, USER_AGENT
            from ._storage import AsyncStorage

            self.async_storage = AsyncStorage(self.network, USER_AGENT, DEFAULT_LIMITS)
        return self.async_storage

    @classmethod
    def of(cls, verify: object, proxy: object, trust_env: object, allow_insecure_storage: object) -> _Shared:
        """From the constructor's arguments, checked."""
        network = NetworkSettings(
            check_verify(verify), check_proxy(proxy), check_bool("trust_env", trust_env)
        )
        return cls(network, check_bool("allow_insecure_storage", allow_insecure_storage))


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
        if self._transport.is_closed():
            from ._errors import closed_error

            raise closed_error()

    def _add_resources(self) -> None:
        raise NotImplementedError

    def with_options(self, **overrides: Any) -> Self:
        """A copy with some options changed, sharing this client's connection pool."""
        copy = object.__new__(type(self))
        copy._setup(self._transport.derive(_overridden(self._options, overrides)), self._shared)
        copy._owns_shared = False  # closing a copy leaves the storage pools it shares open
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

    @functools.cached_property
    def api(self) -> verbex_api.AuthenticatedClient:
        """The generated low-level client; every operation through it goes through our transport.

        So `op.sync_detailed(client=client.api, ...)` (or `asyncio_detailed` with AsyncVerbex)
        gets this client's key, retries, timeouts and named exceptions for any status >= 400.
        Its `token` is a placeholder: the key is added per request by the transport.
        """
        return self._transport.generated_client(strict=False)

    @functools.cached_property
    def _strict_api(self) -> verbex_api.AuthenticatedClient:
        # client.call's own (raising on undocumented statuses), which users cannot reconfigure.
        return self._transport.generated_client(strict=True)

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
        shared = _Shared.of(verify, proxy, trust_env, allow_insecure_storage)
        self._setup(SyncTransport(options, http_client, network=shared.network), shared)

    def _add_resources(self) -> None:
        self.recordings = Recordings(self)

    def _storage_sync(self) -> SyncStorage:
        self._check_open()
        return self._shared.sync()

    @overload
    def call(self, operation: Callable[..., Response[T]], /, **arguments: Any) -> T: ...
    @overload
    def call(self, operation: ModuleType, /, **arguments: Any) -> Any: ...
    def call(self, operation: Callable[..., Response[Any]] | ModuleType, /, **arguments: Any) -> Any:
        """Run any generated operation through this client; returns its parsed 2xx model.

            from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
            model = client.call(op.sync_detailed, body=CallRecordingRequest(call_id="c1"))

        `operation` is the operation's module or its `sync_detailed`. Errors are our named
        exceptions; a 2xx the generated parser cannot read is `APIResponseValidationError`.
        """
        return self._call(operation, arguments).parsed

    def _call(self, operation: object, arguments: dict[str, Any]) -> APIResponse[Any]:
        op, api = operation_for(operation, is_async=False), self._strict_api
        response, parsed, failure = None, None, None
        try:
            response = api.get_httpx_client().request(**op.request(arguments))
            parsed = op.parse(client=api, response=response)
        except VerbexError:
            raise
        except Exception as error:  # the generated parser's KeyError/TypeError/ValueError, ...
            failure = error
        return call_result(self._transport, parsed, failure, response)

    def close(self) -> None:
        """Close the connection pool (a client passed in as `http_client` is left open).

        Any later call raises ClientClosedError (so do `with_options` copies of this client).
        """
        if self._owns_shared and self._shared.sync_storage is not None:
            self._shared.sync_storage.close()
        self._transport.close()

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
        shared = _Shared.of(verify, proxy, trust_env, allow_insecure_storage)
        self._setup(AsyncTransport(options, http_client, network=shared.network), shared)

    def _add_resources(self) -> None:
        self.recordings = AsyncRecordings(self)

    def _storage_async(self) -> AsyncStorage:
        self._check_open()
        return self._shared.async_()

    def _sync_twin(self) -> Verbex:
        """A `Verbex` with this client's options, network settings and time hooks, and pools of
        its own (close it): for sync work run on a thread, such as an object-store batch. An
        `http_client` given to this client is not used by it."""
        twin = object.__new__(Verbex)
        shared = _Shared(self._shared.network, self._shared.allow_insecure_storage)
        twin._setup(SyncTransport(self._options, None, self._transport.hooks, network=shared.network), shared)
        return twin

    @overload
    async def call(self, operation: Callable[..., Awaitable[Response[T]]], /, **arguments: Any) -> T: ...
    @overload
    async def call(self, operation: ModuleType, /, **arguments: Any) -> Any: ...
    async def call(
        self, operation: Callable[..., Awaitable[Response[Any]]] | ModuleType, /, **arguments: Any
    ) -> Any:
        """Async twin of `Verbex.call`: `operation` is the module or its `asyncio_detailed`."""
        return (await self._call(operation, arguments)).parsed

    async def _call(self, operation: object, arguments: dict[str, Any]) -> APIResponse[Any]:
        op, api = operation_for(operation, is_async=True), self._strict_api
        response, parsed, failure = None, None, None
        try:
            response = await api.get_async_httpx_client().request(**op.request(arguments))
            parsed = op.parse(client=api, response=response)
        except VerbexError:
            raise
        except Exception as error:  # the generated parser's KeyError/TypeError/ValueError, ...
            failure = error
        return call_result(self._transport, parsed, failure, response)

    async def aclose(self) -> None:
        """Close the connection pool (a client passed in as `http_client` is left open).

        Any later call raises ClientClosedError (so do `with_options` copies of this client).
        """
        if self._owns_shared and self._shared.async_storage is not None:
            await self._shared.async_storage.aclose()
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
