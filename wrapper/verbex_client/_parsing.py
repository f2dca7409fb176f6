"""Turning any HTTP reply into a result or one of our exceptions.

Lenient by design: the real service answers with the spec's `{error,
message}`, FastAPI's `{"detail": ...}`, or a proxy's text/HTML, and none of
that may escape as KeyError/JSONDecodeError. Shared by sync and async.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import _exceptions as exc
from ._models import SignedRecordingUrl
from ._redact import scrub

if TYPE_CHECKING:
    import httpx

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
    return _short(text)


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
    """(code, message, validation errors) from any error body shape we know."""
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
        _short(message) if isinstance(message, str) and message.strip() else None,
        errors,
    )


def status_error(
    response: httpx.Response,
    *,
    secrets: tuple[str, ...],
    retry_after: float | None = None,
    not_found: type[exc.NotFoundError] = exc.RecordingNotFoundError,
) -> exc.APIStatusError:
    """The named exception for a non-2xx API reply."""
    status = response.status_code
    body = decode_body(response.content)
    code, message, errors = error_fields(body)
    if message is None:
        message = response.reason_phrase or f"HTTP {status}"
    message = scrub(message, secrets)
    code = scrub(code, secrets) if code else None
    request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
    common: dict[str, Any] = {"response": response, "body": body, "code": code, "request_id": request_id}
    if status == 404:
        return not_found(message, **common)
    if status == 422:
        return exc.UnprocessableEntityError(message, errors=errors, **common)
    if status == 429:
        return exc.RateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return exc.InternalServerError(message, **common)
    return _STATUS_CLASSES.get(status, exc.APIStatusError)(message, **common)


def parse_timestamp(value: object) -> datetime:
    """RFC 3339 timestamp → aware UTC datetime; nine-digit fractions and `Z` accepted.

    A timestamp without an offset is taken as UTC (FastAPI apps often emit those).
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 string, got {type(value).__name__}")
    text = value.strip()
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|z|[+-]\d\d:?\d\d)?", text)
    if match is None:
        raise ValueError("not an RFC 3339 date-time")
    head, fraction, offset = match.groups()
    fraction = (fraction or "")[:7]  # '.' + at most 6 digits: datetime holds microseconds
    offset = "+00:00" if offset in (None, "Z", "z") else offset
    parsed = datetime.fromisoformat(f"{head}{fraction}{offset}")
    return parsed.astimezone(UTC)


def signed_url_from_response(
    response: httpx.Response, *, call_id: str, received_at: datetime
) -> SignedRecordingUrl:
    """Validate a 2xx reply of the signed-URL endpoint against the spec's schema."""
    from verbex_api.models.call_recording_signed_url_response import CallRecordingSignedUrlResponse

    def invalid(reason: str, body: object) -> exc.APIResponseValidationError:
        return exc.APIResponseValidationError(
            f"invalid signed-URL response ({response.status_code}): {reason}", response=response, body=body
        )

    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        raise invalid("body is not JSON", decode_body(response.content)) from None
    if not isinstance(data, dict):
        raise invalid(f"expected a JSON object, got {type(data).__name__}", data)
    try:
        model = CallRecordingSignedUrlResponse.from_dict(data)
    except KeyError as missing:
        raise invalid(f"missing field {missing.args[0]!r}", data) from None
    except (TypeError, ValueError):
        raise invalid("unparseable field 'expires_at'", data) from None
    for name, kind in (("file_name", str), ("signed_url", str), ("expiration_minutes", int)):
        value = getattr(model, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise invalid(f"field {name!r} must be {kind.__name__}, got {type(value).__name__}", data)
    try:
        expires_at = parse_timestamp(data["expires_at"])
    except ValueError:
        raise invalid("unparseable field 'expires_at'", data) from None
    return SignedRecordingUrl(
        call_id=call_id,
        file_name=model.file_name,
        url=model.signed_url,
        expiration_minutes=model.expiration_minutes,
        expires_at=expires_at,
        received_at=received_at,
    )
