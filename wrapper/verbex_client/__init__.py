"""verbex_client: typed client for the Verbex Platform API's call recordings.

    from verbex_client import Verbex

    with Verbex() as client:  # reads VERBEX_API_KEY
        url = client.recordings.signed_url("call_123")

Exceptions are imported eagerly (they are cheap); clients and models load on
first use so `import verbex_client` stays fast for CLIs and hot imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    DestinationError,
    DownloadError,
    IntegrityError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RecordingNotFoundError,
    UnprocessableEntityError,
    VerbexError,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._batch import BatchItem, BatchResult
    from ._client import AsyncVerbex, Verbex
    from ._download import AsyncRecordingStream, RecordingStream
    from ._models import APIResponse, DownloadResult, SignedRecordingUrl

_LAZY = {
    "Verbex": "._client",
    "AsyncVerbex": "._client",
    "APIResponse": "._models",
    "SignedRecordingUrl": "._models",
    "DownloadResult": "._models",
    "BatchItem": "._batch",
    "BatchResult": "._batch",
    "RecordingStream": "._download",
    "AsyncRecordingStream": "._download",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponse",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncRecordingStream",
    "AsyncVerbex",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "BatchResult",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "DestinationError",
    "DownloadError",
    "DownloadResult",
    "IntegrityError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RecordingNotFoundError",
    "RecordingStream",
    "SignedRecordingUrl",
    "UnprocessableEntityError",
    "Verbex",
    "VerbexError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'verbex_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
