"""Object-store destinations for `download_many`: `s3://`, `gs://` and `file://` URLs via obstore.

The same guarantees as a local directory, with a bucket's tools:

- an object appears only complete and verified: the bytes from `receive()` stream into
  one PUT (objects up to one part, buffered) or a multipart upload that obstore completes
  only after the last chunk, and `receive()` checks size and checksums before it ends:
  a mismatch raises inside the upload, which aborts it;
- the verified crc32c (and md5 when computed) is stored as object metadata;
- names are claimed across processes and machines with a small marker object per name,
  written with create-only semantics (`If-None-Match: *`): the first call keeps a name,
  the others get the collision rename, as in a directory;
- the manifest is written as segments (`.verbex/manifests/<run>/<attempt>-<n>.jsonl`, one PUT per
  batch of lines) and merged into `manifest.jsonl` at the end with a conditional PUT.

obstore (Rust's object_store) is imported only here, and only when a URL is used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import attrs

from ._batch import (
    SCHEMES,
    BatchItem,
    BatchProgress,
    BatchResult,
    ManifestBase,
    OnItem,
    Reporter,
    _failed,
    _per_call,
    check_batch_args,
    parse_line,
    run_signed,
)
from ._download import FetchSettings, receive
from ._exceptions import ConfigurationError, DestinationError
from ._paths import MANIFEST_NAME, name_key, safe_file_name

if TYPE_CHECKING:
    from ._client import AsyncVerbex, Verbex
    from ._models import SignedRecordingUrl

EXTRA_HINT = "pip install 'verbex-client[object-store]'"
PART_BYTES = 5 << 20  # S3's smallest part: objects up to this go in one PUT
PARTS_IN_FLIGHT = 2  # per upload: memory per object stays within ~3 parts
CONTROL_DIR = ".verbex/"  # claims and manifest segments (a safe name never starts with a dot)
CLAIMS = CONTROL_DIR + "claims/"
SEGMENTS = CONTROL_DIR + "manifests/"
FLUSH_LINES = 200  # manifest lines per segment object...
FLUSH_SECONDS = 5.0  # ...or at most this old
MERGE_ATTEMPTS = 8  # conditional manifest updates raced by another merger before giving up
CALL_ID_KEY = "verbex-call-id"
_XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_FRIENDLY = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied",
    "InvalidAccessKeyId": "the access key is not valid",
    "SignatureDoesNotMatch": "the secret key does not match",
}


def _obstore() -> Any:
    try:
        import obstore
        import obstore.store
    except ImportError:
        raise ConfigurationError(
            f"object-store destinations (s3://, gs://, file://) need obstore: {EXTRA_HINT}"
        ) from None
    return obstore


def _first_line(error: BaseException) -> str:
    text = str(error)
    code = _XML_CODE.search(text)
    if code is not None:
        name = code.group(1).strip()
        return f"{_FRIENDLY.get(name, 'storage refused')} ({name})"
    line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return line[:300]


def _credentials_hint(scheme: str) -> str:
    env = os.environ
    if scheme == "s3" and not (
        env.get("AWS_ACCESS_KEY_ID")
        or env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        or env.get("AWS_SKIP_SIGNATURE")
    ):
        return (
            "; no AWS credentials in the environment (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY) and the instance metadata service gave none"
        )
    if scheme == "gs" and not (
        env.get("GOOGLE_SERVICE_ACCOUNT")
        or env.get("GOOGLE_SERVICE_ACCOUNT_PATH")
        or env.get("GOOGLE_APPLICATION_CREDENTIALS")
        or env.get("GOOGLE_SERVICE_ACCOUNT_KEY")
    ):
        return (
            "; no Google credentials in the environment (set GOOGLE_APPLICATION_CREDENTIALS) "
            "and the metadata server gave none"
        )
    return ""


def store_error(
    error: BaseException, what: str, url: str, *, call_id: str | None = None, hint: str = ""
) -> DestinationError:
    """Our exception for a failed store request (names the URL and the store's reason)."""
    return DestinationError(f"cannot {what} {url}: {_first_line(error)}{hint}", path=url, call_id=call_id)


@attrs.frozen
class StoreDest:
    """An opened destination: `url` ends with "/", keys are relative to it."""

    url: str
    scheme: str
    store: Any
    attributes: bool  # whether the store keeps object metadata (file:// does not)

    def url_of(self, key: str) -> str:
        return self.url + key


def check_store_url(url: str) -> tuple[str, str]:
    """(scheme, URL ending in "/") for a destination URL, checked before anything is opened."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported destination {url!r}: use s3://, gs://, file:// or a local path")
    if any(ch.isspace() and ch != " " for ch in rest) or not rest.isprintable():
        raise ValueError(f"destination URL {url!r} contains control characters")
    if scheme == "file":
        if not rest.startswith("/"):
            raise ValueError(f"a file:// destination needs an absolute path (file:///dir/), got {url!r}")
    elif not rest.split("/", 1)[0]:
        raise ValueError(f"destination {url!r} names no bucket ({scheme}://bucket/prefix/)")
    return scheme, f"{scheme}://{rest.rstrip('/')}/"


def open_store(url: str) -> StoreDest:
    """The store behind `url` (credentials and endpoint from the environment, as the AWS and
    Google tools read them; `AWS_ENDPOINT_URL` works as well as obstore's `AWS_ENDPOINT`)."""
    scheme, normalised = check_store_url(url)
    obstore = _obstore()
    retry = {
        "max_retries": 3,
        "retry_timeout": timedelta(seconds=60),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
    }
    options: dict[str, Any] = {"connect_timeout": timedelta(seconds=10), "timeout": timedelta(seconds=300)}
    if os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes"):
        options["allow_http"] = True  # given options replace obstore's reading of the environment
    try:
        if scheme == "file":
            os.makedirs(url2pathname(urlsplit(normalised).path), exist_ok=True)
            store = obstore.store.from_url(normalised)
        else:
            config: dict[str, Any] = {}
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if scheme == "s3" and endpoint and not os.environ.get("AWS_ENDPOINT"):
                config["endpoint"] = endpoint
            store = obstore.store.from_url(
                normalised, config=config or None, client_options=options, retry_config=retry
            )
    except (OSError, ValueError, obstore.exceptions.BaseError) as error:
        failure = store_error(error, "open", normalised)
    else:
        return StoreDest(normalised, scheme, store, attributes=scheme != "file")
    raise failure


def probe(dest: StoreDest, prefix: str = SEGMENTS) -> list[str]:
    """One listing of manifest segments (under `prefix`): proves the store answers, the bucket
    exists and the credentials work, before any recording is fetched. Returns their keys."""
    obstore = _obstore()
    keys: list[str] = []
    try:
        for page in obstore.list(dest.store, prefix, chunk_size=1000):
            keys += [meta["path"] for meta in page]
    except (OSError, obstore.exceptions.BaseError) as error:
        # No storage error code: the request got no answer, or no credentials were found.
        hint = "" if _XML_CODE.search(str(error)) else _credentials_hint(dest.scheme)
        failure = store_error(error, "reach", dest.url, hint=hint)
    else:
        return keys
    raise failure


def _read(dest: StoreDest, key: str) -> bytes | None:
    """The object's bytes, or None when there is none."""
    obstore = _obstore()
    try:
        return bytes(obstore.get(dest.store, key).bytes())
    except FileNotFoundError:
        return None
    except (OSError, obstore.exceptions.BaseError) as error:
        failure = store_error(error, "read", dest.url_of(key))
    raise failure


def stream_lines(dest: StoreDest, key: str) -> Iterator[bytes]:
    """The object's lines, read a megabyte at a time (nothing when there is no such object): a
    manifest of millions of calls is never held whole."""
    obstore = _obstore()
    failure: DestinationError | None = None
    try:
        result = obstore.get(dest.store, key)
        rest = b""
        for chunk in result.stream(min_chunk_size=1 << 20):
            lines = (rest + bytes(chunk)).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest
        return
    except FileNotFoundError:
        return
    except (OSError, obstore.exceptions.BaseError) as error:
        failure = store_error(error, "read", dest.url_of(key))
    raise failure


@attrs.frozen
class ObjectInfo:
    size: int
    attributes: dict[str, str]


def head(dest: StoreDest, key: str, call_id: str | None = None) -> ObjectInfo | None:
    obstore = _obstore()
    try:
        result = obstore.get(dest.store, key, options={"head": True})
    except FileNotFoundError:
        return None
    except (OSError, obstore.exceptions.BaseError) as error:
        failure = store_error(error, "look up", dest.url_of(key), call_id=call_id)
    else:
        return ObjectInfo(int(result.meta["size"]), dict(result.attributes or {}))
    raise failure


# -- the manifest ------------------------------------------------------------------------------


class ObjectExists(FileExistsError):
    """An object is already at the name (and is not this call's): pass overwrite=True to replace it."""

    def __init__(self, url: str) -> None:
        super().__init__(errno.EEXIST, f"{url} exists (pass overwrite=True to replace it)", url)

    def __str__(self) -> str:
        return str(self.strerror)


class StoreManifest(ManifestBase):
    """The manifest of an object-store destination: `manifest.jsonl` plus the segments that
    runs (or partitions) wrote since the last merge; new lines go to segments of this run.
    Name claims are marker objects, so they hold across processes and machines."""

    def __init__(self, dest: StoreDest, *, run_id: str | None = None) -> None:
        super().__init__()
        self.dest = dest
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.attempt = uuid.uuid4().hex[:8]  # a rerun of one partition never replaces a segment
        self._pending: list[bytes] = []
        self._flushed_at = time.monotonic()
        self._sequence = 0
        self._flush_lock = threading.Lock()
        self.segments: list[str] = []
        self.reclaimed: set[str] = set()  # call ids whose name claim an earlier run made

    def load(
        self,
        segments: list[str],
        keep: Callable[[str], bool] | None = None,
        known_lines: Iterable[str | bytes] | None = None,
    ) -> None:
        """Read `manifest.jsonl` (or `known_lines`, the part of it a runner handed over) and
        `segments`, keeping the entries of calls `keep` accepts."""
        self._load_lines(stream_lines(self.dest, MANIFEST_NAME) if known_lines is None else known_lines, keep)
        for key in sorted(segments):
            self._load_lines(stream_lines(self.dest, key), keep)
        self.segments = list(segments)

    def _taken_elsewhere(self, name: str, call_id: str) -> bool:
        """Create the name's marker (create-only); taken when it exists for another call."""
        obstore = _obstore()
        key = CLAIMS + quote(name_key(name), safe="")
        try:
            obstore.put(self.dest.store, key, call_id.encode("utf-8"), mode="create", use_multipart=False)
            return False
        except obstore.exceptions.AlreadyExistsError:
            pass
        except (OSError, obstore.exceptions.BaseError) as error:
            failure = store_error(error, "claim the name", self.dest.url_of(name), call_id=call_id)
            raise failure from None
        owner = _read(self.dest, key)
        if owner is not None and owner.decode("utf-8", errors="replace") == call_id:
            self.reclaimed.add(call_id)
            return False
        return True

    def finished(self, call_id: str) -> BatchItem | None:
        """A "skipped" item when the manifest lists the call and its object is there with the
        recorded size (and the recorded checksums, where the store keeps metadata)."""
        entry = self.entries.get(call_id)
        if entry is None or not isinstance(entry.get("file"), str) or not isinstance(entry.get("bytes"), int):
            return None
        name = entry["file"]
        if name != safe_file_name(name, call_id):
            return None  # not a name we would have written
        info = head(self.dest, name, call_id)
        if info is None or info.size != entry["bytes"]:
            return None
        if self.dest.attributes and not (ours(info, call_id) and _same_checksums(info.attributes, entry)):
            return None
        return BatchItem(call_id, "skipped", None, None, entry["bytes"], self.dest.url_of(name))

    def append(self, entry: dict[str, Any]) -> None:
        line = self.line_of(entry)
        with self._lock:
            self.entries[entry["call_id"]] = entry
            self._pending.append(line)
            due = len(self._pending) >= FLUSH_LINES or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the lines not yet written as one new segment object."""
        with self._flush_lock:
            with self._lock:
                lines, self._pending = self._pending, []
                self._flushed_at = time.monotonic()
                self._sequence += 1
                key = f"{SEGMENTS}{self.run_id}/{self.attempt}-{self._sequence:06d}.jsonl"
            if not lines:
                return
            obstore = _obstore()
            try:
                obstore.put(self.dest.store, key, b"".join(lines), use_multipart=False)
            except (OSError, obstore.exceptions.BaseError) as error:
                with self._lock:
                    self._pending[:0] = lines  # kept for the next flush
                failure = store_error(error, "write the manifest segment", self.dest.url_of(key))
                raise failure from None
            self.segments.append(key)


def ours(info: ObjectInfo, call_id: str) -> bool:
    """Whether the object's metadata says we wrote it for `call_id`."""
    return info.attributes.get(CALL_ID_KEY) == quote(call_id, safe="")


def _same_checksums(attributes: dict[str, str], entry: dict[str, Any]) -> bool:
    """Every checksum both the object's metadata and the manifest entry have agrees."""
    return all(
        attributes.get(name) == entry.get(name)
        for name in ("crc32c", "md5")
        if attributes.get(name) is not None and entry.get(name) is not None
    )


def _put_manifest(dest: StoreDest, body: bytes, mode: Any) -> None:
    """Replace `manifest.jsonl` only if it is still the one we read (S3, GCS); a local store
    has no conditional update, and its PUT is an atomic rename: the last merger wins there."""
    obstore = _obstore()
    try:
        obstore.put(dest.store, MANIFEST_NAME, body, mode=mode, use_multipart=False)
    except NotImplementedError:
        obstore.put(dest.store, MANIFEST_NAME, body, use_multipart=False)


def merge_manifest(dest: StoreDest) -> int | None:
    """Fold every segment into `manifest.jsonl` (a conditional PUT: a concurrent merger makes us
    read again), then delete the merged segments. Returns the number of entries (None when
    there was nothing to merge). Memory: the new lines, plus the manifest's bytes once."""
    obstore = _obstore()
    for _ in range(MERGE_ATTEMPTS):
        segments = probe(dest)
        if not segments:
            return None  # nothing new since the last merge
        fresh: dict[str, bytes] = {}
        for key in sorted(segments):
            for line in stream_lines(dest, key):
                entry = parse_line(line)
                if entry is not None:
                    fresh[entry["call_id"]] = line.rstrip(b"\r") + b"\n"
        mode: Any = "create"
        try:
            meta = obstore.head(dest.store, MANIFEST_NAME)
            mode = {k: meta[k] for k in ("e_tag", "version") if meta.get(k) is not None}
        except FileNotFoundError:
            pass
        except (OSError, obstore.exceptions.BaseError) as error:
            failure = store_error(error, "read", dest.url_of(MANIFEST_NAME))
            raise failure from None
        body, count = bytearray(), len(fresh)
        if mode != "create":
            for line in stream_lines(dest, MANIFEST_NAME):
                entry = parse_line(line)
                if entry is not None and entry["call_id"] not in fresh:
                    body += line.rstrip(b"\r") + b"\n"
                    count += 1
        for line in fresh.values():
            body += line
        try:
            _put_manifest(dest, bytes(body), mode)
        except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
            continue  # another run merged meanwhile: read its manifest and merge again
        except (OSError, obstore.exceptions.BaseError) as error:
            failure = store_error(error, "write", dest.url_of(MANIFEST_NAME))
            raise failure from None
        with contextlib.suppress(OSError, obstore.exceptions.BaseError):
            obstore.delete(dest.store, segments)  # merged: a later run need not read them
        return count
    raise DestinationError(
        f"cannot merge the manifest at {dest.url_of(MANIFEST_NAME)}: it kept changing under "
        f"{MERGE_ATTEMPTS} attempts (another run merging?); rerun to merge",
        path=dest.url_of(MANIFEST_NAME),
    )


# -- one recording -----------------------------------------------------------------------------


def _checksum_attributes(fetch: Any, *, known_up_front: bool) -> dict[str, str]:
    """Metadata the object carries: what we computed (single PUT), or for a multipart upload
    (whose metadata goes with its start) the values storage declared, which `verify()`
    checks before the upload may complete; md5 only when it is being computed."""
    out: dict[str, str] = {}
    if not known_up_front:
        for name, value in (("crc32c", fetch.crc32c_hex), ("md5", fetch.md5_hex)):
            if value is not None:
                out[name] = value
        return out
    crc = fetch.expected.get("crc32c")
    if crc is not None and fetch.digests.crc32c() is not None:
        out["crc32c"] = crc.hex()
    md5 = fetch.expected.get("md5")
    if md5 is not None and not fetch.digests.md5_dropped:
        out["md5"] = md5.hex()
    return out


def store_recording(
    client: Verbex,
    call_id: str,
    signed: SignedRecordingUrl,
    dest: StoreDest,
    manifest: StoreManifest,
    *,
    expires_in_minutes: int,
    overwrite: bool,
    progress: Callable[[int, int | None], None] | None,
    cancel: threading.Event,
    received: Callable[[], None],
) -> BatchItem:
    """Receive one recording into `dest`: verified before the object may appear."""
    obstore = _obstore()
    name = manifest.claim(call_id, safe_file_name(signed.file_name, call_id))
    url = dest.url_of(name)
    if call_id in manifest.reclaimed and not overwrite:  # an earlier run claimed it: done there?
        existing = head(dest, name, call_id)
        if existing is not None:
            if not dest.attributes or ours(existing, call_id):  # its metadata agrees, where kept
                manifest.append(_entry_from(call_id, name, existing))
                return BatchItem(call_id, "skipped", None, None, existing.size, url)
            raise ObjectExists(url)
    settings = FetchSettings.of(client)
    fetch = settings.new_fetch(call_id, "skip")  # an upload cannot take bytes back: skip resent ones

    def sign() -> SignedRecordingUrl:
        return client.recordings.signed_url(call_id, expires_in_minutes=expires_in_minutes)

    chunks = receive(fetch, signed, sign, client._storage_sync(), settings, cancel)
    with contextlib.closing(chunks):
        next(chunks, None)  # the first reply's headers: total and checksums known

        def body() -> Iterator[bytes]:
            for chunk in chunks:  # receive() verifies size and checksums before it ends
                if chunk:
                    if progress is not None:
                        progress(fetch.offset, fetch.total)
                    yield chunk
            received()

        if progress is not None:
            progress(fetch.offset, fetch.total)
        attributes: dict[str, str] = {CALL_ID_KEY: quote(call_id, safe="")}
        if fetch.content_encoding:
            attributes["Content-Encoding"] = fetch.content_encoding
        single = fetch.total is not None and fetch.total <= PART_BYTES
        if not single and not overwrite and head(dest, name, call_id) is not None:
            raise ObjectExists(url)  # checked before a large transfer (a multipart PUT cannot refuse)
        failure: DestinationError | None = None
        exists = False
        try:
            if single:
                data = b"".join(body())
                attributes.update(_checksum_attributes(fetch, known_up_front=False))
                obstore.put(
                    dest.store,
                    name,
                    data,
                    attributes=_kept(dest, attributes),
                    use_multipart=False,
                    mode="overwrite" if overwrite else "create",  # never over an object not ours
                )
            else:
                attributes.update(_checksum_attributes(fetch, known_up_front=True))
                obstore.put(
                    dest.store,
                    name,
                    body(),
                    attributes=_kept(dest, attributes),
                    use_multipart=True,
                    chunk_size=PART_BYTES,
                    max_concurrency=PARTS_IN_FLIGHT,
                )
        except obstore.exceptions.AlreadyExistsError:
            exists = True  # an object not ours appeared under the name (we created no such one)
        except (OSError, obstore.exceptions.BaseError) as error:
            failure = store_error(error, "write", url, call_id=call_id)
        if exists:
            raise ObjectExists(url)
        if failure is not None:
            raise failure
    manifest.append(manifest.entry_for(call_id, name, fetch.offset, fetch.crc32c_hex, fetch.md5_hex))
    return BatchItem(call_id, "downloaded", None, None, fetch.offset, url)


def _kept(dest: StoreDest, attributes: dict[str, str]) -> dict[str, str] | None:
    return attributes if dest.attributes else None


def _entry_from(call_id: str, name: str, info: ObjectInfo) -> dict[str, Any]:
    """The manifest line of an object an earlier, interrupted run finished (from its metadata)."""
    attrs_ = info.attributes
    return ManifestBase.entry_for(call_id, name, info.size, attrs_.get("crc32c"), attrs_.get("md5"))


# -- the batch ---------------------------------------------------------------------------------


def download_many_to_store(
    client: Verbex,
    call_ids: Iterable[str],
    dest_url: str,
    *,
    concurrency: int,
    overwrite: bool,
    progress: BatchProgress | None,
    expires_in_minutes: int,
    fsync: bool = True,
    on_item: OnItem | None = None,
    merge: bool = True,
    run_id: str | None = None,
    known_lines: Iterable[str | bytes] | None = None,
) -> BatchResult:
    """`download_many` into an object store.

    A partition of a distributed run passes `merge=False` (the runner merges once, at the
    end), its `run_id`, and `known_lines`: the manifest lines of its calls, which the runner
    read once for all partitions. It then reads only its own earlier attempts' segments,
    instead of the whole manifest and every other partition's segments.
    """
    ids = check_batch_args(call_ids, concurrency, expires_in_minutes, progress, overwrite, fsync, on_item)
    dest = open_store(dest_url)
    manifest = StoreManifest(dest, run_id=run_id)
    own = f"{SEGMENTS}{manifest.run_id}/" if known_lines is not None else SEGMENTS
    segments = probe(dest, own)  # before any API call: a dead store, no bucket, no credentials
    client._storage_sync()  # a closed client fails here
    wanted = set(ids)
    manifest.load(segments, keep=wanted.__contains__, known_lines=known_lines)
    reporter = Reporter(ids, on_item)
    for item in _finished_items(manifest, ids, concurrency):
        reporter.report(item)

    def work(
        call_id: str, url: SignedRecordingUrl, received: Callable[[], None], cancel: threading.Event
    ) -> BatchItem:
        try:
            return store_recording(
                client,
                call_id,
                url,
                dest,
                manifest,
                expires_in_minutes=expires_in_minutes,
                overwrite=overwrite,
                progress=_per_call(progress, call_id),
                cancel=cancel,
                received=received,
            )
        except Exception as error:  # one failure never stops the batch
            return _failed(call_id, error)

    try:
        run_signed(
            client,
            reporter.pending(),
            concurrency=concurrency,
            workers=concurrency * 2,  # half receive while the others complete their uploads
            expires_in_minutes=expires_in_minutes,
            work=work,
            report=reporter.report,
        )
    finally:
        manifest.flush()  # even when interrupted: what finished is recorded
    if merge:
        merge_manifest(dest)
    return reporter.result()


def _finished_items(manifest: StoreManifest, ids: list[str], concurrency: int) -> list[BatchItem]:
    """The calls already in the store (one HEAD each, `concurrency` at a time, no API call)."""
    listed = [cid for cid in ids if cid in manifest.entries]
    if not listed:
        return []
    with ThreadPoolExecutor(max_workers=min(concurrency * 2, len(listed))) as pool:
        found = list(pool.map(manifest.finished, listed))
    return [item for item in found if item is not None]


# -- the async batch ---------------------------------------------------------------------------

STOP_GRACE = 10.0  # seconds a cancelled async batch waits for its thread to record what finished


class BatchCancelled(BaseException):
    """Raised in an async batch's thread by its next callback once the batch was cancelled: not
    an Exception, so it is no item's failure but stops every worker, as Ctrl-C does."""


async def adownload_many_to_store(
    client: AsyncVerbex,
    call_ids: Iterable[str],
    dest_url: str,
    *,
    concurrency: int,
    overwrite: bool,
    progress: BatchProgress | None,
    expires_in_minutes: int,
    fsync: bool = True,
    on_item: OnItem | None = None,
) -> BatchResult:
    """`AsyncVerbex.download_many` into an object store: `download_many_to_store` itself, on
    a thread of its own with a `Verbex` of the client's options, so both keep one set of
    guarantees. `progress` and `on_item` run on the event loop (the batch's thread waits
    for each, and an exception from one acts as in the sync batch). Cancelled, the batch
    stops at its next chunk or item, records what finished, and the cancellation goes on
    after at most `STOP_GRACE` seconds of waiting for it."""
    import asyncio
    import concurrent.futures

    ids = check_batch_args(call_ids, concurrency, expires_in_minutes, progress, overwrite, fsync, on_item)
    client._check_open()
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def on_loop(function: Callable[..., object], *args: Any) -> None:
        """Run `function(*args)` on the event loop and wait for it (its exception raised here)."""
        if stop.is_set():
            raise BatchCancelled
        done: concurrent.futures.Future[object] = concurrent.futures.Future()

        def run() -> None:
            try:
                if stop.is_set():  # cancelled since: no callback runs after the cancellation
                    raise BatchCancelled
                done.set_result(function(*args))
            except BaseException as error:  # handed to the batch's thread
                done.set_exception(error)

        loop.call_soon_threadsafe(run)
        while True:
            try:
                done.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if stop.is_set() or loop.is_closed():
                    raise BatchCancelled from None

    def report(item: BatchItem) -> None:
        if on_item is not None:
            on_loop(on_item, item)
        elif stop.is_set():
            raise BatchCancelled

    def run_batch() -> BatchResult:
        with client._sync_twin() as sync:
            return download_many_to_store(
                sync,
                ids,
                dest_url,
                concurrency=concurrency,
                overwrite=overwrite,
                progress=None if progress is None else lambda *args: on_loop(progress, *args),
                expires_in_minutes=expires_in_minutes,
                fsync=fsync,
                on_item=report,
            )

    outcome: concurrent.futures.Future[BatchResult] = concurrent.futures.Future()

    def thread() -> None:
        outcome.set_running_or_notify_cancel()
        try:
            outcome.set_result(run_batch())
        except BaseException as error:  # raised from the await below
            outcome.set_exception(error)

    threading.Thread(target=thread, name="verbex-store-batch", daemon=True).start()
    waiting = asyncio.wrap_future(outcome)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        stop.set()  # its next callback raises BatchCancelled: the batch stops, flushes its manifest
        await asyncio.wait([waiting], timeout=STOP_GRACE)
        if waiting.done() and not waiting.cancelled():
            waiting.exception()  # retrieved: the batch's own exception is not the news here
        raise
