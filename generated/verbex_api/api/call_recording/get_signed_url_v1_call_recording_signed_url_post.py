from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.call_recording_request import CallRecordingRequest
from ...models.call_recording_signed_url_response import CallRecordingSignedUrlResponse
from ...models.error_response import ErrorResponse
from ...models.http_validation_error import HTTPValidationError
from ...types import Response


def _get_kwargs(
    *,
    body: CallRecordingRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/call-recording/signed-url",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError | None:
    if response.status_code == 200:
        response_200 = CallRecordingSignedUrlResponse.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = ErrorResponse.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = ErrorResponse.from_dict(response.json())

        return response_404

    if response.status_code == 422:
        response_422 = HTTPValidationError.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: CallRecordingRequest,
) -> Response[CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError]:
    """Get Signed URL for Call Recording

     Get a pre-signed URL to access the recording of a specific call.

    This endpoint generates a temporary signed URL that can be used to stream or download
    the call recording. The signed URL expires after a limited time for security purposes.

    Args:
        body (CallRecordingRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: CallRecordingRequest,
) -> CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError | None:
    """Get Signed URL for Call Recording

     Get a pre-signed URL to access the recording of a specific call.

    This endpoint generates a temporary signed URL that can be used to stream or download
    the call recording. The signed URL expires after a limited time for security purposes.

    Args:
        body (CallRecordingRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: CallRecordingRequest,
) -> Response[CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError]:
    """Get Signed URL for Call Recording

     Get a pre-signed URL to access the recording of a specific call.

    This endpoint generates a temporary signed URL that can be used to stream or download
    the call recording. The signed URL expires after a limited time for security purposes.

    Args:
        body (CallRecordingRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: CallRecordingRequest,
) -> CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError | None:
    """Get Signed URL for Call Recording

     Get a pre-signed URL to access the recording of a specific call.

    This endpoint generates a temporary signed URL that can be used to stream or download
    the call recording. The signed URL expires after a limited time for security purposes.

    Args:
        body (CallRecordingRequest):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        CallRecordingSignedUrlResponse | ErrorResponse | HTTPValidationError
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
