"""`client.recordings`: signed URLs (and, in _download, the recordings themselves).

`signed_url` is the generated operation run through `client.call`, the same
request path as every other operation (auth, retries, timeouts, named
exceptions); this module adds the argument checks before it and the
`SignedRecordingUrl` built from the generated model after it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import _exceptions as exc
from ._models import APIResponse, SignedRecordingUrl
from ._parsing import invalid_reply, signed_url_from_response
from ._validation import DEFAULT_EXPIRY_MINUTES, check_call_id, check_expires_in_minutes

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    from verbex_api.models.call_recording_request import CallRecordingRequest

    from ._batch import BatchProgress, BatchResult, OnItem
    from ._client import AsyncVerbex, Verbex
    from ._download import AsyncRecordingStream, Progress, RecordingStream
    from ._models import DownloadResult
    from ._transport import Hooks

DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_CONCURRENCY = 8


def signed_url_request(call_id: object, expires_in_minutes: object) -> CallRecordingRequest:
    """The generated operation's request body, after checking the arguments."""
    from verbex_api.models.call_recording_request import CallRecordingRequest

    return CallRecordingRequest(
        call_id=check_call_id(call_id),
        expiration_url_in_minutes=check_expires_in_minutes(expires_in_minutes),
    )


def build_signed_url_request(call_id: object, expires_in_minutes: object) -> tuple[str, str, dict[str, Any]]:
    """(method, path, JSON body) the signed-URL operation sends for these arguments."""
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as operation

    kwargs = operation._get_kwargs(body=signed_url_request(call_id, expires_in_minutes))
    return kwargs["method"].upper(), kwargs["url"], kwargs["json"]


@functools.cache
def operation_errors() -> Mapping[tuple[str, str], Mapping[int, type[exc.APIStatusError]]]:
    """The signed-URL endpoint's documented 404 (an ErrorResponse) means no recording for the call."""
    method, path, _ = build_signed_url_request("call", DEFAULT_EXPIRY_MINUTES)
    return {(method, path): {404: exc.RecordingNotFoundError}}


def signed_url_result(
    raw: APIResponse[object], call_id: str, hooks: Hooks
) -> APIResponse[SignedRecordingUrl]:
    """The wrapper's result from the generated model (a 2xx of any other shape is invalid)."""
    from verbex_api.models.call_recording_signed_url_response import CallRecordingSignedUrlResponse

    model = raw.parsed
    if not isinstance(model, CallRecordingSignedUrlResponse):
        raise invalid_reply(raw.http_response, f"expected a signed URL, got {type(model).__name__}")
    received_at = datetime.fromtimestamp(hooks.wall_clock(), UTC)
    signed = signed_url_from_response(model, raw.http_response, call_id=call_id, received_at=received_at)
    return APIResponse(signed, raw.http_response)


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
        from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op

        body = signed_url_request(call_id, expires_in_minutes)
        raw = self._client._call(op.sync_detailed, {"body": body})
        return signed_url_result(raw, body.call_id, self._client._transport.hooks)

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
        from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op

        body = signed_url_request(call_id, expires_in_minutes)
        raw = await self._client._call(op.asyncio_detailed, {"body": body})
        return signed_url_result(raw, body.call_id, self._client._transport.hooks)

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
