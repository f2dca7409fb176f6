"""Every exception the client raises, named by meaning (openai-python's layout).

Messages are short readable text and never carry the API key or a signed
URL's credential or signature: they are built from scrubbed parts only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "DestinationError",
    "DownloadError",
    "IntegrityError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RecordingNotFoundError",
    "UnprocessableEntityError",
    "VerbexError",
]


class VerbexError(Exception):
    """Base class of every error raised by verbex_client."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(VerbexError):
    """The client cannot be configured as asked (e.g. no API key anywhere)."""


class ClientClosedError(VerbexError):
    """The client was used after `close()` / `aclose()` (or its `with` block ended)."""


class APIError(VerbexError):
    """A call to the Verbex API failed."""


class APIConnectionError(APIError):
    """No usable HTTP response: the connection failed, was reset or broke off, or the request
    could not be sent as valid HTTP. The message names the host, never the URL's query."""

    def __init__(self, message: str = "connection error") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write or pool timeout)."""

    def __init__(self, message: str = "request timed out") -> None:
        super().__init__(message)


class APIResponseValidationError(APIError):
    """A 2xx reply whose body is not JSON, does not match the spec's schema or cannot be decoded
    (a broken `Content-Encoding`), or whose status the operation does not document."""

    def __init__(self, message: str, *, response: httpx.Response, body: object) -> None:
        super().__init__(message)
        self.response = response
        self.status_code = response.status_code
        self.body = body


class APIStatusError(APIError):
    """The API answered with a non-2xx status.

    `code` is the body's machine-readable error code when it has one,
    `request_id` the server's request id header, `body` the decoded body
    (JSON value, text, or None).
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: object,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.response = response
        self.status_code: int = response.status_code
        self.body = body
        self.code = code
        self.request_id = request_id
        self.args = (str(self),)

    def __str__(self) -> str:
        label = f"{self.status_code} {self.code}" if self.code else str(self.status_code)
        return f"{label}: {self.message}"


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404. With a body other than the spec's ErrorResponse the server does not know the route
    (a wrong base URL, say), and the message says so."""


class RecordingNotFoundError(NotFoundError):
    """The signed-URL endpoint's documented 404 (an ErrorResponse body): no recording for that call id."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422: the server rejected the request body.

    `errors` lists the server's validation errors as dicts with `loc`, `msg`
    and `type`, as FastAPI sent them (empty when the body had none).
    """

    def __init__(self, message: str, *, errors: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors = errors


class RateLimitError(APIStatusError):
    """429. `retry_after` is the server's wait hint in seconds, or None."""

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx."""


class DownloadError(VerbexError):
    """Fetching a recording from storage failed.

    `status_code` is the storage HTTP status (None for a connection failure),
    `code` the storage error code (`ExpiredToken`, `AccessDenied`,
    `NoSuchKey`, `SignatureDoesNotMatch`, ...) when the reply had one.
    """

    def __init__(
        self,
        message: str,
        *,
        call_id: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.call_id = call_id
        self.status_code = status_code
        self.code = code


class IntegrityError(DownloadError):
    """The downloaded bytes do not match the object's size or checksum."""


class DestinationError(DownloadError):
    """The recording could not be written where asked: disk full, permission denied, read-only.

    `path` is the file or directory that failed, `errno` the operating system's error number.
    """

    def __init__(
        self, message: str, *, path: str | None = None, errno: int | None = None, call_id: str | None = None
    ) -> None:
        super().__init__(message, call_id=call_id)
        self.path = path
        self.errno = errno
