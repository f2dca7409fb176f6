"""Fetching one storage object across many HTTP replies: the I/O-free state machine.

`ObjectFetch` decides what each storage reply means (continue, restart,
re-sign, retry after a delay, or fail), tracks the offset, hashes every byte
in order (resumed bytes included, read back from disk) and verifies size and
`x-goog-hash` at the end. The sync and async loops in `_download` only move
bytes; both call this.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from ._exceptions import DownloadError, IntegrityError
from ._parsing import decode_body
from ._retries import backoff_delay, is_retryable_status, parse_retry_after

RestartPolicy = Literal["truncate", "skip"]
# A URL storage calls expired is signed again at once, without counting as a failed
# attempt; this many in a row with no byte in between (a clock far off) end the download.
MAX_RESIGNS = 3
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def parse_goog_hash(values: list[str]) -> dict[str, bytes]:
    """{'md5': digest, 'crc32c': digest} from `x-goog-hash` (one header or several, comma-joined)."""
    out: dict[str, bytes] = {}
    for value in values:
        for item in value.split(","):
            name, _, encoded = item.strip().partition("=")
            if name in ("md5", "crc32c") and encoded:
                try:
                    out[name] = base64.b64decode(encoded, validate=True)
                except ValueError:
                    continue
    return out


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None
    first, last, total = match.groups()
    return int(first), int(last), None if total == "*" else int(total)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = (headers.get(name) or "").strip()
    return int(value) if value.isdigit() else None


def storage_error_code(body: bytes) -> tuple[str | None, str | None]:
    """(`<Code>`, `<Message>`) of a GCS/S3 XML error body, or a JSON `error`; (None, None) otherwise."""
    text = body[:4096].decode("utf-8", errors="replace")
    code, message = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    if code or message:
        return (code.group(1).strip() if code else None), (message.group(1).strip() if message else None)
    decoded = decode_body(body[:4096])
    if isinstance(decoded, dict):
        err = decoded.get("error")
        if isinstance(err, dict):  # GCS JSON API shape
            return str(err.get("status") or err.get("code") or "") or None, str(
                err.get("message") or ""
            ) or None
    return None, None


def is_expired_reply(status: int, code: str | None, message: str | None) -> bool:
    """GCS: 400 ExpiredToken. S3-style stores: 403 AccessDenied "Request has expired"."""
    if status == 400 and code == "ExpiredToken":
        return True
    return status == 403 and "expired" in (message or "").lower()


def _crc32c_extend() -> Callable[[int, bytes], int] | None:
    """google-crc32c's C `extend` (~25 GB/s here), or None without its C extension (its
    pure-Python fallback is far too slow: md5 verifies instead)."""
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.extend if google_crc32c.implementation == "c" else None


class Digests:
    """crc32c and md5 of a byte sequence; md5 (~0.7 GB/s) stops once crc32c is known to verify."""

    def __init__(self) -> None:
        self._extend = _crc32c_extend()
        self._crc = 0
        self._md5: Any = hashlib.md5()  # None once dropped
        self.md5_dropped = False

    def update(self, data: bytes) -> None:
        if self._extend is not None:
            self._crc = self._extend(self._crc, data)
        if self._md5 is not None:
            self._md5.update(data)

    def reset(self) -> None:
        self._crc = 0
        self._md5 = None if self.md5_dropped else hashlib.md5()

    def drop_md5(self) -> None:
        """Stop hashing md5 (only when crc32c is computed: something must verify the bytes)."""
        if self._extend is not None:
            self.md5_dropped, self._md5 = True, None

    def md5(self) -> bytes | None:
        return None if self._md5 is None else bytes(self._md5.digest())

    def crc32c(self) -> bytes | None:
        return self._crc.to_bytes(4, "big") if self._extend is not None else None


@attrs.frozen
class Failure:
    """A storage request that got no usable reply, as plain facts (no exception object: those
    carry the URL with its signature)."""

    kind: str
    host: str
    timeout: bool = False


@attrs.define
class Step:
    """What the loop should do before the next storage request."""

    delay: float = 0.0
    resign: bool = False


class ObjectFetch:
    """The state of fetching one object, from `offset` to the end."""

    def __init__(
        self,
        *,
        call_id: str,
        max_retries: int,
        jitter: Callable[[], float],
        wall_clock: Callable[[], float],
        offset: int = 0,
        restart: RestartPolicy = "truncate",
    ) -> None:
        self.call_id = call_id
        self.max_retries = max_retries
        self.restart_policy = restart
        self.jitter = jitter
        self.wall_clock = wall_clock
        self.offset = offset  # bytes accepted so far (on disk / already yielded)
        self.total: int | None = None
        self.expected: dict[str, bytes] = {}
        self.etag: str | None = None
        self.content_encoding: str | None = None
        self.resumed = offset > 0
        self.attempts = 0  # storage requests made
        self.failures_without_progress = 0
        self.resigns_without_progress = 0
        self.restarted = False  # a 200 forced a restart from zero: the caller truncates its file
        self._probing = False  # asking for the last byte we have, to learn size and checksums
        self._skip = 0  # bytes at the start of the current reply that are not new
        self._progress_mark = offset
        self.digests = Digests()

    # -- hashing ----------------------------------------------------------------------------

    def resume_from(self, size: int) -> None:
        """Start after the `size` bytes already on disk (hashed with `hash_existing`)."""
        self.offset = self._progress_mark = size
        self.resumed = size > 0

    def hash_existing(self, data: bytes) -> None:
        """Account for bytes already on disk before the first request (resume from a .part)."""
        self.digests.update(data)

    @property
    def md5_hex(self) -> str | None:
        md5 = self.digests.md5()
        return None if md5 is None else md5.hex()

    @property
    def crc32c_hex(self) -> str | None:
        crc = self.digests.crc32c()
        return None if crc is None else crc.hex()

    # -- requests and replies ---------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.total is not None and self.offset >= self.total

    def start_request(self) -> dict[str, str]:
        """Count a storage request and give the headers it needs (the Range to resume from)."""
        self.attempts += 1
        if self._probing:
            return {"Range": f"bytes={self.offset - 1}-"}
        return {"Range": f"bytes={self.offset}-"} if self.offset > 0 else {}

    def _refuse(self, status: int, what: str) -> DownloadError:
        return DownloadError(
            f"storage answered the request for call {self.call_id!r} with {what}",
            call_id=self.call_id,
            status_code=status,
        )

    def accept(self, status: int, headers: Mapping[str, str], goog_hash: list[str]) -> None:
        """Check a 200/206 reply before reading its body; raises DownloadError when unusable."""
        etag = headers.get("etag")
        if self.etag is not None and etag is not None and etag != self.etag:
            raise IntegrityError(
                f"recording for call {self.call_id!r} changed during the download "
                f"(ETag {self.etag} -> {etag})",
                call_id=self.call_id,
                status_code=status,
            )
        self.etag = etag or self.etag
        # Same ETag, same object: a later reply's hashes add to what an earlier one gave.
        self.expected.update(parse_goog_hash(goog_hash))
        if "crc32c" in self.expected:
            self.digests.drop_md5()  # crc32c verifies the bytes at a fraction of md5's cost
        encoding = (headers.get("content-encoding") or "").strip().lower() or None
        if encoding is None and (headers.get("x-goog-stored-content-encoding") or "").lower() == "gzip":
            raise self._refuse(
                status,
                "the gzip-stored object decompressed (decompressive transcoding), although the "
                "stored bytes were asked for: its checksum cannot be verified",
            )
        self.content_encoding = encoding
        stored_length = _int_header(headers, "x-goog-stored-content-length")
        content_range = headers.get("content-range")
        if status == 206:
            parsed = parse_content_range(content_range)
            start = self.offset - 1 if self._probing else self.offset
            if parsed is None or parsed[0] != start:
                raise self._refuse(206, f"Content-Range {content_range!r} to Range bytes={start}-")
            self._skip = 1 if self._probing else 0
            self._probing = False
            self._set_total(parsed[2] if parsed[2] is not None else stored_length)
            return
        # 200: the whole object, whatever we asked for.
        if content_range is not None:
            parsed = parse_content_range(content_range)
            whole = (
                parsed is not None and parsed[0] == 0 and (parsed[2] is None or parsed[1] == parsed[2] - 1)
            )
            if not whole:
                raise self._refuse(200, f"Content-Range {content_range!r}, which is not the whole object")
        length = _int_header(headers, "content-length")
        self._probing = False
        self.total = None
        # The object's size as stored, when storage says it, over the body's framing.
        self._set_total(stored_length if stored_length is not None else length)
        if self.offset > 0:
            if self.restart_policy == "truncate":
                self.offset = self._progress_mark = 0
                self.restarted = True
                self.digests.reset()
            else:
                self._skip = self.offset  # already yielded: drop them again from this body

    def _set_total(self, total: int | None) -> None:
        """The latest reply's size wins (a first reply may overstate it and end early); the
        checksums still judge the whole object."""
        if total is not None:
            self.total = total

    def feed(self, chunk: bytes) -> bytes:
        """Account for body bytes; returns the part that is new to the consumer."""
        if self._skip:
            drop = min(self._skip, len(chunk))
            self._skip -= drop
            chunk = chunk[drop:]
            if not chunk:
                return b""
        self.digests.update(chunk)
        self.offset += len(chunk)
        if self.total is not None and self.offset > self.total:
            raise IntegrityError(
                f"storage sent more bytes than the object holds ({self.offset} > {self.total})",
                call_id=self.call_id,
            )
        return chunk

    def body_ended(self) -> Step | None:
        """After a body ended cleanly: None when the object is complete, else how to continue."""
        if self.total is None:
            self.total = self.offset  # no length given: what arrived is the object
        if self.complete:
            return None
        return self._failed("storage reply ended early", None)

    def error_reply(self, status: int, headers: Mapping[str, str], body: bytes) -> Step:
        """An error status from storage: probe, restart, re-sign, retry, or raise DownloadError."""
        if status == 416 and self.offset > 0:
            return self._unsatisfiable(headers.get("content-range"))
        code, message = storage_error_code(body)
        if is_expired_reply(status, code, message):
            self._count_resign(code or str(status))
            return Step(resign=True)
        if is_retryable_status(status):
            hint = parse_retry_after(headers, self.wall_clock())
            return self._failed(f"storage answered {status}", hint, final=self._error(status, code, message))
        raise self._error(status, code, message)

    def _unsatisfiable(self, content_range: str | None) -> Step:
        """416 to `bytes=<offset>-`: we may already hold the whole object. One request for the
        last byte we have gives the size and the checksums to verify it, without a new
        transfer (fake-gcs-server and others send no Content-Range with their 416)."""
        match = _UNSATISFIED_RANGE.fullmatch((content_range or "").strip())
        size = int(match.group(1)) if match else None
        if not self._probing and (size is None or size == self.offset):
            self._probing = True
            return Step()
        # Larger than the object, or the probe failed too: start again from zero.
        self._probing = False
        self.offset = self._progress_mark = 0
        self.restarted = True
        self.digests.reset()
        return self._failed("range not satisfiable; restarting", None)

    def _count_resign(self, reason: str) -> None:
        if self.offset > self._progress_mark:
            self.resigns_without_progress = 0
        self.resigns_without_progress += 1
        if self.resigns_without_progress > MAX_RESIGNS:
            raise DownloadError(
                f"storage rejected {plural(self.resigns_without_progress, 'fresh signed URL')} for "
                f"call {self.call_id!r} as expired ({reason}); is this machine's clock right?",
                call_id=self.call_id,
                code=reason,
            )

    def transport_error(self, failure: Failure) -> Step:
        what = "timed out" if failure.timeout else "failed"
        return self._failed(
            f"connection to {failure.host} {what} ({failure.kind})",
            None,
            final=DownloadError(
                f"downloading the recording for call {self.call_id!r} failed: connection to "
                f"{failure.host} {what} ({failure.kind}) at byte {self.offset}",
                call_id=self.call_id,
            ),
        )

    def _error(self, status: int, code: str | None, message: str | None) -> DownloadError:
        detail = f" {code}" if code else ""
        text = f": {message}" if message else ""
        return DownloadError(
            f"storage refused the recording for call {self.call_id!r} ({status}{detail}){text}",
            call_id=self.call_id,
            status_code=status,
            code=code,
        )

    def _failed(self, reason: str, hint: float | None, *, final: DownloadError | None = None) -> Step:
        """Count a failed attempt; progress since the last one resets the budget."""
        progressed = self.offset > self._progress_mark
        self._progress_mark = self.offset
        if progressed:  # not a failed attempt: bytes came, so resuming always gets further
            self.failures_without_progress = self.resigns_without_progress = 0
            self.resumed = True
            return Step(delay=0.0 if hint is None else backoff_delay(0, hint, jitter=self.jitter))
        self.failures_without_progress += 1
        if self.failures_without_progress > self.max_retries:
            count = plural(self.failures_without_progress, "attempt")
            if final is not None:
                raise DownloadError(
                    f"{final.message} ({count} without progress)",
                    call_id=final.call_id,
                    status_code=final.status_code,
                    code=final.code,
                )
            raise DownloadError(
                f"downloading the recording for call {self.call_id!r} failed: {reason} "
                f"({count} without progress)",
                call_id=self.call_id,
            )
        self.resumed = self.resumed or self.offset > 0
        return Step(delay=backoff_delay(self.failures_without_progress - 1, hint, jitter=self.jitter))

    # -- the end ----------------------------------------------------------------------------

    def verify(self) -> None:
        """Size and every checksum storage gave, over the whole object; IntegrityError otherwise."""
        if self.total is not None and self.offset != self.total:
            raise IntegrityError(
                f"recording for call {self.call_id!r} is {self.offset} bytes, expected {self.total}",
                call_id=self.call_id,
            )
        for name, actual in (("md5", self.digests.md5()), ("crc32c", self.digests.crc32c())):
            expected = self.expected.get(name)
            if expected is not None and actual is not None and expected != actual:
                raise IntegrityError(
                    f"{name} mismatch for the recording of call {self.call_id!r}", call_id=self.call_id
                )
