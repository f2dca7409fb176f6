"""The Dask side of `verbex_client.distributed`: the API-key plugin, connecting, running partitions.

Imported only by the runner, so `download_partition` stays usable without Dask.
"""

from __future__ import annotations

import contextlib
import os
import queue
import uuid
from collections.abc import Iterator
from typing import Any

from ._batch import BatchItem, BatchResult, OnItem
from ._config import API_KEY_ENV
from ._exceptions import ConfigurationError, DownloadError, VerbexError
from ._object_store import merge_manifest, open_store, probe
from .distributed import ClientSettings, download_partition, item_from_dict, manifest_lines, split

try:
    import distributed as _distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - the message names the extra
    raise ConfigurationError(
        "verbex_client.distributed.download_many needs Dask: pip install 'verbex-client[dask]'"
    ) from None

dask: Any = _distributed  # partly untyped: used through Any
PLUGIN_NAME = "verbex-api-key"


class ApiKeyPlugin(WorkerPlugin):
    """Gives each worker the API key once, as `VERBEX_API_KEY` in its environment: the key is
    never part of a task. Its repr shows no key."""

    idempotent = False

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def setup(self, worker: Any) -> None:
        os.environ[API_KEY_ENV] = self._api_key

    def __repr__(self) -> str:
        return "ApiKeyPlugin(api_key=<hidden>)"


def run_partition(topic: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """The task: `download_partition` on this worker, each item's dict sent back at once as a
    Dask event under `topic` (the worker is looked up here, on the task's thread)."""
    worker = dask.get_worker()
    return download_partition(*args, on_item=lambda item: worker.log_event(topic, item), **kwargs)


@contextlib.contextmanager
def connect(address: str, *, timeout: float = 10.0) -> Iterator[Any]:
    """A Dask client for `tcp://host:port` (or any scheduler address), or for a local cluster
    of N worker processes (`local:N`); ConfigurationError when the scheduler does not answer."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError("the Dask address must be tcp://host:port or local:N")
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--dask local:N needs a worker count >= 1, got {address!r}")
        with (
            dask.LocalCluster(
                n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            dask.Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = dask.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        failure = ConfigurationError(f"cannot reach the Dask scheduler at {address}: {reason}")
    else:
        with client:
            yield client
        return
    raise failure


def _partition_failed(
    chunk: list[str], error: BaseException, streamed: dict[str, BatchItem]
) -> list[BatchItem]:
    """A partition that returned no results: each call keeps what a worker reported for it
    (a verified object stays a fact when its worker died later); the others failed with one
    of our exceptions."""
    if isinstance(error, VerbexError | FileExistsError):
        reason: Exception = error
    else:
        text = str(error).splitlines()[0][:300] if str(error) else ""
        reason = DownloadError(f"the partition failed on the cluster: {type(error).__name__}: {text}")
    return [streamed.get(cid) or BatchItem(cid, "failed", None, reason) for cid in chunk]


def run_partitions(
    ids: list[str],
    dest_url: str,
    dask_client: Any,
    *,
    partitions: int | None,
    concurrency: int,
    settings: ClientSettings,
    api_key: str | None,
    expires_in_minutes: int,
    overwrite: bool,
    on_item: OnItem | None,
) -> BatchResult:
    """Submit one task per partition and collect their results.

    Each call's outcome comes back twice. At once, as a Dask event (`Worker.log_event` on
    the worker, `Client.subscribe_topic` here: pushed to us, no polling, nothing held on
    the scheduler for us to fetch): that feeds `on_item`, once per call, and is progress,
    not the result. The result is what each partition's task returns: a lost event loses
    nothing, and a partition Dask ran again after its worker died counts once (its last
    run's items; `on_item` may have heard the first run's, e.g. "downloaded" where the
    result says "skipped").
    """
    dest = open_store(dest_url)
    probe(dest)  # before anything is submitted: a dead store, no bucket, no credentials
    if not ids:
        return BatchResult(())
    if api_key is not None:
        dask_client.register_plugin(ApiKeyPlugin(api_key), name=PLUGIN_NAME)
    if partitions is None:
        threads = sum(dask_client.nthreads().values()) or 1
        partitions = max(threads * 2, -(-len(ids) // 5000))
    chunks = split(ids, partitions)
    merge_manifest(dest)  # what earlier, interrupted runs left in segments: one manifest to read
    known = manifest_lines(dest_url, chunks)
    batch = uuid.uuid4().hex[:8]
    topic = f"verbex-items-{batch}"
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    dask_client.subscribe_topic(topic, lambda event: events.put(event[1]))  # on the client's loop
    futures = {
        dask_client.submit(
            run_partition,
            topic,
            settings,
            chunk,
            dest_url,
            concurrency=concurrency,
            expires_in_minutes=expires_in_minutes,
            overwrite=overwrite,
            run_id=f"{batch}-{n:05d}",
            known_lines=known[n],
            key=f"verbex-partition-{batch}-{n:05d}",
            pure=False,
        ): chunk
        for n, chunk in enumerate(chunks)
    }
    del known
    wanted = set(ids)
    streamed: dict[str, BatchItem] = {}  # the first outcome a worker reported for each call
    reported: set[str] = set()
    items: dict[str, BatchItem] = {}  # the result: what the partitions returned

    def tell(item: BatchItem) -> None:
        if item.call_id in wanted and item.call_id not in reported:  # once per call id
            reported.add(item.call_id)
            if on_item is not None:
                on_item(item)

    def heard(event: dict[str, Any]) -> None:
        item = item_from_dict(event)
        if item.call_id in wanted:
            streamed.setdefault(item.call_id, item)
        tell(item)

    def drain() -> None:
        while True:
            try:
                heard(events.get_nowait())
            except queue.Empty:
                return

    pending = list(futures)
    try:
        while pending:
            with contextlib.suppress(queue.Empty):  # workers' events as they come
                heard(events.get(timeout=0.1))  # a finished partition within 0.1 s
            drain()
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                chunk = futures[future]
                try:
                    got = [item_from_dict(d) for d in future.result()]
                except Exception as error:  # this partition only: the others keep their results
                    got = _partition_failed(chunk, error, streamed)
                for item in got:
                    items[item.call_id] = item
                    tell(item)
    finally:
        dask_client.unsubscribe_topic(topic)
        for future in futures:
            future.release()
    merge_manifest(dest)
    return BatchResult(tuple(items[cid] for cid in ids))
