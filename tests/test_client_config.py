"""Client construction: options, environment fallbacks, headers, escape hatches."""

from __future__ import annotations

import asyncio
import functools
import platform
import time

import httpx
import pytest

import verbex_client
from verbex_client import AsyncVerbex, ConfigurationError, Verbex
from verbex_client._config import POOL_SIZE
from verbex_client.testing import Sandbox


def test_no_key_anywhere_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VERBEX_API_KEY", raising=False)
    for cls in (Verbex, AsyncVerbex):
        with pytest.raises(ConfigurationError, match="VERBEX_API_KEY"):
            cls()


def test_key_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, verbex_sandbox: Sandbox
) -> None:
    monkeypatch.setenv("VERBEX_API_KEY", verbex_sandbox.api_key)
    monkeypatch.setenv("VERBEX_BASE_URL", verbex_sandbox.base_url)
    verbex_sandbox.add_recording("c1", b"x" * 10)
    with Verbex() as client:
        assert client.base_url == verbex_sandbox.base_url
        assert client.recordings.signed_url("c1").call_id == "c1"
    (request,) = verbex_sandbox.api_requests()
    assert request.headers["Authorization"] == "Bearer ***"  # sandbox masks; it accepted the real key


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VERBEX_BASE_URL", raising=False)
    with Verbex(api_key="API_" + "k" * 60) as client:
        assert client.base_url == "https://api.verbex.ai"


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERBEX_BASE_URL", "http://127.0.0.1:1")
    with Verbex(api_key="API_explicit_key", base_url="http://127.0.0.1:2/") as client:
        assert client.base_url == "http://127.0.0.1:2"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": "30"}, TypeError),
        ({"timeout": True}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"base_url": "ftp://x"}, ConfigurationError),
        ({"base_url": "not a url"}, ConfigurationError),
        ({"api_key": 123}, TypeError),
        ({"api_key": "API_key\n"}, ConfigurationError),
        ({"default_headers": {"Authorization": "Bearer other"}}, ConfigurationError),
        ({"http_client": object()}, TypeError),
        ({"api_key": "API_k\u00e9y_0123456789"}, ConfigurationError),
        ({"api_key": "API_k\x00ey_0123456789"}, ConfigurationError),
        ({"api_key": "API key 0123456789"}, ConfigurationError),
        ({"api_key": "API_\t0123456789"}, ConfigurationError),
        ({"api_key": "API_123"}, ConfigurationError),
        ({"base_url": "http://127.0.0.1:99999"}, ConfigurationError),
        ({"base_url": "http://127.0.0.1:port"}, ConfigurationError),
        ({"base_url": "https://api.verbex.ai/?token=x"}, ConfigurationError),
        ({"base_url": "https://user:pw@api.verbex.ai"}, ConfigurationError),
        ({"base_url": "https://api.verbex.ai/#frag"}, ConfigurationError),
        ({"base_url": "https://\u00e4pi.verbex.ai"}, ConfigurationError),
        ({"default_headers": {"X-Team": "caf\u00e9"}}, ConfigurationError),
        ({"default_headers": {"X-Team": "a\r\nX-Evil: 1"}}, ConfigurationError),
        ({"default_headers": {"Bad Name": "x"}}, ConfigurationError),
        ({"default_headers": {"X-Team": 5}}, TypeError),
    ],
)
def test_bad_options_are_rejected_at_construction(kwargs: dict[str, object], error: type[Exception]) -> None:
    options = {"api_key": "API_valid_key_123", **kwargs}
    with pytest.raises(error):
        Verbex(**options)  # type: ignore[arg-type]


def test_timeout_accepts_seconds_or_httpx_timeout() -> None:
    with Verbex(api_key="API_valid_key_123", timeout=5) as client:
        assert client.timeout == httpx.Timeout(5.0)
    custom = httpx.Timeout(3.0, connect=1.0)
    with Verbex(api_key="API_valid_key_123", timeout=custom) as client:
        assert client.timeout is custom


def test_every_request_sends_user_agent_auth_and_default_headers(mode: str, verbex_sandbox: Sandbox) -> None:
    from conftest import call_signed_url

    verbex_sandbox.add_recording("c1", b"abc")
    call_signed_url(mode, verbex_sandbox, "c1", client_options={"default_headers": {"X-Team": "qa"}})
    (request,) = verbex_sandbox.api_requests()
    python = ".".join(platform.python_version_tuple()[:2])
    agent = request.headers["User-Agent"]
    assert agent.startswith(f"verbex-client/{verbex_client.__version__} python/{python}")
    assert agent.endswith(f"httpx/{httpx.__version__}")
    assert request.headers["X-Team"] == "qa"
    assert request.json() == {"call_id": "c1", "expiration_url_in_minutes": 10}


def test_with_options_shares_the_pool_and_overrides(verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    with verbex_sandbox.client() as client:
        copy = client.with_options(max_retries=0, default_headers={"X-Copy": "1"}, timeout=2.0)
        assert copy._transport.pool is client._transport.pool
        assert copy.max_retries == 0 and client.max_retries == 2
        copy.recordings.signed_url("c1")
        client.recordings.signed_url("c1")
        first, second = verbex_sandbox.api_requests()
        assert first.headers.get("X-Copy") == "1" and "X-Copy" not in second.headers
        wrong_key = client.with_options(api_key="API_wrong_key_456")
        with pytest.raises(verbex_client.AuthenticationError):
            wrong_key.recordings.signed_url("c1")
        copy.close()  # a copy does not own the shared pool
        assert client.recordings.signed_url("c1").call_id == "c1"
        with pytest.raises(TypeError, match="unexpected option"):
            client.with_options(verify=False)


def test_async_with_options_shares_the_pool(verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("c1", b"abc")

    async def run() -> None:
        async with verbex_sandbox.async_client() as client:
            copy = client.with_options(default_headers={"X-Copy": "1"})
            assert copy._transport.pool is client._transport.pool
            await copy.recordings.signed_url("c1")
            assert verbex_sandbox.api_requests()[-1].headers["X-Copy"] == "1"

    asyncio.run(run())


def test_user_supplied_http_client_is_used_and_left_open(verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    seen: list[str] = []
    http = httpx.Client(
        event_hooks={"request": [lambda r: seen.append(r.url.path)]}, headers={"X-Org": "team-7"}
    )
    with verbex_sandbox.client(http_client=http) as client:
        assert client.recordings.signed_url("c1").file_name == "c1.ogg"
    assert seen == ["/v1/call-recording/signed-url"]
    sent = {name.lower(): value for name, value in verbex_sandbox.api_requests()[0].headers.items()}
    assert sent["x-org"] == "team-7"  # the client's own headers still apply
    assert not http.is_closed
    http.close()


def test_key_errors_name_the_rule_never_the_key() -> None:
    for key in ("API_k\u00e9y_0123456789", "API_k\x00ey_0123456789", "API key 0123456789"):
        with pytest.raises(ConfigurationError) as info:
            Verbex(api_key=key)
        assert str(info.value) == (
            "api_key must be printable ASCII without spaces (a header-safe token); check how it was loaded"
        )
        assert info.value.__context__ is None and info.value.__cause__ is None


def test_generated_client_escape_hatch_is_configured(verbex_sandbox: Sandbox) -> None:
    import verbex_api
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
    from verbex_api.models import CallRecordingRequest, CallRecordingSignedUrlResponse

    verbex_sandbox.add_recording("c1", b"abc")
    with verbex_sandbox.client(default_headers={"X-Team": "qa"}) as client:
        assert isinstance(client.api, verbex_api.AuthenticatedClient)  # fits secured operations too
        parsed = op.sync(client=client.api, body=CallRecordingRequest(call_id="c1"))
        assert isinstance(parsed, CallRecordingSignedUrlResponse)
        assert verbex_sandbox.api_key not in repr(client.api) and verbex_sandbox.api_key != client.api.token
        # The generated client's own copies go through our transport too: auth, retries, errors.
        copy = client.api.with_headers({"X-Trace": "t1"}).with_timeout(httpx.Timeout(5.0))
        verbex_sandbox.fail_next(status=503)
        assert op.sync_detailed(client=copy, body=CallRecordingRequest(call_id="c1")).status_code == 200
        first, second = verbex_sandbox.api_requests()[-2:]
        assert second.headers["X-Trace"] == "t1" and second.headers["Authorization"] == "Bearer ***"
        assert second.headers["X-Team"] == "qa" and second.headers["User-Agent"].startswith("verbex-client/")
        assert first.headers["Authorization"] == "Bearer ***"  # the sandbox masks the key it accepted
        with pytest.raises(verbex_client.RecordingNotFoundError):
            op.sync_detailed(client=copy, body=CallRecordingRequest(call_id="missing"))


def test_call_runs_any_generated_operation_and_checks_what_it_is_given(verbex_sandbox: Sandbox) -> None:
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
    from verbex_api.models import CallRecordingRequest, CallRecordingSignedUrlResponse

    verbex_sandbox.add_recording("c1", b"abc", file_name="c1.wav")
    body = CallRecordingRequest(call_id="c1", expiration_url_in_minutes=5)
    with verbex_sandbox.client() as client:
        for operation in (op, op.sync_detailed, functools.partial(op.sync_detailed, body=body)):
            model = (
                client.call(operation)
                if isinstance(operation, functools.partial)
                else client.call(operation, body=body)
            )
            assert isinstance(model, CallRecordingSignedUrlResponse) and model.file_name == "c1.wav"
        with pytest.raises(TypeError, match="body"):
            client.call(op)  # a missing argument, as Python reports it, before any request
        with pytest.raises(TypeError, match=r"AsyncVerbex\.call"):
            client.call(op.asyncio_detailed, body=body)
        with pytest.raises(TypeError, match="not a generated operation module"):
            client.call(httpx, body=body)
    assert [r.json()["expiration_url_in_minutes"] for r in verbex_sandbox.api_requests()] == [5, 5, 5]

    async def run() -> None:
        async with verbex_sandbox.async_client() as client:
            model = await client.call(op.asyncio_detailed, body=body)
            assert isinstance(model, CallRecordingSignedUrlResponse)
            assert isinstance(await client.call(op, body=body), CallRecordingSignedUrlResponse)
            with pytest.raises(TypeError, match=r"Verbex\.call"):
                await client.call(op.sync_detailed, body=body)

    asyncio.run(run())


def test_client_reprs_hide_the_key(verbex_sandbox: Sandbox) -> None:
    with verbex_sandbox.client() as client:
        assert verbex_sandbox.api_key not in repr(client)
        assert verbex_sandbox.api_key not in repr(client._options)


def _wait_for_api_requests(sandbox: Sandbox, count: int) -> None:
    """Poll (bounded, 10 s) until the sandbox has received `count` API requests."""
    deadline = time.monotonic() + 10
    while len(sandbox.api_requests()) < count:
        assert time.monotonic() < deadline, f"only {len(sandbox.api_requests())} of {count} requests arrived"
        time.sleep(0.01)


def test_async_requests_past_the_pool_size_wait_in_our_gate_shared_by_copies(
    verbex_sandbox: Sandbox,
) -> None:
    size = POOL_SIZE
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.delay_next(0.5, count=size + 5)

    async def run() -> None:
        async with verbex_sandbox.async_client() as client:
            copy = client.with_options(max_retries=0)
            calls = [
                asyncio.create_task((client if i % 2 else copy).recordings.signed_url("c1"))
                for i in range(size + 5)
            ]
            await asyncio.to_thread(_wait_for_api_requests, verbex_sandbox, size)
            # httpcore rescans its whole queue at every event; with the gate the
            # five extra calls wait in front of it (private attribute: httpx < 0.29).
            pool = client._transport.pool._pool  # type: ignore[union-attr]
            assert len(pool._requests) == size
            assert client._transport.gate is copy._transport.gate
            results = await asyncio.gather(*calls)
            assert {r.call_id for r in results} == {"c1"}
            assert len(verbex_sandbox.api_requests()) == size + 5

    asyncio.run(run())


def test_async_wait_for_a_free_connection_is_bounded_by_the_pool_timeout(
    verbex_sandbox: Sandbox,
) -> None:
    size = POOL_SIZE
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.delay_next(3.0, count=size)
    timeout = httpx.Timeout(10.0, pool=0.2)

    async def run() -> None:
        async with verbex_sandbox.async_client(timeout=timeout, max_retries=0) as client:
            busy = [asyncio.create_task(client.recordings.signed_url("c1")) for _ in range(size)]
            await asyncio.to_thread(_wait_for_api_requests, verbex_sandbox, size)
            started = time.monotonic()
            with pytest.raises(verbex_client.APITimeoutError, match="PoolTimeout"):
                await client.recordings.signed_url("c1")
            # Well before the busy calls' 3 s replies: the wait itself timed out.
            assert time.monotonic() - started < 2.0
            for task in busy:
                task.cancel()
            await asyncio.gather(*busy, return_exceptions=True)

    asyncio.run(run())


def test_proxies_from_the_environment_are_honoured(
    monkeypatch: pytest.MonkeyPatch, mode: str, verbex_sandbox: Sandbox
) -> None:
    from conftest import call_signed_url

    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", verbex_sandbox.base_url)  # the sandbox stands in as the proxy
    verbex_sandbox.add_recording("c1", b"abc")
    options = {"base_url": "http://api.verbex.invalid", "max_retries": 0}
    # Unresolvable without the proxy; through it, the sandbox gets the absolute-form request
    # (`POST http://api.verbex.invalid/v1/...`) and answers it.
    assert call_signed_url(mode, verbex_sandbox, "c1", client_options=options).call_id == "c1"
    (request,) = verbex_sandbox.api_requests()
    assert request.headers["Host"] == "api.verbex.invalid"


def test_call_sends_the_request_the_generated_operation_builds(verbex_sandbox: Sandbox) -> None:
    from verbex_api.api.call_recording import get_signed_url_v1_call_recording_signed_url_post as op
    from verbex_api.models import CallRecordingRequest

    verbex_sandbox.add_recording("c1", b"abc", file_name="c1.wav")
    body = CallRecordingRequest(call_id="c1", expiration_url_in_minutes=7)
    built = op._get_kwargs(body=body)
    with verbex_sandbox.client() as client:
        client.call(op, body=body)
    (sent,) = verbex_sandbox.api_requests()
    assert sent.method == built["method"].upper() and sent.path == built["url"]
    assert sent.json() == built["json"]
    assert sent.headers["Content-Type"] == "application/json"


def test_operation_request_keeps_every_header_but_the_one_httpx_sets_for_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    from verbex_client._operations import operation_for

    module = types.ModuleType("verbex_api.api.fake.get_thing")

    def _get_kwargs(*, thing_id: str, trace: str | None = None) -> dict[str, object]:
        headers = {"Content-Type": "application/json"}
        if trace is not None:
            headers["X-Trace"] = trace
        return {"method": "post", "url": f"/things/{thing_id}", "json": {}, "headers": headers}

    def sync_detailed(**kwargs: object) -> None:
        raise AssertionError("not called: client.call sends _get_kwargs's request itself")

    def not_generated(**kwargs: object) -> None:
        raise AssertionError("never called")

    sync_detailed.__module__ = module.__name__
    monkeypatch.setitem(sys.modules, module.__name__, module)
    module._get_kwargs = _get_kwargs  # type: ignore[attr-defined]
    module._parse_response = lambda *, client, response: None  # type: ignore[attr-defined]
    module.sync_detailed = sync_detailed  # type: ignore[attr-defined]
    operation = operation_for(module, is_async=False)
    assert "headers" not in operation.request({"thing_id": "t1"})  # httpx adds exactly that
    assert operation.request({"thing_id": "t1", "trace": "x"})["headers"] == {
        "Content-Type": "application/json",
        "X-Trace": "x",
    }
    with pytest.raises(TypeError, match="not a generated operation"):
        operation_for(not_generated, is_async=False)  # its module (this one) has no _get_kwargs
    bound = operation_for(functools.partial(module.sync_detailed, thing_id="t2"), is_async=False)
    with pytest.raises(TypeError, match="keyword arguments only"):
        operation_for(functools.partial(module.sync_detailed, "t2"), is_async=False)
    assert bound.request({})["url"] == "/things/t2"
