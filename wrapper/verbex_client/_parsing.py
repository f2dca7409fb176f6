"""Turning any HTTP reply into a result or one of our exceptions.

Lenient by design: the real service answers with the spec's `{error,
message}`, FastAPI's `{"detail": ...}`, or a proxy's text/HTML, and none of
that may escape as KeyError/JSONDecodeError. Shared by sync and async.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import _exceptions as exc
from ._redact import scrub

if TYPE_CHECKING:
    import httpx

    from verbex_api.models.call_recording_signed_url_response import CallRecordingSignedUrlResponse

    from ._models import SignedRecordingUrl

V = TypeVar("V")

MAX_MESSAGE_LENGTH = 300
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "x-cloud-trace-context")

_STATUS_CLASSES: dict[int, type[exc.APIStatusError]] = {
    400: exc.BadRequestError,
    401: exc.AuthenticationError,
    403: exc.PermissionDeniedError,
    404: exc.NotFoundError,
    409: exc.ConflictError,
    422: exc.UnprocessableEntityError,
    429: exc.RateLimitError,
}
_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def decode_body(content: bytes) -> object:
    """JSON value if the body parses as JSON, else its text; None when empty."""
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return content.decode("utf-8", errors="replace")


def _short(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"


def _text_message(text: str) -> str:
    if "<" in text and ">" in text:  # HTML from a proxy: its title, else its text
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def _validation_errors(detail: list[Any]) -> list[dict[str, Any]]:
    return [item for item in detail if isinstance(item, dict)]


def _describe_validation(errors: list[dict[str, Any]]) -> str:
    parts = []
    for item in errors[:3]:
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        msg = item.get("msg")
        parts.append(f"{where}: {msg}" if where else str(msg))
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def error_fields(body: object) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """(code, message, validation errors) from any error body shape we know (message not shortened)."""
    if isinstance(body, str):
        return None, _text_message(body) or None, []
    if not isinstance(body, dict):
        return None, None, []
    code = body.get("error")
    message = body.get("message")
    if isinstance(code, dict):  # {"error": {"code": ..., "message": ...}}
        message = message if isinstance(message, str) else code.get("message")
        code = code.get("code") or code.get("type")
    detail = body.get("detail")
    errors: list[dict[str, Any]] = []
    if isinstance(detail, list):
        errors = _validation_errors(detail)
        if not isinstance(message, str) and errors:
            message = _describe_validation(errors)
    elif isinstance(detail, str) and not isinstance(message, str):
        message = detail
    return (
        str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) and message.strip() else None,
        errors,
    )


def is_documented_error_body(body: object) -> bool:
    """Whether `body` is the spec's ErrorResponse (`{"error": str, "message": str}`).

    The API's own errors have that shape; a router's or a proxy's (FastAPI's
    `{"detail": "Not Found"}` for an unknown path, an HTML page) do not.
    """
    from verbex_api.models.error_response import ErrorResponse

    if not isinstance(body, dict):
        return False
    try:
        model = ErrorResponse.from_dict(body)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return isinstance(model.error, str) and isinstance(model.message, str)


def status_error(
    response: httpx.Response,
    *,
    secrets: tuple[str, ...],
    retry_after: float | None = None,
    content: bytes | None = None,
    meanings: Mapping[int, type[exc.APIStatusError]] | None = None,
    base_url: str = "",
) -> exc.APIStatusError:
    """The named exception for a non-2xx API reply; its text is scrubbed of every secret.

    A status gets the operation's own exception (`meanings`, e.g. 404 ->
    RecordingNotFoundError) only when the body is the spec's ErrorResponse; a 404
    with any other body is a route the server does not know: a wrong base URL.
    """
    status = response.status_code
    body = decode_body(response.content if content is None else content)
    code, message, errors = error_fields(body)
    documented = is_documented_error_body(body)
    if status == 404 and not documented:
        from ._redact import redact_url

        route = (
            f"{response.request.method} {response.request.url.path}"
            if _has_request(response)
            else "the route"
        )
        message = (
            f"route not found: {route} does not exist on this server; "
            f"check the base URL ({redact_url(base_url)})"
        )
    elif message is None:
        message = response.reason_phrase or f"HTTP {status}"
    message = _short(scrub(message, secrets))
    code = _short(scrub(code, secrets)) if code else None
    request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
    common: dict[str, Any] = {"response": response, "body": body, "code": code, "request_id": request_id}
    specific = (meanings or {}).get(status) if documented else None
    if specific is not None:
        return specific(message, **common)
    if status == 404:
        return exc.NotFoundError(message, **common)
    if status == 422:
        return exc.UnprocessableEntityError(message, errors=errors, **common)
    if status == 429:
        return exc.RateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return exc.InternalServerError(message, **common)
    return _STATUS_CLASSES.get(status, exc.APIStatusError)(message, **common)


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018 - httpx raises RuntimeError when the response has none
    except RuntimeError:
        return False
    return True


def invalid_reply(response: httpx.Response, reason: str) -> exc.APIResponseValidationError:
    """APIResponseValidationError for a 2xx reply; `reason` names fields and types, never values."""
    try:
        body = decode_body(response.content)
    except Exception:  # an unread or undecodable body: the error stands without it
        body = None
    return exc.APIResponseValidationError(
        f"invalid response ({response.status_code}): {reason}", response=response, body=body
    )


def require(value: object, kind: type[V], name: str) -> V:
    """`value` if it is a `kind` (bool is no int here), else ValueError naming the field and type."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def aware_utc(value: datetime) -> datetime:
    """A datetime in UTC; one without an offset is taken as UTC (FastAPI apps often emit those)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def signed_url_from_response(
    model: CallRecordingSignedUrlResponse, response: httpx.Response, *, call_id: str, received_at: datetime
) -> SignedRecordingUrl:
    """The wrapper's result from the generated model, its field types checked (the generator does not)."""
    from ._models import SignedRecordingUrl

    try:
        return SignedRecordingUrl(
            call_id=call_id,
            file_name=require(model.file_name, str, "file_name"),
            url=require(model.signed_url, str, "signed_url"),
            expiration_minutes=require(model.expiration_minutes, int, "expiration_minutes"),
            expires_at=aware_utc(require(model.expires_at, datetime, "expires_at")),
            received_at=received_at,
            model=model,
        )
    except ValueError as error:
        reason = str(error)
    except AttributeError as error:  # verbex_api regenerated from a spec that renamed a field
        reason = f"field {error.name!r} is not in the spec this verbex_api was generated from"
    raise invalid_reply(response, reason)
