"""`client.call(operation, **arguments)`: any generated operation, its parsed model, or our exception.

The operation's request goes through the client's transport (auth, retries,
named exceptions for every status); what is left here is the 2xx side: the
generated parser raises KeyError/TypeError/ValueError on a body that does not
match the spec, and those become `APIResponseValidationError`. Shared by
`Verbex.call` and `AsyncVerbex.call`, which differ only in awaiting.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from . import _exceptions as exc
from ._errors import argument_error
from ._models import APIResponse
from ._parsing import invalid_reply
from ._redact import scrub

if TYPE_CHECKING:
    from ._transport import _BaseTransport

SYNC_FUNCTION = "sync_detailed"
ASYNC_FUNCTION = "asyncio_detailed"
_JSON_ONLY = {"Content-Type": "application/json"}
_RESOLVED: dict[tuple[object, bool], Operation] = {}  # generated operations are module-level: few


@attrs.frozen
class Operation:
    """A generated operation's two I/O-free halves: the request to send and the reply's parser.

    They are the module's `_get_kwargs` and `_parse_response`, which its `sync_detailed` and
    `asyncio_detailed` wrap (every module openapi-python-client writes has both). Sending the
    request ourselves skips the generated `Response` wrapper around each reply (benchmarks/RESULTS.md,
    per call), with the same request and the same model.
    """

    build: Callable[..., dict[str, Any]]
    parse: Callable[..., Any]
    preset: dict[str, Any] = attrs.field(factory=dict)  # a functools.partial's keywords

    def request(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """httpx `request()` arguments for these operation arguments."""
        kwargs = self.build(**({**self.preset, **arguments} if self.preset else arguments))
        if kwargs.get("headers") == _JSON_ONLY and "json" in kwargs:
            del kwargs["headers"]  # httpx sets exactly this for a json= body; merging it costs ~5 µs
        return kwargs


def operation_for(operation: object, *, is_async: bool) -> Operation:
    """The generated operation `operation` names: its module or its `sync_detailed`/`asyncio_detailed`."""
    if isinstance(operation, functools.partial):  # made per call, so never kept
        if operation.args:
            raise TypeError("a generated operation takes keyword arguments only")
        return attrs.evolve(operation_for(operation.func, is_async=is_async), preset=operation.keywords)
    key = (operation, is_async)
    try:
        return _RESOLVED[key]
    except (KeyError, TypeError):  # not seen yet, or an unhashable object (refused below)
        pass
    resolved = _resolve(operation, is_async=is_async)
    if len(_RESOLVED) < 4096:
        _RESOLVED[key] = resolved
    return resolved


def _resolve(operation: object, *, is_async: bool) -> Operation:
    name = ASYNC_FUNCTION if is_async else SYNC_FUNCTION
    if isinstance(operation, ModuleType):
        module: ModuleType | None = operation
        if not callable(getattr(operation, name, None)):  # the generator's fixed name, not a spec field
            raise TypeError(f"{operation.__name__} is not a generated operation module (no {name})")
    elif callable(operation):
        if inspect.iscoroutinefunction(operation) != is_async:
            other = "AsyncVerbex.call" if not is_async else "Verbex.call"
            raise TypeError(f"{getattr(operation, '__name__', operation)!r} needs {other} (pass {name} here)")
        module = sys.modules.get(getattr(operation, "__module__", None) or "")
    else:
        raise TypeError(f"operation must be a generated operation module or its {name}, not {operation!r}")
    build = getattr(module, "_get_kwargs", None)
    parse = getattr(module, "_parse_response", None)
    if not (callable(build) and callable(parse)):
        raise TypeError(f"{operation!r} is not a generated operation (its module has no _get_kwargs)")
    return Operation(build, parse)


_ASSIGNED = re.compile(r"\s*(\w+)\s*=")


def _failing_field(failure: Exception) -> str | None:
    """The field a generated `from_dict` was reading when it failed, from its own source line.

    The line is generated code (`expires_at = isoparse(d.pop("expires_at"))`), so this names
    the field without quoting the value, which the exception's own text might.
    """
    for frame in reversed(traceback.extract_tb(failure.__traceback__)):
        if frame.name == "from_dict" and "verbex_api" in frame.filename:
            match = _ASSIGNED.match(frame.line or "")
            return match.group(1) if match else None
    return None


def _reason(failure: Exception, response: httpx.Response) -> str:
    """What is wrong with a 2xx body, naming fields and types but never a value."""
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    if isinstance(failure, KeyError) and failure.args and isinstance(failure.args[0], str):
        return f"missing field {failure.args[0][:80]!r}"
    if not isinstance(data, dict | list):
        kind = "null" if data is None else {bool: "boolean", str: "string"}.get(type(data), "number")
        return f"unexpected JSON {kind} for this operation"
    field = _failing_field(failure)
    where = f"field {field!r}" if field else "body"
    return f"unparseable {where}: it does not match the spec's schema ({type(failure).__name__})"


def call_result(
    owner: _BaseTransport, parsed: Any, failure: Exception | None, response: httpx.Response | None
) -> APIResponse[Any]:
    """The parsed value with its httpx.Response, or the exception the outcome means (raised here).

    Called outside any `except` block, so what it raises chains to nothing.
    """
    from verbex_api.errors import UnexpectedStatus

    if response is None:  # never sent: the arguments (or the operation) were wrong
        if failure is None:
            raise TypeError("the operation did not send its request through this client")
        if isinstance(failure, TypeError):
            raise failure  # a missing or unexpected argument, as Python reports it
        if isinstance(failure, ValueError | UnicodeError | httpx.InvalidURL):
            raise argument_error(failure, (owner.options.api_key,))
        raise exc.APIConnectionError(f"the request could not be made ({type(failure).__name__})")
    if not response.is_success:  # 1xx/3xx: our transport raised for >= 400 already
        raise owner.status_error(response, retry_after=None)
    if isinstance(failure, UnexpectedStatus):
        raise invalid_reply(response, f"status {response.status_code} is not documented for this operation")
    if failure is not None:
        raise invalid_reply(response, scrub(_reason(failure, response), (owner.options.api_key,)))
    return APIResponse(parsed, response)
