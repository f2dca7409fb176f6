"""GCS V4 signed-URL look-alike: signing, checking and the XML errors GCS sends.

The sandbox signs with HMAC-SHA256 over method, path and the canonical query
(instead of GCS's RSA over a canonical request): the same parameters, the
same failure modes, no cloud credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import attrs

SIGNED_PARAMS = (
    "X-Goog-Algorithm",
    "X-Goog-Credential",
    "X-Goog-Date",
    "X-Goog-Expires",
    "X-Goog-SignedHeaders",
)
ALGORITHM = "GOOG4-HMAC-SHA256"
MAX_EXPIRES = 604_800  # seconds; GCS's limit for V4 URLs
_DATE = re.compile(r"\d{8}T\d{6}Z")


class StorageError(Exception):
    """A GCS-style error reply: status, `<Code>` and `<Message>`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.message = status, code, message

    def xml(self) -> bytes:
        return (
            "<?xml version='1.0' encoding='UTF-8'?>"
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message></Error>"
        ).encode()


def _canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(params[k], safe='')}" for k in sorted(params))


def _signature(secret: bytes, method: str, path: str, params: dict[str, str]) -> str:
    payload = f"{method}\n{path}\n{_canonical_query(params)}".encode()
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def sign(
    secret: bytes, path: str, *, issued: datetime, expires_seconds: int, credential: str, url_id: int
) -> str:
    """The query string of a signed GET URL for `path`.

    `url_id` is an extra signed parameter (GCS signs any extra query parameter
    too) so two URLs issued in the same second differ and faults can target one.
    """
    params = {
        "x-sandbox-url-id": str(url_id),
        "X-Goog-Algorithm": ALGORITHM,
        "X-Goog-Credential": f"{credential}/{issued:%Y%m%d}/auto/storage/goog4_request",
        "X-Goog-Date": f"{issued:%Y%m%dT%H%M%SZ}",
        "X-Goog-Expires": str(expires_seconds),
        "X-Goog-SignedHeaders": "host",
    }
    params["X-Goog-Signature"] = _signature(secret, "GET", path, params)
    return _canonical_query(params)


def check(secret: bytes, path: str, query: dict[str, str], now: datetime) -> str:
    """Validate a signed request the way GCS does; returns the signature (the URL's identity).

    Raises StorageError: 400 MalformedSecurityHeader / ExpiredToken, 403 SignatureDoesNotMatch.
    HEAD is accepted with a GET signature, which GCS does not; it keeps clients simple.
    """
    missing = [p for p in (*SIGNED_PARAMS, "X-Goog-Signature") if p not in query]
    if missing:
        raise StorageError(400, "MalformedSecurityHeader", f"Missing required parameter: {missing[0]}.")
    date, expires = query["X-Goog-Date"], query["X-Goog-Expires"]
    if not _DATE.fullmatch(date):
        raise StorageError(400, "MalformedSecurityHeader", "Invalid argument: X-Goog-Date.")
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_EXPIRES:
        raise StorageError(400, "MalformedSecurityHeader", "Invalid argument: X-Goog-Expires.")
    signed = {k: v for k, v in query.items() if k != "X-Goog-Signature"}
    expected = _signature(secret, "GET", path, signed)
    if not hmac.compare_digest(expected, query["X-Goog-Signature"]):
        raise StorageError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    issued = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if now >= issued + timedelta(seconds=int(expires)):
        raise StorageError(400, "ExpiredToken", "The provided token has expired.")
    return expected


@attrs.frozen
class StoredObject:
    """One recording as storage holds it: where its bytes are and its hashes."""

    path: str  # file on disk, served with sendfile
    size: int
    md5_b64: str
    crc32c_b64: str
    etag: str
    content_type: str
    content_encoding: str | None = None  # "gzip": stored compressed, served as GCS serves it

    @classmethod
    def from_file(cls, path: str, content_type: str, content_encoding: str | None = None) -> StoredObject:
        md5 = hashlib.md5()
        crc = 0
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                md5.update(chunk)
                crc = crc32c(chunk, crc)
                size += len(chunk)
        return cls(
            path=path,
            size=size,
            md5_b64=base64.b64encode(md5.digest()).decode(),
            crc32c_b64=base64.b64encode(crc.to_bytes(4, "big")).decode(),
            etag=f'"{md5.hexdigest()}"',
            content_type=content_type,
            content_encoding=content_encoding,
        )


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE: list[int] | None = None


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C (Castagnoli), the checksum in `x-goog-hash`; google-crc32c when installed."""
    try:
        import google_crc32c

        return int(google_crc32c.extend(crc, data))
    except ImportError:
        pass
    global _TABLE
    table = _TABLE or _crc32c_table()
    _TABLE = table
    c = crc ^ 0xFFFFFFFF
    for byte in data:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a single `bytes=` range, None to serve the whole object.

    Raises StorageError 416 when the range starts past the end.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if match is None or match.group(1) == match.group(2) == "":
        return None  # multiple or malformed ranges: GCS serves the whole object
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise StorageError(416, "InvalidRange", "The requested range cannot be satisfied.")
    if end < start:
        return None
    return start, end
