"""Moving recording bytes: streams and atomic, resumable, verified downloads.

Every decision lives in `_fetch.ObjectFetch`, file handling in `_files.PartFile`,
requests in `_storage`; the loops below only move bytes between them. A download
needs a function that signs a fresh URL, the storage client and a few settings:
not the whole API client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from concurrent.futures import Executor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import attrs
import httpx

from ._exceptions import IntegrityError
from ._fetch import Failure, ObjectFetch, RestartPolicy, Step
from ._files import LOCK_POLL_SECONDS, PartFile, TargetExists
from ._logging import logger
from ._models import DownloadResult, SignedRecordingUrl
from ._paths import resolve_target
from ._storage import AsyncStorage, SyncStorage, check_storage_url, describe_url, transport_failure
from ._validation import check_bool, check_call_id, check_expires_in_minutes

if TYPE_CHECKING:
    from ._client import AsyncVerbex, Verbex
    from ._transport import Hooks

Progress = Callable[[int, "int | None"], None]
Sign = Callable[[], SignedRecordingUrl]
AsyncSign = Callable[[], Awaitable[SignedRecordingUrl]]
NameClaim = Callable[[str, str], str]  # (call_id, safe file name) -> the name to use
T = TypeVar("T")
ASYNC_WRITE_BYTES = 1 << 20  # async downloads hand the disk this much at a time (one thread hop)


class Cancelled(BaseException):
    """Raised inside a worker when its batch was interrupted (not an Exception: nothing swallows it)."""


class FinishedElsewhere(TargetExists):
    """Another download of the same target (thread or process) finished it while this one waited."""


@attrs.frozen
class FetchSettings:
    """What one download takes from its client: limits, clocks, and the storage rules."""

    timeout: httpx.Timeout
    max_retries: int
    allow_insecure: bool
    hooks: Hooks

    @classmethod
    def of(cls, client: Verbex | AsyncVerbex) -> FetchSettings:
        options = client._options
        return cls(
            options.timeout, options.max_retries, client._allow_insecure_storage, client._transport.hooks
        )

    def new_fetch(self, call_id: str, restart: RestartPolicy) -> ObjectFetch:
        hooks = self.hooks
        return ObjectFetch(
            call_id=call_id,
            max_retries=self.max_retries,
            restart=restart,
            jitter=hooks.jitter,
            wall_clock=hooks.wall_clock,
        )


# -- checks before any request ---------------------------------------------------------------


def check_download_args(
    call_id: object,
    expires_in_minutes: object,
    dest: object,
    progress: object,
    *,
    overwrite: object = False,
    fsync: object = True,
) -> tuple[str, int, Path]:
    check_call_id(call_id)
    check_expires_in_minutes(expires_in_minutes)
    check_bool("overwrite", overwrite)
    check_bool("fsync", fsync)
    if not isinstance(dest, str | os.PathLike):
        raise TypeError(f"dest must be a str or os.PathLike, not {type(dest).__name__}")
    if isinstance(dest, str) and "://" in dest:
        raise ValueError(
            f"dest {dest!r} is a URL: a single download writes a local file; "
            "object storage is a download_many destination"
        )
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable as progress(bytes_done, bytes_total_or_None)")
    return call_id, expires_in_minutes, Path(dest)  # type: ignore[return-value]


def names_directory(dest: str | os.PathLike[str]) -> bool:
    """`dest` ending in a path separator means a directory, existing or not (as for `cp`)."""
    text = os.fspath(dest)
    return text.endswith(("/", os.sep)) or (os.altsep is not None and text.endswith(os.altsep))


def preflight(dest: Path, overwrite: bool, *, as_directory: bool) -> bool:
    """Fail before any request when `dest` names an existing file we may not replace.

    Returns whether `dest` is a directory (the recording then takes the server's file name).
    """
    if as_directory:
        if dest.exists() and not dest.is_dir():
            raise TargetExists(dest, "and is not a directory")
        dest.mkdir(parents=True, exist_ok=True)
        return True
    if dest.is_dir():
        return True
    if not overwrite and dest.exists():
        raise TargetExists(dest)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"directory {dest.parent} does not exist")
    return False


def plan_download(
    call_id: object,
    expires_in_minutes: object,
    dest: object,
    progress: object,
    *,
    overwrite: object,
    fsync: object,
) -> tuple[str, int, Path, bool]:
    """Every check made before any request, for both twins: the arguments, then `dest` on
    disk. Returns (call_id, minutes, dest, whether dest is a directory)."""
    call_id, minutes, dest_path = check_download_args(
        call_id, expires_in_minutes, dest, progress, overwrite=overwrite, fsync=fsync
    )
    as_directory = names_directory(dest)  # type: ignore[arg-type]  # checked above
    return call_id, minutes, dest_path, preflight(dest_path, bool(overwrite), as_directory=as_directory)


def target_for(
    dest: Path,
    signed: SignedRecordingUrl,
    call_id: str,
    overwrite: bool,
    claim_name: NameClaim | None,
    dest_is_dir: bool,
) -> Path:
    """The file to write, checked before any byte is fetched (`claim_name` may rename it, see _batch)."""
    target = resolve_target(dest, signed.file_name, signed.call_id, dest_is_dir=dest_is_dir)
    if claim_name is not None and dest_is_dir:
        target = target.with_name(claim_name(call_id, target.name))
    if not overwrite and target.exists():
        raise TargetExists(target)
    return target


def _keep_part(error: BaseException) -> bool:
    """A `.part` is kept for a resume unless its bytes are wrong (or of another object)."""
    return not isinstance(error, IntegrityError)


def _report(progress: Progress | None, fetch: ObjectFetch) -> None:
    if progress is not None:
        progress(fetch.offset, fetch.total)


def result_of(fetch: ObjectFetch, target: Path) -> DownloadResult:
    return DownloadResult(
        fetch.call_id,
        target,
        fetch.offset,
        fetch.md5_hex,
        fetch.resumed,
        fetch.attempts,
        fetch.crc32c_hex,
        fetch.content_encoding,
    )


def _log_request(fetch: ObjectFetch, url: httpx.URL, headers: dict[str, str]) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        where = headers.get("Range", "whole object")
        logger.debug("storage GET %s (%s, attempt %d)", describe_url(url), where, fetch.attempts)


def _log_verified(fetch: ObjectFetch, target: Path) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        checks: list[str] = [name for name in ("crc32c", "md5") if name in fetch.expected] or ["size only"]
        logger.debug(
            "verified %s: %d bytes, %s (%s)", target.name, fetch.offset, "+".join(checks), fetch.call_id
        )


def _claim(part: PartFile, overwrite: bool, waited: bool) -> None:
    """After winning the `.part`'s lock: refuse when the target is there (and not ours to replace)."""
    if overwrite or not part.target.exists():
        return
    part.abandon(keep=True)  # removes the empty .part we made, keeps another's partial one
    if waited:
        raise FinishedElsewhere(part.target, "another download finished it while this one waited")
    raise TargetExists(part.target)


# -- sync ------------------------------------------------------------------------------------


def receive(
    fetch: ObjectFetch,
    signed: SignedRecordingUrl,
    sign: Sign,
    storage: SyncStorage,
    settings: FetchSettings,
    cancel: threading.Event | None = None,
) -> Generator[bytes, None, None]:
    """Yield the object's bytes from `fetch.offset` to the end, resuming and re-signing as needed.

    Yields b"" once a reply's headers are accepted (`fetch.total` is then known).
    """
    step = Step()
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        if step.delay:
            if cancel is not None and settings.hooks.sleep is time.sleep:
                cancel.wait(step.delay)  # a batch's Ctrl-C ends the wait at once
            else:
                settings.hooks.sleep(step.delay)
            step = Step(resign=step.resign)
            continue  # check for cancellation again before the request
        if step.resign or signed.expired:
            logger.debug("re-signing the URL for call %s", fetch.call_id)
            signed = sign()
        url = check_storage_url(signed.url, fetch.call_id, allow_insecure=settings.allow_insecure)
        headers = fetch.start_request()
        _log_request(fetch, url, headers)
        failure: Failure | None = None
        try:
            with storage.get(url, headers, settings.timeout) as reply:
                if reply.status_code >= 300:
                    step = fetch.error_reply(reply.status_code, reply.headers, reply.read())
                    continue
                fetch.accept(reply.status_code, reply.headers, reply.goog_hash)
                yield b""
                for raw in reply.chunks():
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    chunk = fetch.feed(raw)
                    if chunk:
                        yield chunk
        except storage.errors as error:
            failure = transport_failure(error, url)
        if failure is not None:  # raised outside the handler: nothing chains the URL-bearing error
            step = fetch.transport_error(failure)
            logger.debug("storage request for call %s failed (%s); resuming", fetch.call_id, failure.kind)
            continue
        next_step = fetch.body_ended()
        if next_step is None:
            break
        step = next_step
    fetch.verify()


def lock_part(part: PartFile, cancel: threading.Event | None) -> bool:
    """Wait for the `.part`'s lock; True when another writer held it first."""
    waited = False
    pause = cancel or threading.Event()
    while not part.try_open():
        if not waited:
            logger.debug("waiting for another download of %s", part.target)
            waited = True
        if pause.wait(LOCK_POLL_SECONDS) and cancel is not None:
            raise Cancelled
    return waited


def download(
    client: Verbex,
    call_id: str,
    dest: str | os.PathLike[str],
    *,
    expires_in_minutes: int,
    overwrite: bool,
    progress: Progress | None,
    fsync: bool = True,
    cancel: threading.Event | None = None,
    claim_name: NameClaim | None = None,
    signed: SignedRecordingUrl | None = None,
    received: Callable[[], object] | None = None,
) -> DownloadResult:
    """`signed`: a URL download_many signed ahead (re-signed here if it expires before use).
    `received`: called once the whole body is in and verified, before the fsync and rename.
    """
    call_id, minutes, dest_path, dest_is_dir = plan_download(
        call_id, expires_in_minutes, dest, progress, overwrite=overwrite, fsync=fsync
    )
    client._storage_sync()  # a closed client fails here, before the API call

    def sign() -> SignedRecordingUrl:
        return client.recordings.signed_url(call_id, expires_in_minutes=minutes)

    signed = signed or sign()
    target = target_for(dest_path, signed, call_id, overwrite, claim_name, dest_is_dir)
    settings = FetchSettings.of(client)
    fetch = settings.new_fetch(call_id, "truncate")
    part = PartFile(target, fsync=fsync, call_id=call_id)
    _claim(part, overwrite, lock_part(part, cancel))
    try:
        for block in part.existing():
            fetch.hash_existing(block)
        fetch.resume_from(part.size)
        _report(progress, fetch)
        # Closed at once on a failure here (a full disk): its connection goes with it.
        with contextlib.closing(
            receive(fetch, signed, sign, client._storage_sync(), settings, cancel)
        ) as chunks:
            for chunk in chunks:
                if fetch.restarted:  # storage ignored our Range: the file starts again
                    part.truncate()
                    fetch.restarted = False
                part.write_at(fetch.offset - len(chunk), chunk)
                _report(progress, fetch)
        if fetch.restarted:
            part.truncate()
        _log_verified(fetch, target)
        if received is not None:
            received()
        part.finish(fetch.offset, overwrite)
    except BaseException as error:
        part.abandon(keep=_keep_part(error))
        raise
    return result_of(fetch, target)


class _StreamState:
    """What both stream twins expose: `file_name`, `total` and `bytes_read`."""

    def __init__(
        self, client: Verbex | AsyncVerbex, call_id: str, expires_in_minutes: int, chunk_size: int
    ) -> None:
        self.call_id = call_id
        self._minutes, self._chunk_size = expires_in_minutes, chunk_size
        self._settings = FetchSettings.of(client)
        self._fetch = self._settings.new_fetch(call_id, "skip")
        self._signed: SignedRecordingUrl | None = None

    @property
    def file_name(self) -> str:
        if self._signed is None:
            raise RuntimeError("enter the stream (`with` / `async with`) first")
        return self._signed.file_name

    @property
    def total(self) -> int | None:
        return self._fetch.total

    @property
    def bytes_read(self) -> int:
        return self._fetch.offset

    @property
    def content_encoding(self) -> str | None:
        """`gzip` for a gzip-stored object: the stream gives the stored bytes, as verified."""
        return self._fetch.content_encoding

    def __repr__(self) -> str:
        state = "not entered" if self._signed is None else f"{self.bytes_read} of {self.total} bytes"
        return f"{type(self).__name__}(call_id={self.call_id!r}, {state})"


class RecordingStream(_StreamState):
    """What `recordings.stream()` yields: `file_name`, `total`, and iteration over byte chunks."""

    def __init__(self, client: Verbex, call_id: str, expires_in_minutes: int, chunk_size: int) -> None:
        super().__init__(client, call_id, expires_in_minutes, chunk_size)
        self._client = client
        self._iterator: Iterator[bytes] | None = None

    def __enter__(self) -> Self:
        client, minutes = self._client, self._minutes
        storage = client._storage_sync()

        def sign() -> SignedRecordingUrl:
            return client.recordings.signed_url(self.call_id, expires_in_minutes=minutes)

        self._signed = sign()
        self._iterator = receive(self._fetch, self._signed, sign, storage, self._settings)
        next(self._iterator, None)  # first reply's headers: errors surface here, `total` is set
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            raise RuntimeError("use `with client.recordings.stream(...) as stream:` before iterating")
        return _rechunk(self._iterator, self._chunk_size)


def _rechunk(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Chunks of exactly `size` bytes (the last may be shorter), none empty."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


# -- async -----------------------------------------------------------------------------------


async def areceive(
    fetch: ObjectFetch,
    signed: SignedRecordingUrl,
    sign: AsyncSign,
    storage: AsyncStorage,
    settings: FetchSettings,
) -> AsyncIterator[bytes]:
    """Async twin of `receive` (cancellation arrives as asyncio.CancelledError, connect included)."""
    step = Step()
    while True:
        if step.delay:
            await settings.hooks.async_sleep(step.delay)
        if step.resign or signed.expired:
            logger.debug("re-signing the URL for call %s", fetch.call_id)
            signed = await sign()
        url = check_storage_url(signed.url, fetch.call_id, allow_insecure=settings.allow_insecure)
        headers = fetch.start_request()
        _log_request(fetch, url, headers)
        failure: Failure | None = None
        try:
            async with storage.get(url, headers, settings.timeout) as reply:
                if reply.status_code >= 300:
                    step = fetch.error_reply(reply.status_code, reply.headers, await reply.read())
                    continue
                fetch.accept(reply.status_code, reply.headers, reply.goog_hash)
                yield b""
                async for raw in reply.chunks():
                    chunk = fetch.feed(raw)
                    if chunk:
                        yield chunk
        except storage.errors as error:
            failure = transport_failure(error, url)
        if failure is not None:
            step = fetch.transport_error(failure)
            logger.debug("storage request for call %s failed (%s); resuming", fetch.call_id, failure.kind)
            continue
        next_step = fetch.body_ended()
        if next_step is None:
            break
        step = next_step
    fetch.verify()


async def on_thread(executor: Executor, fn: Callable[[], T]) -> T:
    """`fn` on a file thread; a cancellation waits for it (milliseconds: one write, one fsync),
    so nothing it does to the file happens behind the caller's back."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.shield(future)
            except BaseException:  # cancelled again meanwhile, or fn failed: wait for the end all the same
                continue
        raise


class _AsyncWriter:
    """Collects an async download's chunks and writes them a megabyte at a time on a file thread
    (a thread hop per 64 KiB chunk would cost more than the write)."""

    def __init__(self, part: PartFile, executor: Executor) -> None:
        self._part, self._executor = part, executor
        self._pending: list[bytes] = []
        self._at = 0
        self._size = 0

    async def add(self, position: int, chunk: bytes) -> None:
        if self._pending and position != self._at + self._size:
            await self.flush()
        if not self._pending:
            self._at = position
        self._pending.append(chunk)
        self._size += len(chunk)
        if self._size >= ASYNC_WRITE_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            data, at = b"".join(self._pending), self._at
            self._pending, self._size = [], 0
            await on_thread(self._executor, lambda: self._part.write_at(at, data))

    async def truncate(self) -> None:
        self._pending, self._size = [], 0
        await on_thread(self._executor, self._part.truncate)


async def alock_part(part: PartFile) -> bool:
    """Async twin of `lock_part` (non-blocking tries on the loop, asyncio.sleep between)."""
    waited = False
    while not part.try_open():
        if not waited:
            logger.debug("waiting for another download of %s", part.target)
            waited = True
        await asyncio.sleep(LOCK_POLL_SECONDS)
    return waited


async def adownload(
    client: AsyncVerbex,
    call_id: str,
    dest: str | os.PathLike[str],
    *,
    expires_in_minutes: int,
    overwrite: bool,
    progress: Progress | None,
    fsync: bool = True,
    on_finished: Callable[[DownloadResult], object] | None = None,
    claim_name: NameClaim | None = None,
    signed: SignedRecordingUrl | None = None,
    received: Callable[[], object] | None = None,
) -> DownloadResult:
    """`signed`, `received`: as for `download`. `on_finished` runs with the rename, on the file
    thread, so a cancellation never separates the two."""
    call_id, minutes, dest_path, dest_is_dir = plan_download(
        call_id, expires_in_minutes, dest, progress, overwrite=overwrite, fsync=fsync
    )
    storage = client._storage_async()

    async def sign() -> SignedRecordingUrl:
        return await client.recordings.signed_url(call_id, expires_in_minutes=minutes)

    signed = signed or await sign()
    target = target_for(dest_path, signed, call_id, overwrite, claim_name, dest_is_dir)
    settings = FetchSettings.of(client)
    fetch = settings.new_fetch(call_id, "truncate")
    part = PartFile(target, fsync=fsync, call_id=call_id)
    executor = storage.executor()
    _claim(part, overwrite, await alock_part(part))
    writer = _AsyncWriter(part, executor)
    try:

        def hash_existing() -> None:
            for block in part.existing():
                fetch.hash_existing(block)

        await on_thread(executor, hash_existing)
        fetch.resume_from(part.size)
        _report(progress, fetch)
        async for chunk in areceive(fetch, signed, sign, storage, settings):
            if fetch.restarted:
                await writer.truncate()
                fetch.restarted = False
            await writer.add(fetch.offset - len(chunk), chunk)
            _report(progress, fetch)
        await writer.flush()
        if fetch.restarted:
            await writer.truncate()
        _log_verified(fetch, target)
        if received is not None:
            received()
        result = result_of(fetch, target)

        def finish() -> None:
            part.finish(fetch.offset, overwrite)
            if on_finished is not None:
                on_finished(result)

        await on_thread(executor, finish)
    except BaseException as error:
        keep = _keep_part(error)
        if keep:  # the bytes received so far are good: on disk for a resume
            with contextlib.suppress(Exception):
                await writer.flush()
        part.abandon(keep=keep)
        raise
    return result


class AsyncRecordingStream(_StreamState):
    """Async twin of RecordingStream: `async with` and `async for`."""

    def __init__(self, client: AsyncVerbex, call_id: str, expires_in_minutes: int, chunk_size: int) -> None:
        super().__init__(client, call_id, expires_in_minutes, chunk_size)
        self._client = client
        self._iterator: AsyncIterator[bytes] | None = None

    async def __aenter__(self) -> Self:
        client, minutes = self._client, self._minutes
        storage = client._storage_async()

        async def sign() -> SignedRecordingUrl:
            return await client.recordings.signed_url(self.call_id, expires_in_minutes=minutes)

        self._signed = await sign()
        self._iterator = areceive(self._fetch, self._signed, sign, storage, self._settings)
        await anext(self._iterator, None)  # first reply's headers: errors surface here, `total` is set
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterator is None:
            raise RuntimeError("use `async with client.recordings.stream(...) as stream:` before iterating")
        return _arechunk(self._iterator, self._chunk_size)


async def _arechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
