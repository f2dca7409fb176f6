"""Archives past one machine: `download_many` split into partitions that run on a cluster.

    from dask.distributed import Client
    from verbex_client import distributed

    with Client("tcp://scheduler:8786") as dask_client:
        result = distributed.download_many(ids, "s3://bucket/archive/", dask_client, concurrency=16)
    result.raise_for_failures()

Each partition runs today's `download_many` on a worker, with its own `Verbex` built
from picklable `ClientSettings`; the API key is not among them: workers read
`VERBEX_API_KEY` from their environment, or receive it once through a worker plugin
(`api_key=`). `download_partition` is a plain function (settings, ids, destination ->
item dicts) with no Dask types, so Ray or Spark can run partitions too; only
`download_many` needs the `[dask]` extra.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._batch import BatchItem, BatchResult, OnItem, check_batch_args, is_store_url
from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._client import Verbex

__all__ = [
    "ClientSettings",
    "download_many",
    "download_partition",
    "item_from_dict",
    "manifest_lines",
    "merge_manifest",
    "split",
]

DEFAULT_CONCURRENCY = 8
MAX_PARTITION = 5_000  # ids per partition by default: a lost worker redoes at most this many


@attrs.frozen
class ClientSettings:
    """What a worker needs to build its own client: everything but the API key (picklable).

    `verify` is True, False or a CA bundle path that exists on the workers.
    """

    base_url: str | None = None
    timeout: float = 30.0
    max_retries: int = 2
    verify: bool | str = True
    allow_insecure_storage: bool = False

    @classmethod
    def of(cls, client: Verbex) -> ClientSettings:
        """The settings of an existing client (an `ssl.SSLContext` cannot travel: pass a path)."""
        verify = client._shared.network.verify
        if not isinstance(verify, bool | str | os.PathLike):
            raise ValueError("an ssl.SSLContext cannot be sent to workers: verify with a CA bundle path")
        return cls(
            base_url=client.base_url,
            timeout=client.timeout.read if client.timeout.read is not None else 30.0,
            max_retries=client.max_retries,
            verify=verify if isinstance(verify, bool) else os.fspath(verify),
            allow_insecure_storage=client._allow_insecure_storage,
        )

    def client(self) -> Verbex:
        """A client on this machine; the key from `VERBEX_API_KEY` (set by the worker plugin)."""
        from ._client import Verbex

        return Verbex(
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            verify=self.verify,
            allow_insecure_storage=self.allow_insecure_storage,
        )


def store_url(dest: str | os.PathLike[str]) -> str:
    """An object-store URL for `dest`: URLs as given, a local path (on a file system every
    worker shares) as `file://` with its absolute path."""
    if isinstance(dest, str) and is_store_url(dest):
        return dest
    if not isinstance(dest, str | os.PathLike):
        raise TypeError(f"dest must be a URL or a path, not {type(dest).__name__}")
    from pathlib import Path

    return Path(os.path.abspath(os.fspath(dest))).as_uri().rstrip("/") + "/"  # file:///C:/... on Windows


def split(ids: Sequence[str], partitions: int) -> list[list[str]]:
    """`ids` in `partitions` contiguous, nearly equal runs (none empty)."""
    count = max(1, min(partitions, len(ids)))
    size, extra = divmod(len(ids), count)
    out, start = [], 0
    for n in range(count):
        end = start + size + (1 if n < extra else 0)
        out.append(list(ids[start:end]))
        start = end
    return [chunk for chunk in out if chunk]


# -- one partition (no Dask here) --------------------------------------------------------------


def download_partition(
    settings: ClientSettings,
    call_ids: Sequence[str],
    dest: str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    expires_in_minutes: int = 10,
    overwrite: bool = False,
    run_id: str | None = None,
    known_lines: Sequence[str] | None = None,
    on_item: Callable[[dict[str, Any]], object] | None = None,
) -> list[dict[str, Any]]:
    """Run one partition of a batch here: `download_many(call_ids, dest)` with a client of our
    own. Returns one plain dict per call (`item_from_dict` makes it a `BatchItem` again).

    Its manifest lines go to segments under `run_id` (one name per partition, the same when
    the partition is run again); `merge_manifest(dest)` folds them in once every partition
    ended. `known_lines`: this partition's lines of `manifest.jsonl`, read once by the runner
    (`manifest_lines`); without them each partition reads the whole manifest itself.
    `on_item(item_dict)` is called as each call's outcome is known (to stream progress back).
    """
    from ._object_store import download_many_to_store

    with settings.client() as client:
        result = download_many_to_store(
            client,
            call_ids,
            store_url(dest),
            concurrency=concurrency,
            overwrite=overwrite,
            progress=None,
            expires_in_minutes=expires_in_minutes,
            merge=False,
            run_id=run_id or f"partition-{uuid.uuid4().hex[:8]}",
            known_lines=known_lines,
            on_item=None if on_item is None else (lambda item: on_item(item_to_dict(item))),
        )
    return [item_to_dict(item) for item in result.results]


def manifest_lines(dest: str | os.PathLike[str], partitions: Sequence[Sequence[str]]) -> list[list[str]]:
    """For each partition, the lines of `dest`'s `manifest.jsonl` about its calls (one read of
    the manifest for all of them; pass each list as `known_lines`)."""
    from ._batch import parse_line
    from ._object_store import open_store, stream_lines
    from ._paths import MANIFEST_NAME

    where = {cid: n for n, part in enumerate(partitions) for cid in part}
    out: list[list[str]] = [[] for _ in partitions]
    for line in stream_lines(open_store(store_url(dest)), MANIFEST_NAME):
        entry = parse_line(line)
        if entry is not None and entry["call_id"] in where:
            out[where[entry["call_id"]]].append(line.decode("utf-8", errors="replace"))
    return out


def merge_manifest(dest: str | os.PathLike[str]) -> int | None:
    """Fold the partitions' manifest segments into `dest`'s `manifest.jsonl` (once, after every
    partition ended); the number of entries, or None when there was nothing to merge."""
    from ._object_store import merge_manifest as merge
    from ._object_store import open_store

    return merge(open_store(store_url(dest)))


def _error_to_dict(error: BaseException) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": getattr(error, "message", None) or str(error),
        "status_code": getattr(error, "status_code", None),
        "code": getattr(error, "code", None),
        "path": getattr(error, "path", None) or getattr(error, "filename", None),
    }


def item_to_dict(item: BatchItem) -> dict[str, Any]:
    return {
        "call_id": item.call_id,
        "status": item.status,
        "url": item.url,
        "path": str(item.path) if item.path is not None else None,
        "bytes": item.bytes,
        "error": _error_to_dict(item.error) if item.error is not None else None,
    }


def error_from_dict(data: dict[str, Any], call_id: str | None) -> Exception:
    """One of our documented exceptions again, from what a worker sent (type, message, codes)."""
    import httpx

    from . import _exceptions as exc

    kind, message = data.get("type"), str(data.get("message") or "failed")
    cls = getattr(exc, kind, None) if isinstance(kind, str) and kind in exc.__all__ else None
    status, code = data.get("status_code"), data.get("code")
    if cls is exc.DestinationError:
        return exc.DestinationError(message, path=data.get("path"), call_id=call_id)
    if isinstance(cls, type) and issubclass(cls, exc.DownloadError):
        return cls(message, call_id=call_id, status_code=status, code=code)
    if isinstance(cls, type) and issubclass(cls, exc.APIStatusError) and isinstance(status, int):
        extra: dict[str, Any] = {}
        if issubclass(cls, exc.UnprocessableEntityError):
            extra["errors"] = []
        if issubclass(cls, exc.RateLimitError):
            extra["retry_after"] = None
        return cls(message, response=httpx.Response(status), body=None, code=code, **extra)
    if cls in (exc.ConfigurationError, exc.ClientClosedError, exc.APIConnectionError, exc.APITimeoutError):
        return cls(message)
    if kind in ("FileExistsError", "TargetExists", "FinishedElsewhere", "ObjectExists"):
        return FileExistsError(errno.EEXIST, message, data.get("path"))
    return exc.DownloadError(f"{kind}: {message}", call_id=call_id)


def item_from_dict(data: dict[str, Any]) -> BatchItem:
    """The `BatchItem` a partition reported as a dict."""
    from pathlib import Path

    error = data.get("error")
    return BatchItem(
        data["call_id"],
        data["status"],
        Path(data["path"]) if data.get("path") else None,
        error_from_dict(error, data["call_id"]) if isinstance(error, dict) else None,
        int(data.get("bytes") or 0),
        data.get("url"),
    )


# -- the Dask runner ---------------------------------------------------------------------------


def download_many(
    call_ids: Iterable[str],
    dest: str | os.PathLike[str],
    dask_client: Any,
    *,
    partitions: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    settings: ClientSettings | None = None,
    api_key: str | None = None,
    expires_in_minutes: int = 10,
    overwrite: bool = False,
    on_item: OnItem | None = None,
) -> BatchResult:
    """Download `call_ids` into `dest` (an `s3://`, `gs://`, `file://` URL or a shared path)
    on the cluster behind `dask_client`, `concurrency` at a time per partition.

    `partitions` defaults to enough for every worker thread twice, with at most 5,000 ids
    each. `api_key`, when given, reaches each worker once through a worker plugin (never in
    the task graph); otherwise workers read `VERBEX_API_KEY`. The destination is checked
    before anything is submitted. A partition that fails (its worker died too often, no key
    on the worker) marks its own ids failed; every other partition's results are kept.
    `on_item` is called here once per call id, as a worker finishes it (streamed back as
    Dask events), and for a call no event told about when its partition ends. It is
    progress: when a worker died and Dask ran its partition again, `on_item` has the first
    outcome heard and the result the last run's ("skipped" for an object the first run
    finished). The returned result is exact: each call once, from what the partitions
    returned (a partition that failed as a whole keeps what its workers reported).
    """
    from ._dask import run_partitions

    ids = check_batch_args(call_ids, concurrency, expires_in_minutes, None, overwrite, True, on_item)
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int)):
        raise TypeError(f"partitions must be an int, not {type(partitions).__name__}")
    if partitions is not None and partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ConfigurationError("api_key must be a non-empty str")
    return run_partitions(
        ids,
        store_url(dest),
        dask_client,
        partitions=partitions,
        concurrency=concurrency,
        settings=settings or ClientSettings(),
        api_key=api_key,
        expires_in_minutes=expires_in_minutes,
        overwrite=overwrite,
        on_item=on_item,
    )


def download_many_on(
    address: str,
    client: Verbex,
    call_ids: Iterable[str],
    dest: str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    overwrite: bool = False,
    expires_in_minutes: int = 10,
    progress: Callable[[str, int, int | None], None] | None = None,
    on_item: OnItem | None = None,
    connect_timeout: float = 10.0,
) -> BatchResult:
    """What `verbex recordings download --dask ADDRESS` runs: connect to the scheduler at
    `address` (`tcp://host:8786`), or start a local cluster (`local:N`, N worker processes),
    and run the batch with `client`'s settings and key. `progress` and `on_item` hear each
    call as its worker finishes it; the returned result is the exact one (see
    `download_many`)."""
    from ._dask import connect

    def report(item: BatchItem) -> None:
        if progress is not None and item.status != "failed":
            progress(item.call_id, item.bytes, item.bytes)  # per finished call: workers report no bytes
        if on_item is not None:
            on_item(item)

    with connect(address, timeout=connect_timeout) as dask_client:
        return download_many(
            call_ids,
            dest,
            dask_client,
            concurrency=concurrency,
            settings=ClientSettings.of(client),
            api_key=client._options.api_key,
            expires_in_minutes=expires_in_minutes,
            overwrite=overwrite,
            on_item=report,
        )
