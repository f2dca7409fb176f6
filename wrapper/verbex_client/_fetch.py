"""Fetching one storage object across many HTTP responses: the I/O-free state machine.

`ObjectFetch` decides what each storage reply means (continue, restart,
re-sign, retry after a delay, or fail), tracks the offset, hashes every byte
in order (resumed parts included) and verifies size and `x-goog-hash` at the
end. The sync and async loops in `_download` only move bytes.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import re
import threading
import typing
from collections.abc import Callable, Mapping
from typing import Literal

import attrs

from ._crc32c import Buffer, crc32c_extender
from ._exceptions import DownloadError, IntegrityError
from ._parsing import decode_body
from ._retries import backoff_delay, is_retryable_status, parse_retry_after

RestartPolicy = Literal["truncate", "skip"]
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")


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


HASH_QUEUE_DEPTH = 16  # chunks waiting for the hashing thread (see _storage_io.RING_SIZE)
# Below this size, crc32c alone is hashed inline: starting a thread and handing
# chunks over costs more than hashing a few MiB at several GB/s.
THREADED_HASH_MIN_BYTES = 16 << 20
_STOP = object()
_RESET = object()
_DROP_MD5 = object()


class Digests:
    """crc32c (google-crc32c's C extension) and md5 of a byte sequence.

    md5 runs at ~0.6 GB/s, crc32c at several GB/s, so once storage is known
    to give a crc32c, `drop_md5()` stops the md5. After `start_thread()`
    the hashing runs on its own thread, off the receiving thread; chunks
    handed over must not be modified afterwards.
    """

    def __init__(self) -> None:
        self._crc_fn = crc32c_extender()
        self._md5: typing.Any = hashlib.md5()  # None once dropped
        self.md5_dropped = False
        self._crc = 0
        self._queue: queue.Queue[object] | None = None
        self._thread: threading.Thread | None = None

    def start_thread(self) -> None:
        """Hash on a thread from now on (everything before was hashed inline, in order)."""
        if self._queue is None:
            self._queue = queue.Queue(maxsize=HASH_QUEUE_DEPTH)
            self._thread = threading.Thread(target=self._run, name="verbex-hash", daemon=True)
            self._thread.start()

    def _apply(self, item: object) -> None:
        if item is _RESET:
            self._md5 = None if self.md5_dropped else hashlib.md5()
            self._crc = 0
            return
        if item is _DROP_MD5:
            self._md5 = None
            return
        data = typing.cast(Buffer, item)
        if self._md5 is not None:
            self._md5.update(data)
        if self._crc_fn is not None:
            self._crc = self._crc_fn(data, self._crc)

    def _run(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not _STOP:
            self._apply(item)

    def update(self, data: Buffer) -> None:
        self._send(data)

    def reset(self) -> None:
        self._send(_RESET)

    def drop_md5(self) -> None:
        """Stop hashing md5 (only when crc32c is computed: something must verify the bytes)."""
        if self._crc_fn is not None and not self.md5_dropped:
            self.md5_dropped = True
            self._send(_DROP_MD5)

    def _send(self, item: object) -> None:
        """To the hashing thread when there is one, else hashed (or applied) right here."""
        if self._queue is not None:
            self._queue.put(item)
        else:
            self._apply(item)

    def close(self) -> None:
        """Finish pending work and stop the thread (idempotent)."""
        if self._thread is not None and self._queue is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = self._queue = None  # anything later is hashed inline

    def md5(self) -> bytes | None:
        self.close()
        return None if self._md5 is None else bytes(self._md5.digest())

    def crc32c(self) -> bytes | None:
        self.close()
        return self._crc.to_bytes(4, "big") if self._crc_fn is not None else None


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
        offset: int = 0,
        restart: RestartPolicy = "truncate",
        jitter: Callable[[], float],
        wall_clock: Callable[[], float],
        threaded_hash: bool = False,
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
        self.resumed = offset > 0
        self.attempts = 0  # storage requests made
        self.failures_without_progress = 0
        self.restarted = False  # set when a 200 forced a restart from zero (truncate policy)
        self._skip = 0  # bytes of a full-body reply to drop before yielding (skip policy)
        self._progress_mark = offset
        self.threaded_hash = threaded_hash  # may hash on a thread (see accept())
        self.digests = Digests()

    # -- hashing ----------------------------------------------------------------------------

    def hash_existing(self, data: bytes) -> None:
        """Account for bytes already on disk before the first request (resume from a .part)."""
        self.digests.update(data)

    def _reset_hashes(self) -> None:
        self.digests.reset()

    @property
    def md5_hex(self) -> str | None:
        md5 = self.digests.md5()
        return None if md5 is None else md5.hex()

    @property
    def crc32c_hex(self) -> str | None:
        crc = self.digests.crc32c()
        return None if crc is None else crc.hex()

    def close(self) -> None:
        self.digests.close()

    # -- requests and replies ---------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.total is not None and self.offset >= self.total

    def start_request(self) -> dict[str, str]:
        """Count a storage request and give the headers it needs (the Range to resume from)."""
        self.attempts += 1
        return {"Range": f"bytes={self.offset}-"} if self.offset > 0 else {}

    def accept(self, status: int, headers: Mapping[str, str], goog_hash: list[str]) -> None:
        """Check a 200/206 reply before reading its body; raises DownloadError when unusable."""
        etag = headers.get("etag")
        if self.etag is not None and etag is not None and etag != self.etag:
            raise DownloadError(
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
        body_length = headers.get("content-length") or ""
        big = not body_length.isdigit() or int(body_length) >= THREADED_HASH_MIN_BYTES
        if self.threaded_hash and (big or not self.digests.md5_dropped):
            self.digests.start_thread()
        if status == 206:
            parsed = parse_content_range(headers.get("content-range"))
            if parsed is None or parsed[0] != self.offset:
                raise DownloadError(
                    f"storage answered Range bytes={self.offset}- with Content-Range "
                    f"{headers.get('content-range')!r}",
                    call_id=self.call_id,
                    status_code=206,
                )
            if parsed[2] is not None:
                self.total = parsed[2]
            return
        # 200: the whole object, whatever we asked for.
        length = headers.get("content-length")
        self.total = int(length) if length and length.isdigit() else None
        if self.offset > 0:
            if self.restart_policy == "truncate":
                self.offset = 0
                self._progress_mark = 0
                self.restarted = True
                self._reset_hashes()
            else:
                self._skip = self.offset  # already yielded: drop them again from this body

    def feed(self, chunk: Buffer) -> Buffer:
        """Account for body bytes; returns the part that is new to the consumer."""
        if self._skip:
            drop = min(self._skip, len(chunk))
            self._skip -= drop
            chunk = chunk[drop:]
            if not len(chunk):
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
        """An error status from storage: re-sign, retry, or raise DownloadError."""
        code, message = storage_error_code(body)
        if status == 416 and self.offset > 0 and self.restart_policy == "truncate":
            parsed = parse_content_range(headers.get("content-range"))
            if parsed is None and headers.get("content-range", "").startswith("bytes */"):
                total = headers["content-range"].split("/", 1)[1]
                if total.isdigit() and int(total) == self.offset:
                    self.total = self.offset  # the .part already holds everything
                    return Step()
            self.offset, self._progress_mark, self.restarted = 0, 0, True
            self._reset_hashes()
            return self._failed("range not satisfiable; restarting", None)
        if is_expired_reply(status, code, message):
            return self._failed(f"signed URL expired ({code or status})", None, resign=True)
        if is_retryable_status(status):
            hint = parse_retry_after(headers, self.wall_clock())
            return self._failed(f"storage answered {status}", hint, final=self._error(status, code, message))
        raise self._error(status, code, message)

    def transport_error(self, error: Exception) -> Step:
        return self._failed(
            f"connection failed ({type(error).__name__})",
            None,
            final=DownloadError(
                f"downloading recording for call {self.call_id!r} failed: connection failed "
                f"({type(error).__name__}) at byte {self.offset}",
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

    def _failed(
        self, reason: str, hint: float | None, *, resign: bool = False, final: DownloadError | None = None
    ) -> Step:
        """Count a failed attempt; progress since the last one resets the budget."""
        progressed = self.offset > self._progress_mark
        if progressed:
            self.failures_without_progress = 0
        self._progress_mark = self.offset
        self.failures_without_progress += 1
        if self.failures_without_progress > self.max_retries:
            raise final or DownloadError(
                f"downloading recording for call {self.call_id!r} failed: {reason} "
                f"({self.failures_without_progress} attempts without progress)",
                call_id=self.call_id,
            )
        self.resumed = self.resumed or self.offset > 0
        # A drop after fresh bytes is resumed at once; repeated failures back off.
        quick = resign or (progressed and hint is None)
        delay = 0.0 if quick else backoff_delay(self.failures_without_progress - 1, hint, jitter=self.jitter)
        return Step(delay=delay, resign=resign)

    # -- the end ----------------------------------------------------------------------------

    def verify(self) -> None:
        """Size and every checksum storage gave, over the whole object; IntegrityError otherwise."""
        if self.total is not None and self.offset != self.total:
            raise IntegrityError(
                f"recording for call {self.call_id!r} is {self.offset} bytes, expected {self.total}",
                call_id=self.call_id,
            )
        md5 = self.expected.get("md5")
        actual_md5 = self.digests.md5()
        if md5 is not None and actual_md5 is not None and md5 != actual_md5:
            raise IntegrityError(
                f"md5 mismatch for the recording of call {self.call_id!r}", call_id=self.call_id
            )
        crc = self.expected.get("crc32c")
        actual_crc = self.digests.crc32c()
        if crc is not None and actual_crc is not None and crc != actual_crc:
            raise IntegrityError(
                f"crc32c mismatch for the recording of call {self.call_id!r}", call_id=self.call_id
            )
