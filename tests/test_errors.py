"""Every reply, however malformed, becomes one documented exception (sync and async alike)."""

from __future__ import annotations

import json

import pytest

import verbex_client as vc
from conftest import SleepRecorder, call_signed_url
from verbex_client.testing import Sandbox


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, vc.BadRequestError),
        (401, vc.AuthenticationError),
        (403, vc.PermissionDeniedError),
        (404, vc.RecordingNotFoundError),
        (409, vc.ConflictError),
        (418, vc.APIStatusError),
        (422, vc.UnprocessableEntityError),
        (429, vc.RateLimitError),
        (500, vc.InternalServerError),
        (502, vc.InternalServerError),
        (503, vc.InternalServerError),
    ],
)
def test_each_status_maps_to_its_exception(
    mode: str, verbex_sandbox: Sandbox, status: int, exc_type: type
) -> None:
    body = json.dumps({"error": f"code_{status}", "message": f"Message {status}"}).encode()
    verbex_sandbox.fail_next(5, status=status, body=body)
    with pytest.raises(exc_type) as info:
        call_signed_url(mode, verbex_sandbox, "c1", client_options={"max_retries": 0})
    error = info.value
    assert type(error) is exc_type
    assert isinstance(error, vc.APIStatusError) and isinstance(error, vc.VerbexError)
    assert (
        error.status_code == status
        and error.code == f"code_{status}"
        and error.message == f"Message {status}"
    )
    assert error.response.status_code == status and error.body == {
        "error": f"code_{status}",
        "message": f"Message {status}",
    }
    assert str(error) == f"{status} code_{status}: Message {status}"


def test_real_sandbox_401_and_404(mode: str, verbex_sandbox: Sandbox) -> None:
    with pytest.raises(vc.AuthenticationError) as info:
        call_signed_url(mode, verbex_sandbox, "c1", client_options={"api_key": "API_wrong_wrong_wrong"})
    assert info.value.code == "invalid_api_key" and info.value.message == "Invalid API key"
    with pytest.raises(vc.RecordingNotFoundError) as nf:
        call_signed_url(mode, verbex_sandbox, "missing-call")
    assert isinstance(nf.value, vc.NotFoundError) and nf.value.code == "recording_not_found"


def test_422_exposes_the_servers_validation_errors(mode: str, verbex_sandbox: Sandbox) -> None:
    detail = [
        {"loc": ["body", "call_id"], "msg": "Field required", "type": "missing"},
        {
            "loc": ["body", "expiration_url_in_minutes"],
            "msg": "Input should be a valid integer",
            "type": "int_type",
        },
    ]
    verbex_sandbox.fail_next(status=422, body=json.dumps({"detail": detail}).encode())
    with pytest.raises(vc.UnprocessableEntityError) as info:
        call_signed_url(mode, verbex_sandbox, "c1")
    assert info.value.errors == detail
    assert (
        info.value.message
        == "body.call_id: Field required; body.expiration_url_in_minutes: Input should be a valid integer"
    )


def test_429_carries_retry_after(mode: str, verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.fail_next(status=429, retry_after="7")
    with pytest.raises(vc.RateLimitError) as info:
        call_signed_url(mode, verbex_sandbox, "c1", client_options={"max_retries": 0})
    assert info.value.retry_after == 7.0 and info.value.code == "rate_limited"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"detail": "Not authenticated"}', "application/json", "Not authenticated"),
        (
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>",
            "text/html",
            "502 Bad Gateway",
        ),
        (b"<html><body><h1>Upstream   gone</h1></body></html>", "text/html", "Upstream gone"),
        (
            b"upstream connect error or disconnect/reset before headers",
            "text/plain",
            "upstream connect error or disconnect/reset before headers",
        ),
        (b"", "text/plain", "Bad Request"),
        (b"   ", "application/json", "Bad Request"),
        (b'{"error": {"code": "nested", "message": "Nested shape"}}', "application/json", "Nested shape"),
        (b'{"message": 5, "error": ["x"]}', "application/json", "Bad Request"),
        (b"[1, 2, 3]", "application/json", "Bad Request"),
        (b'{"detail": [1, "x", null]}', "application/json", "Bad Request"),
        (b"\xff\xfe\x00garbage", "application/octet-stream", "\ufffd\ufffd\x00garbage"),
        (b'{"truncated": ', "application/json", '{"truncated":'),
        (b"x" * 5000, "text/plain", "x" * 299 + "\u2026"),
    ],
)
def test_malformed_error_bodies_still_give_a_short_readable_message(
    mode: str, verbex_sandbox: Sandbox, body: bytes, content_type: str, message: str
) -> None:
    verbex_sandbox.fail_next(status=400, body=body, content_type=content_type)
    with pytest.raises(vc.BadRequestError) as info:
        call_signed_url(mode, verbex_sandbox, "c1")
    assert info.value.message == message
    assert len(str(info.value)) < 320


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "the body is not JSON"),
        (b"<html>oops</html>", "the body is not JSON"),
        (b'{"file_name": ', "the body is not JSON"),
        (b"[]", "missing field 'file_name'"),
        (b"null", "unexpected JSON null for this operation"),
        (b'"text"', "unexpected JSON string for this operation"),
        (b"17", "unexpected JSON number for this operation"),
        (
            b'{"file_name": "a.ogg", "expiration_minutes": 10, "expires_at": "2026-04-02T06:25:27Z"}',
            "missing field 'signed_url'",
        ),
        (
            b'{"signed_url": "https://h/p", "expiration_minutes": 10, "expires_at": "2026-04-02T06:25:27Z"}',
            "missing field 'file_name'",
        ),
        (
            b'{"file_name": "a", "signed_url": "https://h/p", "expiration_minutes": 10}',
            "missing field 'expires_at'",
        ),
        (
            b'{"file_name": "a", "signed_url": "https://h/p", "expiration_minutes": "10", "expires_at": "2026-04-02T06:25:27Z"}',
            "field 'expiration_minutes' must be int, got str",
        ),
        (
            b'{"file_name": "a", "signed_url": "https://h/p", "expiration_minutes": true, "expires_at": "2026-04-02T06:25:27Z"}',
            "field 'expiration_minutes' must be int, got bool",
        ),
        (
            b'{"file_name": 5, "signed_url": "https://h/p", "expiration_minutes": 10, "expires_at": "2026-04-02T06:25:27Z"}',
            "field 'file_name' must be str, got int",
        ),
        (
            b'{"file_name": "a", "signed_url": "https://h/p", "expiration_minutes": 10, "expires_at": "soon"}',
            "unparseable field 'expires_at': it does not match the spec's schema (ValueError)",
        ),
        (
            b'{"file_name": "a", "signed_url": "https://h/p", "expiration_minutes": 10, "expires_at": 17}',
            "unparseable field 'expires_at': it does not match the spec's schema (TypeError)",
        ),
    ],
)
def test_bad_success_bodies_raise_response_validation_error(
    mode: str, verbex_sandbox: Sandbox, body: bytes, reason: str
) -> None:
    verbex_sandbox.respond_next(body)
    with pytest.raises(vc.APIResponseValidationError) as info:
        call_signed_url(mode, verbex_sandbox, "c1")
    assert str(info.value) == f"invalid response (200): {reason}"
    assert info.value.status_code == 200 and info.value.response.status_code == 200
    assert info.value.__cause__ is None and info.value.__context__ is None  # nothing chained


def test_request_id_is_picked_up(verbex_sandbox: Sandbox) -> None:
    import httpx

    from verbex_client._parsing import status_error

    response = httpx.Response(500, headers={"x-request-id": "req-42"}, content=b"boom")
    error = status_error(response, secrets=())
    assert (
        isinstance(error, vc.InternalServerError) and error.request_id == "req-42" and error.message == "boom"
    )


def test_connection_failure_is_api_connection_error(mode: str, sleeps: SleepRecorder) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    class Dead:
        api_key = "API_key_for_nowhere"
        base_url = f"http://127.0.0.1:{port}"

        def client(self, **o: object) -> vc.Verbex:
            return vc.Verbex(api_key=self.api_key, base_url=self.base_url, **o)  # type: ignore[arg-type]

        def async_client(self, **o: object) -> vc.AsyncVerbex:
            return vc.AsyncVerbex(api_key=self.api_key, base_url=self.base_url, **o)  # type: ignore[arg-type]

    with pytest.raises(vc.APIConnectionError) as info:
        call_signed_url(mode, Dead(), "c1", sleeps=sleeps)
    assert not isinstance(info.value, vc.APITimeoutError)
    assert len(sleeps.delays) == 2  # max_retries=2 by default


def test_read_timeout_is_api_timeout_error(mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.delay_next(1.0, count=2)
    with pytest.raises(vc.APITimeoutError):
        call_signed_url(
            mode, verbex_sandbox, "c1", client_options={"timeout": 0.2, "max_retries": 1}, sleeps=sleeps
        )
    assert sleeps.delays == [0.5]
