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
from ._operations import call_result, operation_function
from ._recordings import AsyncRecordings, Recordings
from ._transport import AsyncTransport, SyncTransport, collect_final_responses, stop_collecting

if TYPE_CHECKING:
    import verbex_api
    from verbex_api.types import Response

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
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(f"http_client must be an httpx.Client, not {type(http_client).__name__}")
        options = _prepare(api_key, base_url, timeout, max_retries, default_headers)
        self._setup(SyncTransport(options, http_client))

    def _add_resources(self) -> None:
        self.recordings = Recordings(self)

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
        function = operation_function(operation, is_async=False)
        responses, token = collect_final_responses()
        detailed, failure = None, None
        try:
            detailed = function(client=self._strict_api, **arguments)
        except VerbexError:
            raise
        except Exception as error:  # the generated parser's KeyError/TypeError/ValueError, ...
            failure = error
        finally:
            stop_collecting(token)
        return call_result(self._transport, detailed, failure, responses)

    def close(self) -> None:
        """Close the connection pool (a client passed in as `http_client` is left open).

        Any later call raises ClientClosedError (so do `with_options` copies of this client).
        """
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
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}")
        options = _prepare(api_key, base_url, timeout, max_retries, default_headers)
        self._setup(AsyncTransport(options, http_client))

    def _add_resources(self) -> None:
        self.recordings = AsyncRecordings(self)

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
        function = operation_function(operation, is_async=True)
        responses, token = collect_final_responses()
        detailed, failure = None, None
        try:
            detailed = await function(client=self._strict_api, **arguments)
        except VerbexError:
            raise
        except Exception as error:  # the generated parser's KeyError/TypeError/ValueError, ...
            failure = error
        finally:
            stop_collecting(token)
        return call_result(self._transport, detailed, failure, responses)

    async def aclose(self) -> None:
        """Close the connection pool (a client passed in as `http_client` is left open).

        Any later call raises ClientClosedError (so do `with_options` copies of this client).
        """
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
