"""`download_many`: bounded-concurrency archives with a resumable manifest.

`dest_dir/manifest.jsonl` gets one JSON line per finished download, written
with a single append and fsynced, so an interrupted run leaves a manifest
that parses and a rerun skips what is done without calling the API.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._download import Cancelled, FinishedElsewhere, adownload, download
from ._files import TargetExists
from ._models import DownloadResult, SignedRecordingUrl
from ._paths import MANIFEST_NAME, name_key, with_tag
from ._validation import check_bool, check_call_id, check_expires_in_minutes, check_positive_int

if TYPE_CHECKING:
    from ._client import AsyncVerbex, Verbex

SCHEMES = ("s3", "gs", "file")  # destinations that go to an object store (see _object_store)
BatchProgress = Callable[[str, int, "int | None"], None]
OnItem = Callable[["BatchItem"], object]
Status = Literal["downloaded", "skipped", "failed"]


@attrs.frozen
class BatchItem:
    """The outcome for one call id: `status` is "downloaded", "skipped" or "failed".

    `path` is the local file; with an object-store destination it is None and `url` names
    the object (`s3://bucket/prefix/name`).
    """

    call_id: str
    status: Status
    path: Path | None = None
    error: Exception | None = None
    bytes: int = 0
    url: str | None = None

    @property
    def location(self) -> str | None:
        """Where the recording is: the object's URL or the file's path (None when it failed)."""
        return self.url if self.url is not None else (str(self.path) if self.path is not None else None)


@attrs.frozen
class BatchResult:
    """One item per distinct call id, in input order."""

    results: tuple[BatchItem, ...]

    @property
    def ok(self) -> bool:
        return all(item.status != "failed" for item in self.results)

    def _with(self, status: Status) -> list[BatchItem]:
        return [item for item in self.results if item.status == status]

    @property
    def downloaded(self) -> list[BatchItem]:
        return self._with("downloaded")

    @property
    def skipped(self) -> list[BatchItem]:
        return self._with("skipped")

    @property
    def failed(self) -> list[BatchItem]:
        return self._with("failed")

    def raise_for_failures(self) -> None:
        """Raise an ExceptionGroup of every failure (nothing when all succeeded)."""
        errors = [item.error for item in self.failed if item.error is not None]
        if errors:
            raise ExceptionGroup(f"{len(errors)} of {len(self.results)} downloads failed", errors)


def is_store_url(dest: str) -> bool:
    """`s3://`, `gs://` or `file://`: an object-store destination (anything else is a local path)."""
    scheme, sep, _ = dest.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """One manifest line's entry, or None for a line that is not one (a torn last line from a
    crash: that download is simply redone)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("call_id"), str) else None


class ManifestBase:
    """What every destination's manifest shares: the finished entries, read from JSON lines,
    the entry a finished download adds, and the name-collision rule (`claim`).

    Subclasses say where the lines live and whether a name is taken outside this batch
    (`_taken_elsewhere`): a file in the directory, or another process's claim in a bucket.
    """

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        # name_key(file name) -> the call id writing or owning it: names one file on a
        # case-insensitive file system (macOS, Windows) are one name here too.
        self._claims: dict[str, str] = {}
        self._lock = threading.Lock()

    def _load_lines(
        self, lines: str | Iterable[str | bytes], keep: Callable[[str], bool] | None = None
    ) -> None:
        """Add the entries of manifest lines (a later line for a call wins); `keep` filters call ids."""
        for line in lines.splitlines() if isinstance(lines, str) else lines:
            entry = parse_line(line)
            if entry is None or (keep is not None and not keep(entry["call_id"])):
                continue
            self.entries[entry["call_id"]] = entry
            if isinstance(entry.get("file"), str):
                self._claims[name_key(entry["file"])] = entry["call_id"]

    def _taken_elsewhere(self, name: str, call_id: str) -> bool:
        """Whether `name` belongs to something outside this batch's claims (see subclasses)."""
        return False

    def claim(self, call_id: str, name: str) -> str:
        """The file name `call_id` writes: `name`, or `<stem>.<call_id><suffix>` when another
        call of this batch or of the manifest already has it, or a file in dest differs from it
        only by case (APIs may reuse file names; macOS and Windows fold case).
        """
        candidate, n = name, 1
        while True:
            with self._lock:
                mine = self._claims.setdefault(name_key(candidate), call_id) == call_id
            if mine and not self._taken_elsewhere(candidate, call_id):
                return candidate
            n += 1
            candidate = with_tag(name, call_id if n == 2 else f"{call_id}.{n - 1}")

    @staticmethod
    def entry_for(
        call_id: str, file_name: str, size: int, crc32c: str | None, md5: str | None
    ) -> dict[str, Any]:
        """The manifest line of a verified download (`file` is the name inside dest)."""
        return {
            "call_id": call_id,
            "file": file_name,
            "bytes": size,
            "crc32c": crc32c,
            "md5": md5,
            "finished_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }

    @staticmethod
    def line_of(entry: dict[str, Any]) -> bytes:
        return (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")


class Manifest(ManifestBase):
    """`dest_dir/manifest.jsonl`: reads the finished entries and appends new ones, one line at a time."""

    def __init__(self, dest_dir: Path, *, fsync: bool = True) -> None:
        super().__init__()
        self.dest_dir = dest_dir
        self.fsync = fsync
        self.path = dest_dir / MANIFEST_NAME
        self._present: dict[str, str] | None = None  # name_key -> the name of a file already in dest
        self._fd: int | None = None
        self._closer: weakref.finalize[[int], Manifest] | None = None
        if self.path.exists():
            self._load_lines(self.path.read_text(encoding="utf-8", errors="replace"))

    def _taken_elsewhere(self, name: str, call_id: str) -> bool:
        """A file already in dest whose name differs from `name` only by case or normalisation."""
        if self._present is None:
            try:
                self._present = {name_key(n): n for n in os.listdir(self.dest_dir)}
            except OSError:
                self._present = {}
        present = self._present.get(name_key(name))
        return present is not None and present != name

    def finished(self, call_id: str) -> BatchItem | None:
        """A "skipped" item when the manifest lists the call and its file is there at that size."""
        entry = self.entries.get(call_id)
        if entry is None or not isinstance(entry.get("file"), str) or not isinstance(entry.get("bytes"), int):
            return None
        path = self.dest_dir / entry["file"]
        if (
            path.parent != self.dest_dir
            or path.name == MANIFEST_NAME
            or not path.is_file()
            or path.stat().st_size != entry["bytes"]
        ):
            return None
        return BatchItem(call_id, "skipped", path, None, entry["bytes"])

    def append(self, result: DownloadResult) -> None:
        entry = self.entry_for(result.call_id, result.path.name, result.bytes, result.crc32c, result.md5)
        line = self.line_of(entry)
        with self._lock:
            if self._fd is None:
                # Opened once per batch (not per line); closed by close(), or when the last
                # worker lets go of the manifest if the batch was interrupted.
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._closer = weakref.finalize(self, os.close, self._fd)
            fd = self._fd
            os.write(fd, line)  # one write with O_APPEND: never interleaved, never torn mid-file
            self.entries[result.call_id] = entry
        if self.fsync:
            os.fsync(fd)  # outside the lock: concurrent finishers share one journal commit

    def close(self) -> None:
        """After every worker is done (an interrupted batch leaves it to garbage collection)."""
        with self._lock:
            self._fd = None
            if self._closer is not None:
                self._closer()


def plan_batch(
    call_ids: Iterable[str],
    dest_dir: object,
    concurrency: object,
    expires_in_minutes: object,
    progress: object,
    *,
    overwrite: object,
    fsync: object,
    on_item: object = None,
) -> tuple[list[str], Manifest]:
    """Validate everything before any request; distinct ids in input order, and the manifest."""
    ids = check_batch_args(call_ids, concurrency, expires_in_minutes, progress, overwrite, fsync, on_item)
    if not isinstance(dest_dir, str | os.PathLike):
        raise TypeError(f"dest_dir must be a str or os.PathLike, not {type(dest_dir).__name__}")
    directory = Path(dest_dir)
    if directory.exists() and not directory.is_dir():
        raise TargetExists(directory, "and is not a directory: name a directory for several recordings")
    directory.mkdir(parents=True, exist_ok=True)
    return ids, Manifest(directory, fsync=bool(fsync))


def check_batch_args(
    call_ids: Iterable[str],
    concurrency: object,
    expires_in_minutes: object,
    progress: object,
    overwrite: object,
    fsync: object,
    on_item: object,
) -> list[str]:
    """The checks every destination makes before any request; the distinct ids in input order."""
    if isinstance(call_ids, str | bytes):
        raise TypeError("call_ids must be an iterable of call id strings, not a single string")
    ids = list(dict.fromkeys(check_call_id(c) for c in call_ids))
    check_positive_int("concurrency", concurrency)
    check_expires_in_minutes(expires_in_minutes)
    check_bool("overwrite", overwrite)
    check_bool("fsync", fsync)
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable as progress(call_id, bytes_done, bytes_total_or_None)")
    if on_item is not None and not callable(on_item):
        raise TypeError("on_item must be callable as on_item(batch_item)")
    return ids


def _per_call(progress: BatchProgress | None, call_id: str) -> Callable[[int, int | None], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(call_id, done, total)


def _failed(call_id: str, error: Exception) -> BatchItem:
    if isinstance(error, FinishedElsewhere):  # another worker or process finished it meanwhile
        return BatchItem(call_id, "skipped", Path(error.filename), None, os.stat(error.filename).st_size)
    return BatchItem(call_id, "failed", None, error)


Work = Callable[[str, SignedRecordingUrl, Callable[[], None], threading.Event], BatchItem]


def download_many(
    client: Verbex,
    call_ids: Iterable[str],
    dest_dir: str | os.PathLike[str],
    *,
    concurrency: int,
    overwrite: bool,
    progress: BatchProgress | None,
    expires_in_minutes: int,
    fsync: bool = True,
    on_item: OnItem | None = None,
) -> BatchResult:
    if isinstance(dest_dir, str) and is_store_url(dest_dir):
        from ._object_store import download_many_to_store

        return download_many_to_store(
            client,
            call_ids,
            dest_dir,
            concurrency=concurrency,
            overwrite=overwrite,
            progress=progress,
            expires_in_minutes=expires_in_minutes,
            fsync=fsync,
            on_item=on_item,
        )
    ids, manifest = plan_batch(
        call_ids,
        dest_dir,
        concurrency,
        expires_in_minutes,
        progress,
        overwrite=overwrite,
        fsync=fsync,
        on_item=on_item,
    )
    reporter = Reporter(ids, on_item)
    for cid in ids:
        if (done := manifest.finished(cid)) is not None:
            reporter.report(done)

    def work(
        call_id: str, url: SignedRecordingUrl, received: Callable[[], None], cancel: threading.Event
    ) -> BatchItem:
        try:
            result = download(
                client,
                call_id,
                manifest.dest_dir,
                expires_in_minutes=expires_in_minutes,
                overwrite=overwrite,
                progress=_per_call(progress, call_id),
                fsync=fsync,
                cancel=cancel,
                claim_name=manifest.claim,
                signed=url,
                received=received,
            )
        except Exception as error:  # one failure never stops the batch
            return _failed(call_id, error)
        manifest.append(result)
        return BatchItem(call_id, "downloaded", result.path, None, result.bytes)

    run_signed(
        client,
        reporter.pending(),
        concurrency=concurrency,
        workers=finishing_workers(concurrency, fsync=fsync),
        expires_in_minutes=expires_in_minutes,
        work=work,
        report=reporter.report,
    )
    manifest.close()
    return reporter.result()


class Reporter:
    """The batch's items as they become known; `on_item` is never called by two threads at once."""

    def __init__(self, ids: list[str], on_item: OnItem | None) -> None:
        self.ids, self._on_item = ids, on_item
        self.items: dict[str, BatchItem] = {}
        self._lock = threading.Lock()

    def report(self, item: BatchItem) -> None:
        self.items[item.call_id] = item
        if self._on_item is not None:
            with self._lock:
                self._on_item(item)

    def pending(self) -> list[str]:
        return [cid for cid in self.ids if cid not in self.items]

    def result(self) -> BatchResult:
        return BatchResult(tuple(self.items[cid] for cid in self.ids))


def run_signed(
    client: Verbex,
    todo: list[str],
    *,
    concurrency: int,
    workers: int,
    expires_in_minutes: int,
    work: Work,
    report: Callable[[BatchItem], None],
) -> None:
    """Sign `todo`'s URLs ahead and run `work` on at most `concurrency` of them at once (each
    gives its slot back through `received` once its body is in); every outcome to `report`.

    The destination is `work`'s business: a directory (`download`) or an object store.
    """
    cancel = threading.Event()
    interrupted: list[BaseException] = []
    workers = min(workers, len(todo))
    signed = _SigningAhead(client, todo, concurrency, workers, expires_in_minutes, cancel)
    receiving = threading.Semaphore(concurrency)  # bodies received at once (see _HeldSlot)

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except Cancelled:
                return
            except BaseException as error:  # e.g. KeyboardInterrupt raised by a progress callback
                interrupted.append(error)
                cancel.set()

        return run

    def worker() -> None:
        while acquire_unless_cancelled(receiving, cancel):
            slot = _HeldSlot(receiving.release)
            try:
                job = signed.next()
                if job is None:
                    return
                call_id, url = job
                report(
                    work(call_id, url, slot.release, cancel)
                    if isinstance(url, SignedRecordingUrl)
                    else _failed(call_id, url)
                )
            finally:
                slot.release()

    # Daemon threads, not an executor: after Ctrl-C we must not wait for a
    # request blocked on the network. Whatever they still finish is complete
    # and verified (targets appear only by atomic rename), so leaving is safe.
    threads = [
        threading.Thread(target=guarded(worker), name=f"verbex-download-{n}", daemon=True)
        for n in range(workers)
    ]
    threads += [
        threading.Thread(target=guarded(signed.run), name=f"verbex-sign-{n}", daemon=True)
        for n in range(signed.threads if todo else 0)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            # An interruption (a callback raised: Ctrl-C, a closed stdout) stops waiting at once:
            # _stop gives workers a moment, not a stalled read's whole timeout.
            while thread.is_alive() and not interrupted:
                thread.join(0.2)
    except BaseException:
        _stop(cancel, threads)
        raise
    if interrupted:
        _stop(cancel, threads)
        raise interrupted[0]


def finishing_workers(concurrency: int, *, fsync: bool) -> int:
    """Workers for `concurrency` downloads at once: twice as many when files are fsynced, so
    that while some wait for the disk as many others receive (the fsync does not hold a slot).
    """
    return concurrency * 2 if fsync else concurrency


def acquire_unless_cancelled(slots: threading.Semaphore, cancel: threading.Event) -> bool:
    """Wait for a permit, checking `cancel` meanwhile; False (holding none) once cancelled."""
    while not slots.acquire(timeout=0.2):
        if cancel.is_set():
            return False
    if cancel.is_set():
        slots.release()
        return False
    return True


class _HeldSlot:
    """One item's receiving slot: given back once, when its body is in (download's `received`,
    before the fsync and rename) or when the item ends, whichever comes first.
    """

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._give_back: Callable[[], None] | None = give_back

    def release(self) -> None:
        give_back, self._give_back = self._give_back, None
        if give_back is not None:
            give_back()


SIGNED_PER_SIGNER = 16  # download workers one signing thread (or task) keeps supplied


def signing_threads(concurrency: int, calls: int) -> int:
    """How many sign URLs at once for `concurrency` download workers: one per sixteen, at least one."""
    return max(min(-(-concurrency // SIGNED_PER_SIGNER), calls), 1)


class _SigningAhead:
    """Signs the batch's URLs on their own threads, at most `concurrency` ahead of the downloads.

    Each API call then happens while earlier recordings download, instead of
    in front of each download: with 16 workers each calling the API itself,
    a call waited ~30 ms here for the CPU, GIL and connection pool (see
    benchmarks/RESULTS.md). A signing error is handed to a worker as that
    call's failure. URLs are used within about one wave of downloads, and a
    URL that expires before its download starts is signed again there.
    """

    def __init__(
        self,
        client: Verbex,
        call_ids: list[str],
        concurrency: int,
        workers: int,
        expires_in_minutes: int,
        cancel: threading.Event,
    ) -> None:
        self._client, self._minutes, self._cancel = client, expires_in_minutes, cancel
        self._ids = iter(call_ids)
        self._take = threading.Lock()
        self._ahead = threading.Semaphore(concurrency)  # signed but not yet taken by a worker
        self._ready: queue.Queue[tuple[str, SignedRecordingUrl | Exception] | None] = queue.Queue()
        self.threads = signing_threads(concurrency, len(call_ids))
        self._running = self.threads
        self._workers = workers  # each is told to stop once the ids run out

    def run(self) -> None:
        """A signing thread: sign the next id while there is room ahead; then tell workers to stop."""
        try:
            while acquire_unless_cancelled(self._ahead, self._cancel):
                with self._take:
                    call_id = next(self._ids, None)
                if call_id is None:
                    self._ahead.release()
                    return
                try:
                    url: SignedRecordingUrl | Exception = self._client.recordings.signed_url(
                        call_id, expires_in_minutes=self._minutes
                    )
                except Exception as error:  # the call's failure, reported by a worker
                    url = error
                self._ready.put((call_id, url))
        finally:
            with self._take:
                self._running -= 1
                last = self._running == 0
            if last:
                for _ in range(self._workers):
                    self._ready.put(None)

    def next(self) -> tuple[str, SignedRecordingUrl | Exception] | None:
        """The next signed call for a worker, or None when the batch is done or cancelled."""
        while not self._cancel.is_set():
            try:
                job = self._ready.get(timeout=0.2)
            except queue.Empty:
                continue
            if job is not None:
                self._ahead.release()
            return job
        return None


def _stop(cancel: threading.Event, workers: list[threading.Thread], grace: float = 2.0) -> None:
    """Ask workers to stop at their next chunk; wait a little, not for stuck requests."""
    cancel.set()
    deadline = time.monotonic() + grace
    for thread in workers:
        thread.join(max(deadline - time.monotonic(), 0))


async def adownload_many(
    client: AsyncVerbex,
    call_ids: Iterable[str],
    dest_dir: str | os.PathLike[str],
    *,
    concurrency: int,
    overwrite: bool,
    progress: BatchProgress | None,
    expires_in_minutes: int,
    fsync: bool = True,
    on_item: OnItem | None = None,
) -> BatchResult:
    if isinstance(dest_dir, str) and is_store_url(dest_dir):
        from ._object_store import adownload_many_to_store

        return await adownload_many_to_store(
            client,
            call_ids,
            dest_dir,
            concurrency=concurrency,
            overwrite=overwrite,
            progress=progress,
            expires_in_minutes=expires_in_minutes,
            fsync=fsync,
            on_item=on_item,
        )
    ids, manifest = plan_batch(
        call_ids,
        dest_dir,
        concurrency,
        expires_in_minutes,
        progress,
        overwrite=overwrite,
        fsync=fsync,
        on_item=on_item,
    )
    items = {cid: done for cid in ids if (done := manifest.finished(cid)) is not None}

    def report(item: BatchItem) -> None:
        items[item.call_id] = item
        if on_item is not None:
            on_item(item)

    for item in list(items.values()):
        report(item)
    pending = [cid for cid in ids if cid not in items]
    todo = iter(pending)
    workers = min(finishing_workers(concurrency, fsync=fsync), len(pending))
    ahead = asyncio.Semaphore(concurrency)  # signed but not yet taken by a worker (see _SigningAhead)
    receiving = asyncio.Semaphore(concurrency)  # see _HeldSlot
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[tuple[str, SignedRecordingUrl | Exception] | None] = asyncio.Queue()

    async def sign() -> None:
        while True:
            await ahead.acquire()
            call_id = next(todo, None)
            if call_id is None:
                ahead.release()
                return
            try:
                url: SignedRecordingUrl | Exception = await client.recordings.signed_url(
                    call_id, expires_in_minutes=expires_in_minutes
                )
            except Exception as error:  # the call's failure, reported by a worker
                url = error
            ready.put_nowait((call_id, url))

    async def sign_all() -> None:
        await asyncio.gather(*(sign() for _ in range(signing_threads(concurrency, len(pending)))))
        for _ in range(workers):
            ready.put_nowait(None)

    async def work(call_id: str, url: SignedRecordingUrl, received: Callable[[], object]) -> BatchItem:
        try:
            result = await adownload(
                client,
                call_id,
                manifest.dest_dir,
                expires_in_minutes=expires_in_minutes,
                overwrite=overwrite,
                progress=_per_call(progress, call_id),
                fsync=fsync,
                on_finished=manifest.append,  # with the rename, even if cancelled meanwhile
                claim_name=manifest.claim,
                signed=url,
                received=received,
            )
        except Exception as error:  # one failure never stops the batch
            return _failed(call_id, error)
        return BatchItem(call_id, "downloaded", result.path, None, result.bytes)

    async def worker() -> None:
        while True:
            await receiving.acquire()
            slot = _HeldSlot(receiving.release)
            try:
                job = await ready.get()
                if job is None:
                    return
                ahead.release()
                call_id, url = job
                report(
                    # `received` runs on the download's thread: the release goes to the loop
                    await work(call_id, url, functools.partial(loop.call_soon_threadsafe, slot.release))
                    if isinstance(url, SignedRecordingUrl)
                    else _failed(call_id, url)
                )
            finally:
                slot.release()

    try:
        async with asyncio.TaskGroup() as group:  # cancelling the batch cancels every download
            if workers:
                group.create_task(sign_all())
            for _ in range(workers):
                group.create_task(worker())
    finally:
        manifest.close()  # each download, even a cancelled one, waited for its manifest line
    return BatchResult(tuple(items[cid] for cid in ids))
