"""Prism, a mock server we did not write, judges our requests and our parsing against openapi.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from _tools import prism

import verbex_client as vc
from conftest import ROOT
from verbex_client.testing import Sandbox

SPEC = str(ROOT / "openapi.json")
EXAMPLE = json.loads((ROOT / "openapi.json").read_text())["components"]["schemas"][
    "CallRecordingSignedUrlResponse"
]["example"]
KEY = "API_prism_contract_test_key_0123456789"


@pytest.fixture(scope="module")
def static_mock() -> Iterator[str]:
    with prism("mock", SPEC) as url:
        yield url


@pytest.fixture(scope="module")
def dynamic_mock() -> Iterator[str]:
    # No --seed: with one, Prism answers every request with the same body.
    with prism("mock", "-d", SPEC) as url:
        yield url


def no_violations(raw: vc.APIResponse[vc.SignedRecordingUrl]) -> None:
    assert "sl-violations" not in raw.headers, raw.headers.get("sl-violations")


def test_valid_call_returns_the_spec_example(static_mock: str) -> None:
    with vc.Verbex(api_key=KEY, base_url=static_mock) as client:
        raw = client.recordings.with_raw_response.signed_url("call_123", expires_in_minutes=30)
    no_violations(raw)
    url = raw.parsed
    assert url.file_name == EXAMPLE["file_name"] and url.url == EXAMPLE["signed_url"]
    assert url.expiration_minutes == EXAMPLE["expiration_minutes"]
    assert url.expires_at == datetime(2026, 4, 2, 6, 25, 27, 773121, tzinfo=UTC)


def test_async_call_conforms_too(static_mock: str) -> None:
    import asyncio

    async def run() -> vc.APIResponse[vc.SignedRecordingUrl]:
        async with vc.AsyncVerbex(api_key=KEY, base_url=static_mock) as client:
            return await client.recordings.with_raw_response.signed_url("call_123")

    no_violations(asyncio.run(run()))


@pytest.mark.parametrize(
    ("code", "error"), [("401", vc.AuthenticationError), ("404", vc.RecordingNotFoundError)]
)
def test_prefer_code_selects_documented_errors(static_mock: str, code: str, error: type) -> None:
    with vc.Verbex(api_key=KEY, base_url=static_mock, default_headers={"Prefer": f"code={code}"}) as client:
        with pytest.raises(error) as info:
            client.recordings.signed_url("call_123")
        assert "sl-violations" not in info.value.response.headers
        assert info.value.status_code == int(code)
        with pytest.raises(error):  # the same through with_options
            client.with_options(default_headers={"Prefer": f"code={code}"}).recordings.signed_url("c")


def test_prism_would_flag_a_bad_request(static_mock: str) -> None:
    """The check above can fail: a request missing call_id is reported by Prism."""
    import httpx

    response = httpx.post(
        static_mock + "/v1/call-recording/signed-url",
        json={"expiration_url_in_minutes": 5},
        headers={"Authorization": f"Bearer {KEY}"},  # the API needs it, whether the spec says so or not
    )
    assert response.status_code == 422 and "sl-violations" in response.headers


def test_two_hundred_random_schema_valid_bodies_all_parse(dynamic_mock: str) -> None:
    seen: set[str] = set()
    with vc.Verbex(api_key=KEY, base_url=dynamic_mock, max_retries=0) as client:
        for i in range(200):
            raw = client.recordings.with_raw_response.signed_url(f"call-{i}")
            no_violations(raw)
            assert raw.parsed.expires_at.tzinfo is not None
            seen.add(raw.parsed.file_name)
    assert len(seen) > 100  # really random bodies, not the example 200 times


def test_prism_proxy_validates_every_sandbox_response(verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("c1", b"audio", file_name="c1.ogg")
    with (
        prism("proxy", "--errors", SPEC, verbex_sandbox.base_url) as proxy,
        verbex_sandbox.client(base_url=proxy, max_retries=0) as client,
    ):
        raw = client.recordings.with_raw_response.signed_url("c1")
        no_violations(raw)
        with pytest.raises(vc.RecordingNotFoundError) as nf:
            client.recordings.signed_url("nope")
        with pytest.raises(vc.AuthenticationError) as auth:
            client.with_options(api_key="API_wrong_key_for_proxy").recordings.signed_url("c1")
        for error in (nf.value, auth.value):
            assert "sl-violations" not in error.response.headers
        # and the proxy does catch a drifted sandbox: a 200 without expires_at
        verbex_sandbox.respond_next(
            b'{"file_name": "x", "signed_url": "http://h/x", "expiration_minutes": 1}'
        )
        with pytest.raises(vc.InternalServerError) as drift:
            client.recordings.signed_url("c1")
        assert "expires_at" in json.dumps(drift.value.body)


def test_prism_holds_requests_to_the_security_the_spec_declares() -> None:
    """With a global bearer scheme (as the grown fixture declares), Prism turns away a request
    without the key and serves one with it, our client's included."""
    import httpx

    grown = str(ROOT / "tests" / "fixtures" / "specs" / "grown.json")
    with prism("mock", grown) as url:
        bare = httpx.post(url + "/v1/call-recording/signed-url", json={"call_id": "c"})
        assert bare.status_code == 401
        keyed = httpx.get(url + "/v1/calls/", headers={"Authorization": f"Bearer {KEY}"})
        assert keyed.status_code == 200 and "sl-violations" not in keyed.headers
        with vc.Verbex(api_key=KEY, base_url=url) as client:
            raw = client.recordings.with_raw_response.signed_url("call_123")
    no_violations(raw)
    assert raw.parsed.file_name == EXAMPLE["file_name"]
