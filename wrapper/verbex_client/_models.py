"""Immutable result types users receive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from ._redact import redact_url

if TYPE_CHECKING:
    import httpx

    from verbex_api.models.call_recording_signed_url_response import CallRecordingSignedUrlResponse

__all__ = ["APIResponse", "DownloadResult", "SignedRecordingUrl"]

# Subtracted from the deadline so a URL is not handed to a download that
# would start just as it dies (request latency, small clock differences).
EXPIRY_MARGIN_SECONDS = 5.0

T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@attrs.frozen(repr=False)
class SignedRecordingUrl:
    """A time-limited URL to one call's recording.

    `url` is a bearer credential until it expires, so `repr()`/`str()` show
    only its host and path. Expiry is judged by the earlier of the server's
    `expires_at` and `received_at + expiration_minutes`, so neither a local
    clock behind the server's nor one ahead of it makes a dead URL look alive.

    `model` is the generated `CallRecordingSignedUrlResponse` it was built from:
    every field the spec declares (and any the API sent beyond it, in
    `model.additional_properties`) is there, typed, after a regeneration.
    """

    call_id: str
    file_name: str
    url: str
    expiration_minutes: int
    expires_at: datetime
    received_at: datetime
    model: CallRecordingSignedUrlResponse = attrs.field(eq=False)

    @property
    def deadline(self) -> datetime:
        """The earliest moment the URL may stop working, margin included."""
        by_duration = self.received_at + timedelta(minutes=self.expiration_minutes)
        return min(self.expires_at, by_duration) - timedelta(seconds=EXPIRY_MARGIN_SECONDS)

    def seconds_remaining(self, now: datetime | None = None) -> float:
        """Seconds until `deadline` (negative once past), measured from `now` (UTC by default)."""
        return (self.deadline - (now or _utcnow())).total_seconds()

    @property
    def expired(self) -> bool:
        return self.seconds_remaining() <= 0

    def to_dict(self) -> dict[str, Any]:
        """Every field the API returned (JSON-ready), plus `call_id` and `received_at`.

        The URL is under `url` (the API's `signed_url`); timestamps are RFC 3339 in UTC.
        """
        fields = {name: value for name, value in self.model.to_dict().items() if name != "signed_url"}
        return {
            "call_id": self.call_id,
            **fields,
            "file_name": self.file_name,
            "url": self.url,
            "expiration_minutes": self.expiration_minutes,
            "expires_at": _rfc3339(self.expires_at),
            "received_at": _rfc3339(self.received_at),
        }

    def __repr__(self) -> str:
        return (
            f"SignedRecordingUrl(call_id={self.call_id!r}, file_name={self.file_name!r}, "
            f"url={redact_url(self.url)!r}, expires_at={self.expires_at.isoformat()!r})"
        )

    __str__ = __repr__


@attrs.frozen(repr=False)
class APIResponse(Generic[T]):
    """What `with_raw_response` methods return: the parsed value and the raw `httpx.Response`."""

    parsed: T
    http_response: httpx.Response

    def parse(self) -> T:
        """The parsed value (openai-python's spelling)."""
        return self.parsed

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    def __repr__(self) -> str:
        return f"APIResponse(status_code={self.status_code}, parsed={self.parsed!r})"


@attrs.frozen
class DownloadResult:
    """A finished, verified download: where it is, its size and checksums, and how it went.

    `crc32c` is set when google-crc32c's C extension is available (the
    default install); `md5` only when it was needed to verify the bytes,
    i.e. storage gave an md5 but no crc32c (md5 is ~10x slower).
    `content_encoding` is `"gzip"` for an object stored gzip-compressed: the
    file then holds the stored (compressed) bytes, as storage's checksums cover.
    """

    call_id: str
    path: Path
    bytes: int
    md5: str | None
    resumed: bool
    attempts: int
    crc32c: str | None = None
    content_encoding: str | None = None
