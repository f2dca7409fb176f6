"""Moving recording bytes: streams and atomic, resumable, verified downloads.

All decisions live in `_fetch.ObjectFetch` and file handling in `PartFile`;
the sync and async loops below differ only in `await`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpx

from ._crc32c import Buffer
from ._exceptions import DownloadError, IntegrityError
from ._fetch import ObjectFetch, RestartPolicy, Step
from ._models import DownloadResult, SignedRecordingUrl
from ._paths import part_path, resolve_target
from ._storage_io import (
    TRANSPORT_ERRORS,
    Aborter,
    Opener,
    StorageReply,
    can_use_stdlib,
    httpx_opener,
    release_receive_buffers,
)
from ._validation import check_bool, check_call_id, check_expires_in_minutes

if TYPE_CHECKING:
    from ._client import AsyncVerbex, Verbex
    from ._transport import _BaseTransport

Progress = Callable[[int, "int | None"], None]
HASH_READ_SIZE = 1 << 20


class Cancelled(BaseException):
    """Raised inside a worker when its batch was interrupted (not an Exception: nothing swallows it)."""


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
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable as progress(bytes_done, bytes_total_or_None)")
    return call_id, expires_in_minutes, Path(dest)  # type: ignore[return-value]


def check_storage_url(signed: SignedRecordingUrl, call_id: str) -> None:
    """The spec types `signed_url` as any string; only an http(s) URL can be downloaded."""
    if not signed.url.startswith(("https://", "http://")) or len(signed.url) < 10:
        raise DownloadError(
            f"the API gave call {call_id!r} a signed URL that is not an http(s) URL", call_id=call_id
        )


def preflight(dest: Path, overwrite: bool) -> bool:
    """Fail before any request when `dest` names an existing file we may not replace.

    Returns whether `dest` is a directory (the recording then takes the server's file name).
    """
    if dest.is_dir():
        return True
    if not overwrite and dest.exists():
        raise FileExistsError(f"{dest} exists (pass overwrite=True to replace it)")
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"directory {dest.parent} does not exist")
    return False


NameClaim = Callable[[str, str], str]  # (call_id, safe file name) -> the name to use


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
    return call_id, minutes, dest_path, preflight(dest_path, bool(overwrite))


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
        raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    return target


def new_fetch(
    client: Verbex | AsyncVerbex, call_id: str, restart: RestartPolicy, *, threaded_hash: bool = False
) -> ObjectFetch:
    hooks = client._transport.hooks
    return ObjectFetch(
        call_id=call_id,
        max_retries=client._options.max_retries,
        restart=restart,
        jitter=hooks.jitter,
        wall_clock=hooks.wall_clock,
        threaded_hash=threaded_hash,
    )


class PartFile:
    """`<target>.part`: resumed if present, fsynced, then renamed into place; never a half target.

    With `fsync=False` the rename is still atomic (errors, Ctrl-C and a killed
    process never leave a half target) but a power loss may: curl's guarantee.
    A raw descriptor, not a buffered file: writes are 1 MiB chunks already, and
    each system call spared is a GIL hand-over spared when many download at once.
    """

    def __init__(self, target: Path, fetch: ObjectFetch, *, fsync: bool = True) -> None:
        self.target, self.path, self.fetch = target, part_path(target), fetch
        self.fsync = fsync
        self.fd: int | None = None
        self._unsynced = 0
        self._flusher: _Flusher | None = None

    def open(self) -> None:
        """Open for appending; bytes already there are hashed and resumed from.

        A `.part` that is a symbolic link is refused (O_NOFOLLOW): it could point anywhere.
        """
        self.fd = os.open(self.path, _PART_FLAGS, 0o644)
        size = 0
        if os.fstat(self.fd).st_size:
            while block := os.pread(self.fd, HASH_READ_SIZE, size):
                self.fetch.hash_existing(block)
                size += len(block)
        self.fetch.offset = size
        self.fetch.resumed = size > 0

    def write(self, chunk: Buffer) -> None:
        assert self.fd is not None
        if self.fetch.restarted:  # storage ignored our Range: start the file again
            os.ftruncate(self.fd, 0)  # O_APPEND: the next write lands at 0
            self.fetch.restarted = False
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]
        self._unsynced += len(chunk)
        if self._unsynced >= FLUSH_EVERY and self.fsync:
            # Write back in the background as we go, so the final fsync is short.
            self._unsynced = 0
            if self._flusher is None:
                self._flusher = _Flusher(self.fd)
            self._flusher.poke()

    def finish(self, overwrite: bool) -> None:
        """fsync, then atomically give the file its real name."""
        assert self.fd is not None
        self._stop_flusher()
        if self.fsync:
            _sync_data(self.fd)
        self.close()
        if overwrite:
            os.replace(self.path, self.target)
        else:
            try:
                os.link(self.path, self.target)  # atomic and refuses to clobber
            except FileExistsError:
                raise FileExistsError(
                    f"{self.target} appeared during the download; kept {self.path}"
                ) from None
            except OSError:  # filesystems without hard links
                if self.target.exists():
                    raise FileExistsError(
                        f"{self.target} exists (pass overwrite=True to replace it)"
                    ) from None
                os.replace(self.path, self.target)
            else:
                os.unlink(self.path)
        if self.fsync:
            _fsync_dir(self.target.parent)

    def _stop_flusher(self) -> None:
        if self._flusher is not None:
            self._flusher.stop()
            self._flusher = None

    def close(self) -> None:
        self._stop_flusher()
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def abandon(self, error: BaseException) -> None:
        """After a failure: drop a corrupt or empty .part, keep a partial one to resume."""
        self.close()
        if isinstance(error, IntegrityError) or (self.path.exists() and self.path.stat().st_size == 0):
            self.path.unlink(missing_ok=True)


_PART_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


FLUSH_EVERY = 32 << 20


def _sync_data(fd: int) -> None:
    """The data and the size that reads it back (not the times: fdatasync is cheaper); the
    name is made durable by the directory's fsync after the rename. No fdatasync on macOS.
    """
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


class _Flusher:
    """A thread that fdatasyncs a file when poked (the kernel writes back while we download)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._wake = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="verbex-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._done:
                return
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._done = True
        self._wake.set()
        self._thread.join()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _report(progress: Progress | None, fetch: ObjectFetch) -> None:
    if progress is not None:
        progress(fetch.offset, fetch.total)


# -- sync ------------------------------------------------------------------------------------


def storage_opener(transport: _BaseTransport, *, zero_copy: bool, aborter: Aborter | None = None) -> Opener:
    """How storage requests are sent: httpx, or the stdlib zero-copy path where it is equivalent."""
    if not zero_copy:
        return httpx_opener(transport.sync_storage_http())
    pool = transport.stdlib_pool()

    def open_reply(url: str, headers: dict[str, str]) -> AbstractContextManager[StorageReply]:
        if can_use_stdlib(url, pool.proxies):
            return pool.open(url, headers, aborter)
        return httpx_opener(transport.sync_storage_http())(url, headers)  # created only if needed

    return open_reply


def iter_object(
    client: Verbex,
    fetch: ObjectFetch,
    signed: SignedRecordingUrl,
    expires_in_minutes: int,
    cancel: threading.Event | None = None,
    *,
    zero_copy: bool = False,
) -> Iterator[Buffer]:
    """Yield the object's bytes from `fetch.offset` to the end, resuming and re-signing as needed.

    Chunks are yielded as they arrive (httpx's own re-chunking would lose
    buffered bytes when a connection drops); streams re-chunk afterwards.
    With `zero_copy`, chunks may be bytearrays or memoryviews.
    """
    return fetch_object(
        fetch,
        signed,
        expires_in_minutes,
        open_reply=storage_opener(client._transport, zero_copy=zero_copy),
        sign=client.recordings.signed_url,
        sleep=client._transport.hooks.sleep,
        cancel=cancel,
    )


def fetch_object(
    fetch: ObjectFetch,
    signed: SignedRecordingUrl,
    expires_in_minutes: int,
    *,
    open_reply: Opener,
    sign: Callable[..., SignedRecordingUrl],
    sleep: Callable[[float], object],
    cancel: threading.Event | None,
) -> Iterator[Buffer]:
    """The blocking loop behind iter_object, free of any client (async downloads run it on a thread)."""
    step = Step()
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        if step.delay:
            sleep(step.delay)
            step = Step(resign=step.resign)
            continue  # check for cancellation again before the request
        if step.resign or signed.expired:
            signed = sign(fetch.call_id, expires_in_minutes=expires_in_minutes)
        check_storage_url(signed, fetch.call_id)
        try:
            with open_reply(signed.url, fetch.start_request()) as reply:
                if reply.status_code >= 300:
                    step = fetch.error_reply(reply.status_code, reply.headers, reply.read())
                    if fetch.complete:
                        break
                    continue
                fetch.accept(reply.status_code, reply.headers, reply.goog_hash)
                yield b""  # headers accepted: `total` is known (streams wait for this on entry)
                for raw in reply.chunks():
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    chunk = fetch.feed(raw)
                    if len(chunk):
                        yield chunk
        except TRANSPORT_ERRORS as error:
            step = fetch.transport_error(error)  # type: ignore[arg-type]
            continue
        next_step = fetch.body_ended()
        if next_step is None:
            break
        step = next_step
    fetch.verify()


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
    `received`: called once the whole body is in, before the fsync and rename.
    """
    call_id, minutes, dest_path, dest_is_dir = plan_download(
        call_id, expires_in_minutes, dest, progress, overwrite=overwrite, fsync=fsync
    )
    if signed is None:
        signed = client.recordings.signed_url(call_id, expires_in_minutes=minutes)
    target = target_for(dest_path, signed, call_id, overwrite, claim_name, dest_is_dir)
    return write_object(
        new_fetch(client, call_id, "truncate", threaded_hash=True),
        target,
        lambda fetch: iter_object(client, fetch, signed, minutes, cancel, zero_copy=True),
        overwrite=overwrite,
        fsync=fsync,
        progress=progress,
        received=received,
    )


def write_object(
    fetch: ObjectFetch,
    target: Path,
    chunks_of: Callable[[ObjectFetch], Iterator[Buffer]],
    *,
    overwrite: bool,
    fsync: bool,
    progress: Progress | None,
    received: Callable[[], object] | None = None,
) -> DownloadResult:
    """Receive the object into `target` through its `.part`: sync downloads, and async ones on
    their thread. Blocking; failures leave a resumable `.part` or nothing. `received` is
    called when the body is in and verified, before the fsync and rename.
    """
    part = PartFile(target, fetch, fsync=fsync)
    try:
        part.open()
        _report(progress, fetch)
        for chunk in chunks_of(fetch):
            part.write(chunk)
            _report(progress, fetch)
        if received is not None:
            received()
        part.finish(overwrite)
    except BaseException as error:
        part.abandon(error)
        raise
    finally:
        fetch.close()  # stops the hashing thread on every path
        release_receive_buffers()  # after close(): no chunk is still being hashed
    return result_of(fetch, target)


def result_of(fetch: ObjectFetch, target: Path) -> DownloadResult:
    return DownloadResult(
        fetch.call_id, target, fetch.offset, fetch.md5_hex, fetch.resumed, fetch.attempts, fetch.crc32c_hex
    )


class _StreamState:
    """What both stream twins expose: `file_name`, `total` and `bytes_read`."""

    def __init__(
        self, client: Verbex | AsyncVerbex, call_id: str, expires_in_minutes: int, chunk_size: int
    ) -> None:
        self.call_id = call_id
        self._minutes, self._chunk_size = expires_in_minutes, chunk_size
        self._fetch = new_fetch(client, call_id, "skip")
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


class RecordingStream(_StreamState):
    """What `recordings.stream()` yields: `file_name`, `total`, and iteration over byte chunks."""

    def __init__(self, client: Verbex, call_id: str, expires_in_minutes: int, chunk_size: int) -> None:
        super().__init__(client, call_id, expires_in_minutes, chunk_size)
        self._client = client
        self._iterator: Iterator[Buffer] | None = None

    def __enter__(self) -> Self:
        self._signed = self._client.recordings.signed_url(self.call_id, expires_in_minutes=self._minutes)
        self._iterator = iter_object(self._client, self._fetch, self._signed, self._minutes)
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


def _rechunk(chunks: Iterator[Buffer], size: int) -> Iterator[bytes]:
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


async def aiter_object(
    client: AsyncVerbex,
    fetch: ObjectFetch,
    signed: SignedRecordingUrl,
    expires_in_minutes: int,
) -> AsyncIterator[bytes]:
    """Async twin of iter_object (cancellation arrives as asyncio.CancelledError)."""
    hooks = client._transport.hooks
    http = client._transport.storage_http()
    step = Step()
    while True:
        if step.delay:
            await hooks.async_sleep(step.delay)
        if step.resign or signed.expired:
            signed = await client.recordings.signed_url(fetch.call_id, expires_in_minutes=expires_in_minutes)
        check_storage_url(signed, fetch.call_id)
        try:
            async with http.stream("GET", signed.url, headers=fetch.start_request()) as response:
                if response.status_code >= 300:
                    step = fetch.error_reply(response.status_code, response.headers, await response.aread())
                    if fetch.complete:
                        break
                    continue
                fetch.accept(response.status_code, response.headers, response.headers.get_list("x-goog-hash"))
                yield b""  # headers accepted: `total` is known (streams wait for this on entry)
                async for raw in response.aiter_raw():
                    chunk = fetch.feed(raw)
                    if chunk:
                        yield bytes(chunk)  # already bytes here: no copy
        except httpx.TransportError as error:
            step = fetch.transport_error(error)
            continue
        next_step = fetch.body_ended()
        if next_step is None:
            break
        step = next_step
    fetch.verify()


async def _finish_off_loop(part: PartFile, overwrite: bool, then: Callable[[], object]) -> None:
    """fsync can take a while: rename (and `then`, e.g. the manifest line) on a thread.

    A cancellation waits for the thread (milliseconds): the file is in place
    and recorded, or neither, never renamed behind the caller's back.
    """

    def finish() -> None:
        part.finish(overwrite)
        then()

    await _run_and_wait(finish)


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
    """`signed`, `received`: as for `download` (`received` may be called from another thread)."""
    call_id, minutes, dest_path, dest_is_dir = plan_download(
        call_id, expires_in_minutes, dest, progress, overwrite=overwrite, fsync=fsync
    )
    if signed is None:
        signed = await client.recordings.signed_url(call_id, expires_in_minutes=minutes)
    target = target_for(dest_path, signed, call_id, overwrite, claim_name, dest_is_dir)
    done: list[DownloadResult] = []

    def record(result: DownloadResult) -> None:
        done.append(result)
        if on_finished is not None:
            on_finished(result)

    if can_use_stdlib(signed.url, client._transport.stdlib_pool().proxies):
        await _adownload_on_thread(
            client, call_id, signed, minutes, target, overwrite, fsync, progress, record, received
        )
        return done[0]
    fetch = new_fetch(client, call_id, "truncate")
    part = PartFile(target, fetch, fsync=fsync)
    try:
        part.open()
        _report(progress, fetch)
        async for chunk in aiter_object(client, fetch, signed, minutes):
            part.write(chunk)
            _report(progress, fetch)
        if received is not None:
            received()
        await _finish_off_loop(part, overwrite, lambda: record(result_of(fetch, target)))
    except BaseException as error:
        part.abandon(error)
        raise
    return done[0]


async def _adownload_on_thread(
    client: AsyncVerbex,
    call_id: str,
    signed: SignedRecordingUrl,
    minutes: int,
    target: Path,
    overwrite: bool,
    fsync: bool,
    progress: Progress | None,
    record: Callable[[DownloadResult], None],
    received: Callable[[], object] | None,
) -> None:
    """The sync zero-copy download on a thread of its own; the event loop only re-signs URLs and
    runs `progress`. httpx's async reads cost ~3x the CPU per byte, and file writes and fsync
    would block the loop. A cancellation stops the thread at once (its socket is shut down)
    and waits for it, so the `.part` is left resumable and never written behind our back.
    """
    loop = asyncio.get_running_loop()
    transport = client._transport
    cancel, aborter = threading.Event(), Aborter()
    callback_errors: list[BaseException] = []
    signing: list[concurrent.futures.Future[SignedRecordingUrl]] = []

    def sign(call_id: str, *, expires_in_minutes: int) -> SignedRecordingUrl:
        future = asyncio.run_coroutine_threadsafe(
            client.recordings.signed_url(call_id, expires_in_minutes=expires_in_minutes), loop
        )
        signing[:] = [future]
        return future.result()

    def report_on_loop(done: int, total: int | None) -> None:
        def call() -> None:
            try:
                progress(done, total)  # type: ignore[misc]  # only passed on when set
            except BaseException as error:  # raised out of adownload, as from the sync loop
                callback_errors.append(error)
                stop()

        loop.call_soon_threadsafe(call)

    def stop() -> None:
        cancel.set()
        aborter.abort()
        for future in signing:
            future.cancel()

    def chunks_of(fetch: ObjectFetch) -> Iterator[Buffer]:
        return fetch_object(
            fetch,
            signed,
            minutes,
            open_reply=storage_opener(transport, zero_copy=True, aborter=aborter),
            sign=sign,
            sleep=cancel.wait if transport.hooks.sleep is time.sleep else transport.hooks.sleep,
            cancel=cancel,
        )

    def run() -> None:
        fetch = new_fetch(client, call_id, "truncate", threaded_hash=True)
        report = report_on_loop if progress is not None else None
        record(
            write_object(
                fetch, target, chunks_of, overwrite=overwrite, fsync=fsync, progress=report, received=received
            )
        )

    async with transport.download_slots():
        try:
            await _run_and_wait(run, stop)
        except Cancelled:
            if not callback_errors:
                raise
    if callback_errors:  # a progress callback raised: the download stopped, its error goes up
        raise callback_errors[0]


async def _run_and_wait(run: Callable[[], None], stop: Callable[[], None] = lambda: None) -> None:
    """`run` on a thread of its own; a cancellation calls `stop` and waits for the thread to end,
    so nothing it does (writing, renaming) happens behind the caller's back.
    """
    finished = _run_on_thread(run)
    try:
        await asyncio.shield(finished)
    except asyncio.CancelledError:
        stop()
        await _wait_for(finished)
        raise


def _run_on_thread(fn: Callable[[], None]) -> asyncio.Future[None]:
    """`fn` on a new daemon thread (not the default executor: it has only cpu+4 workers)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if not future.done():
            future.set_result(None) if error is None else future.set_exception(error)

    def target() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=target, name="verbex-adownload", daemon=True).start()
    return future


async def _wait_for(future: asyncio.Future[None]) -> None:
    """Until `future` is done, whatever it raises, even if we are cancelled again meanwhile."""
    while not future.done():
        with contextlib.suppress(BaseException):
            await asyncio.shield(future)


class AsyncRecordingStream(_StreamState):
    """Async twin of RecordingStream: `async with` and `async for`."""

    def __init__(self, client: AsyncVerbex, call_id: str, expires_in_minutes: int, chunk_size: int) -> None:
        super().__init__(client, call_id, expires_in_minutes, chunk_size)
        self._client = client
        self._iterator: AsyncIterator[bytes] | None = None

    async def __aenter__(self) -> Self:
        self._signed = await self._client.recordings.signed_url(
            self.call_id, expires_in_minutes=self._minutes
        )
        self._iterator = aiter_object(self._client, self._fetch, self._signed, self._minutes)
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
