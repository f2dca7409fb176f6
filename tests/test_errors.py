"""Every reply, however malformed, becomes one documented exception (sync and async alike)."""

from __future__ import annotations

import asyncio
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


class CannedServer:
    """A real HTTP peer on 127.0.0.1 answering every connection with the same raw bytes."""

    def __init__(self, reply: bytes) -> None:
        import socket
        import threading

        self.reply = reply
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests += 1
                conn.sendall(self.reply)

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def _reply(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


KEY = "API_key_for_canned_servers_0123456789"


def _signed_url_via(mode: str, base_url: str, sleeps: SleepRecorder, **options: object) -> object:
    class Peer:
        api_key = KEY

        def client(self, **o: object) -> vc.Verbex:
            return vc.Verbex(api_key=KEY, base_url=base_url, **{**options, **o})  # type: ignore[arg-type]

        def async_client(self, **o: object) -> vc.AsyncVerbex:
            return vc.AsyncVerbex(api_key=KEY, base_url=base_url, **{**options, **o})  # type: ignore[arg-type]

    return call_signed_url(mode, Peer(), "c1", sleeps=sleeps)


def test_a_broken_content_encoding_is_a_documented_error_not_httpx_decoding_error(
    mode: str, sleeps: SleepRecorder
) -> None:
    broken = _reply("200 OK", b"this is not gzip", "Content-Type: application/json", "Content-Encoding: gzip")
    with CannedServer(broken) as server:
        with pytest.raises(vc.APIResponseValidationError, match="cannot be decoded") as info:
            _signed_url_via(mode, server.base_url, sleeps)
        assert server.requests == 1 and sleeps.delays == []  # not a network fault: not retried
    assert info.value.__cause__ is None and info.value.__context__ is None
    failing = _reply("503 Service Unavailable", b"garbage", "Content-Encoding: gzip")
    with CannedServer(failing) as server:
        with pytest.raises(vc.InternalServerError) as status:
            _signed_url_via(mode, server.base_url, sleeps, max_retries=1)
        assert server.requests == 2  # judged by its status (retryable), without the body
    assert status.value.status_code == 503 and status.value.message == "Service Unavailable"


def test_a_reply_that_is_not_http_is_a_connection_error_naming_the_host(
    mode: str, sleeps: SleepRecorder
) -> None:
    with CannedServer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as server:
        with pytest.raises(vc.APIConnectionError) as info:
            _signed_url_via(mode, server.base_url, sleeps, max_retries=1)
        assert server.requests == 2  # the peer broke the protocol: retried like a dropped connection
    host = server.base_url.removeprefix("http://")
    assert str(info.value).startswith(f"connection to {host} failed (RemoteProtocolError")
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_a_refused_connection_names_the_host_it_could_not_reach(mode: str, sleeps: SleepRecorder) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(vc.APIConnectionError) as info:
        _signed_url_via(mode, f"http://127.0.0.1:{port}", sleeps, max_retries=0)
    assert str(info.value).startswith(f"could not connect to 127.0.0.1:{port} (ConnectError")


def test_a_wrong_base_url_is_a_route_not_found_not_a_missing_recording(
    mode: str, verbex_sandbox: Sandbox
) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    with pytest.raises(vc.NotFoundError) as info:  # FastAPI's {"detail": "Not Found"} for /v1/v1/...
        call_signed_url(
            mode, verbex_sandbox, "c1", client_options={"base_url": verbex_sandbox.base_url + "/v1"}
        )
    assert type(info.value) is vc.NotFoundError and info.value.body == {"detail": "Not Found"}
    assert info.value.message == (
        "route not found: POST /v1/v1/call-recording/signed-url does not exist on this server; "
        f"check the base URL ({verbex_sandbox.base_url}/v1)"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (
            b'{"error": "recording_not_found", "message": "No recording"}',
            "application/json",
            vc.RecordingNotFoundError,
        ),
        (b'{"detail": "Not Found"}', "application/json", vc.NotFoundError),
        (
            b'{"error": 404, "message": "numbers are not the spec\'s ErrorResponse"}',
            "application/json",
            vc.NotFoundError,
        ),
        (b"<html><title>404 Not Found</title></html>", "text/html", vc.NotFoundError),
        (b"", "text/plain", vc.NotFoundError),
    ],
)
def test_only_the_documented_404_body_means_no_recording(
    mode: str, verbex_sandbox: Sandbox, body: bytes, content_type: str, error: type
) -> None:
    verbex_sandbox.fail_next(status=404, body=body, content_type=content_type)
    with pytest.raises(vc.NotFoundError) as info:
        call_signed_url(mode, verbex_sandbox, "c1")
    assert type(info.value) is error
    if error is vc.NotFoundError:
        assert info.value.message.startswith("route not found: POST /v1/call-recording/signed-url")


def test_the_same_404_rule_applies_through_client_api(verbex_sandbox: Sandbox) -> None:
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
    from verbex_api.models import CallRecordingRequest

    with verbex_sandbox.client() as client:
        with pytest.raises(vc.RecordingNotFoundError):
            op.sync_detailed(client=client.api, body=CallRecordingRequest(call_id="missing"))
        verbex_sandbox.fail_next(status=404, body=b'{"detail": "Not Found"}')
        with pytest.raises(vc.NotFoundError) as info:
            op.sync_detailed(client=client.api, body=CallRecordingRequest(call_id="missing"))
        assert type(info.value) is vc.NotFoundError


def test_a_closed_client_raises_client_closed_error(mode: str, verbex_sandbox: Sandbox) -> None:
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
    from verbex_api.models import CallRecordingRequest

    verbex_sandbox.add_recording("c1", b"abc")
    body = CallRecordingRequest(call_id="c1")
    if mode == "sync":
        with verbex_sandbox.client() as client:
            copy = client.with_options(max_retries=0)
            copy.recordings.signed_url("c1")
        calls = [
            lambda: client.recordings.signed_url("c1"),
            lambda: client.call(op, body=body),
            lambda: op.sync_detailed(client=client.api, body=body),
            lambda: copy.recordings.signed_url("c1"),  # a copy shares the closed pool
        ]
        for call in calls:
            with pytest.raises(vc.ClientClosedError, match="the client is closed"):
                call()
    else:

        async def run() -> None:
            async with verbex_sandbox.async_client() as client:
                copy = client.with_options(max_retries=0)
                await copy.recordings.signed_url("c1")
            for coroutine in (
                client.recordings.signed_url("c1"),
                client.call(op, body=body),
                op.asyncio_detailed(client=client.api, body=body),
                copy.recordings.signed_url("c1"),
            ):
                with pytest.raises(vc.ClientClosedError):
                    await coroutine

        asyncio.run(run())
    assert len(verbex_sandbox.api_requests()) == 1  # nothing was sent after closing


def test_a_request_that_is_not_valid_http_is_refused_once_and_quotes_nothing(
    verbex_sandbox: Sandbox, sleeps: SleepRecorder
) -> None:
    from conftest import fake_time
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
    from verbex_api.models import CallRecordingRequest

    with verbex_sandbox.client() as client:
        fake_time(client, sleeps)
        # h11 refuses the header line and quotes it (with the Authorization line) in its error
        bad = client.api.with_headers({"X-Note": "a\x00SECRET_IN_HEADER"})
        with pytest.raises(vc.APIConnectionError) as info:
            op.sync_detailed(client=bad, body=CallRecordingRequest(call_id="c1"))
    host = verbex_sandbox.base_url.removeprefix("http://")
    assert str(info.value) == (
        f"request to {host} could not be sent: it is not valid HTTP (LocalProtocolError)"
    )
    assert sleeps.delays == [] and verbex_sandbox.api_requests() == []  # not retried, nothing sent
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "SECRET_IN_HEADER" not in repr(info.value.args)
