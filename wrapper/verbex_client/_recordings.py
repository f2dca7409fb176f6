"""`client.recordings`: signed URLs (and, in _download, the recordings themselves).

The request comes from the generated operation; the reply is judged by our
lenient parser, because the generated parser raises KeyError/JSONDecodeError
on the error bodies the real service and its proxies send.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._models import APIResponse, SignedRecordingUrl
from ._parsing import signed_url_from_response, status_error
from ._retries import parse_retry_after
from ._validation import DEFAULT_EXPIRY_MINUTES, check_call_id, check_expires_in_minutes

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    import httpx

    from ._batch import BatchProgress, BatchResult, OnItem
    from ._client import AsyncVerbex, Verbex
    from ._download import AsyncRecordingStream, Progress, RecordingStream
    from ._models import DownloadResult
    from ._transport import _BaseTransport

DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_CONCURRENCY = 8


def build_signed_url_request(call_id: object, expires_in_minutes: object) -> tuple[str, str, dict[str, Any]]:
    """(method, path, JSON body) of the generated operation, after checking the arguments."""
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as operation
    from verbex_api.models.call_recording_request import CallRecordingRequest

    body = CallRecordingRequest(
        call_id=check_call_id(call_id),
        expiration_url_in_minutes=check_expires_in_minutes(expires_in_minutes),
    )
    kwargs = operation._get_kwargs(body=body)
    return kwargs["method"].upper(), kwargs["url"], kwargs["json"]


def signed_url_result(
    response: httpx.Response, call_id: str, transport: _BaseTransport
) -> APIResponse[SignedRecordingUrl]:
    """The parsed reply, or the exception its status means."""
    if response.is_success:
        received_at = datetime.fromtimestamp(transport.hooks.wall_clock(), UTC)
        return APIResponse(
            signed_url_from_response(response, call_id=call_id, received_at=received_at), response
        )
    retry_after = parse_retry_after(response.headers, transport.hooks.wall_clock())
    raise status_error(response, secrets=(transport.options.api_key,), retry_after=retry_after)


class Recordings:
    """Call recordings: `client.recordings`."""

    def __init__(self, client: Verbex) -> None:
        self._client = client

    @functools.cached_property
    def with_raw_response(self) -> RecordingsWithRawResponse:
        """The same methods, returning `APIResponse` (parsed value plus `httpx.Response`)."""
        return RecordingsWithRawResponse(self)

    def signed_url(
        self, call_id: str, *, expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES
    ) -> SignedRecordingUrl:
        """A fresh signed URL for one call's recording, valid for `expires_in_minutes` (1 to 10080)."""
        return self._signed_url(call_id, expires_in_minutes).parsed

    def _signed_url(self, call_id: str, expires_in_minutes: int) -> APIResponse[SignedRecordingUrl]:
        method, path, body = build_signed_url_request(call_id, expires_in_minutes)
        transport = self._client._transport
        return signed_url_result(transport.request(method, path, body), call_id, transport)

    def stream(
        self,
        call_id: str,
        *,
        expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> RecordingStream:
        """Context manager over the recording's bytes; resumes after drops and expired URLs.

        with client.recordings.stream("call_1") as stream:
            for chunk in stream: ...
        """
        from ._download import RecordingStream, check_download_args
        from ._validation import check_positive_int

        check_download_args(call_id, expires_in_minutes, ".", None)
        return RecordingStream(
            self._client, call_id, expires_in_minutes, check_positive_int("chunk_size", chunk_size)
        )

    def download(
        self,
        call_id: str,
        dest: str | os.PathLike[str] = ".",
        *,
        expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES,
        overwrite: bool = False,
        fsync: bool = True,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Download one recording to `dest` (a directory, or the target file path), verified and atomic.

        `fsync=False` skips flushing to disk before the rename: ~1.5x faster on
        slow disks, still atomic against errors and a killed process, but a
        power loss may leave an incomplete file (curl's and gsutil's guarantee).
        """
        from ._download import download

        return download(
            self._client,
            call_id,
            dest,
            expires_in_minutes=expires_in_minutes,
            overwrite=overwrite,
            fsync=fsync,
            progress=progress,
        )

    def download_many(
        self,
        call_ids: Iterable[str],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        overwrite: bool = False,
        fsync: bool = True,
        progress: BatchProgress | None = None,
        expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES,
        on_item: OnItem | None = None,
    ) -> BatchResult:
        """Download many recordings into `dest_dir`, `concurrency` at a time, skipping finished ones.

        `fsync` as for `download`; it applies to the manifest lines too. `on_item(item)` is
        called once per call id as soon as its outcome (downloaded, skipped, failed) is known,
        never by two threads at once (on the event loop for `AsyncVerbex`).
        """
        from ._batch import download_many

        return download_many(
            self._client,
            call_ids,
            dest_dir,
            concurrency=concurrency,
            overwrite=overwrite,
            fsync=fsync,
            progress=progress,
            expires_in_minutes=expires_in_minutes,
            on_item=on_item,
        )


class RecordingsWithRawResponse:
    def __init__(self, recordings: Recordings) -> None:
        self._recordings = recordings

    def signed_url(
        self, call_id: str, *, expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES
    ) -> APIResponse[SignedRecordingUrl]:
        return self._recordings._signed_url(call_id, expires_in_minutes)


class AsyncRecordings:
    """Call recordings: `async_client.recordings`."""

    def __init__(self, client: AsyncVerbex) -> None:
        self._client = client

    @functools.cached_property
    def with_raw_response(self) -> AsyncRecordingsWithRawResponse:
        """The same methods, returning `APIResponse` (parsed value plus `httpx.Response`)."""
        return AsyncRecordingsWithRawResponse(self)

    async def signed_url(
        self, call_id: str, *, expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES
    ) -> SignedRecordingUrl:
        """A fresh signed URL for one call's recording, valid for `expires_in_minutes` (1 to 10080)."""
        return (await self._signed_url(call_id, expires_in_minutes)).parsed

    async def _signed_url(self, call_id: str, expires_in_minutes: int) -> APIResponse[SignedRecordingUrl]:
        method, path, body = build_signed_url_request(call_id, expires_in_minutes)
        transport = self._client._transport
        return signed_url_result(await transport.request(method, path, body), call_id, transport)

    def stream(
        self,
        call_id: str,
        *,
        expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncRecordingStream:
        """Async context manager over the recording's bytes (`async with` / `async for`)."""
        from ._download import AsyncRecordingStream, check_download_args
        from ._validation import check_positive_int

        check_download_args(call_id, expires_in_minutes, ".", None)
        return AsyncRecordingStream(
            self._client, call_id, expires_in_minutes, check_positive_int("chunk_size", chunk_size)
        )

    async def download(
        self,
        call_id: str,
        dest: str | os.PathLike[str] = ".",
        *,
        expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES,
        overwrite: bool = False,
        fsync: bool = True,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Download one recording to `dest` (a directory, or the target file path), verified and atomic.

        `fsync=False` skips flushing to disk before the rename: ~1.5x faster on
        slow disks, still atomic against errors and a killed process, but a
        power loss may leave an incomplete file (curl's and gsutil's guarantee).
        """
        from ._download import adownload

        return await adownload(
            self._client,
            call_id,
            dest,
            expires_in_minutes=expires_in_minutes,
            overwrite=overwrite,
            fsync=fsync,
            progress=progress,
        )

    async def download_many(
        self,
        call_ids: Iterable[str],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        overwrite: bool = False,
        fsync: bool = True,
        progress: BatchProgress | None = None,
        expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES,
        on_item: OnItem | None = None,
    ) -> BatchResult:
        """Download many recordings into `dest_dir`, `concurrency` at a time, skipping finished ones.

        `fsync` as for `download`; it applies to the manifest lines too. `on_item(item)` is
        called once per call id as soon as its outcome (downloaded, skipped, failed) is known,
        never by two threads at once (on the event loop for `AsyncVerbex`).
        """
        from ._batch import adownload_many

        return await adownload_many(
            self._client,
            call_ids,
            dest_dir,
            concurrency=concurrency,
            overwrite=overwrite,
            fsync=fsync,
            progress=progress,
            expires_in_minutes=expires_in_minutes,
            on_item=on_item,
        )


class AsyncRecordingsWithRawResponse:
    def __init__(self, recordings: AsyncRecordings) -> None:
        self._recordings = recordings

    async def signed_url(
        self, call_id: str, *, expires_in_minutes: int = DEFAULT_EXPIRY_MINUTES
    ) -> APIResponse[SignedRecordingUrl]:
        return await self._recordings._signed_url(call_id, expires_in_minutes)
