"""Secrets never reach logs, reprs or exception text; log lines carry what operators need."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import verbex_client as vc
from conftest import SleepRecorder, call_signed_url
from verbex_client.testing import Sandbox


def secrets_of(sandbox: Sandbox, url: vc.SignedRecordingUrl) -> list[str]:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(url.url).query)
    return [sandbox.api_key, query["X-Goog-Signature"][0], query["X-Goog-Credential"][0]]


def test_debug_logs_of_every_library_hold_no_secret(
    mode: str, verbex_sandbox: Sandbox, caplog: pytest.LogCaptureFixture, sleeps: SleepRecorder
) -> None:
    import httpx

    verbex_sandbox.add_recording("c1", b"abc" * 100)
    verbex_sandbox.fail_next(1, status=503)
    caplog.set_level(logging.DEBUG)  # root: ours, httpx's and httpcore's records all captured
    url = call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps)
    with httpx.Client() as http:  # httpx logs the full URL at INFO; our filter strips the query
        assert http.get(url.url).status_code == 200
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /v1/call-recording/signed-url -> 503" in text and "(attempt 1)" in text
    assert "-> 200" in text and "(attempt 2)" in text and " ms " in text
    assert "retry 1 of 2" in text
    assert "HTTP Request: GET" in text  # httpx's own line is there, redacted
    for secret in secrets_of(verbex_sandbox, url):
        assert secret not in text


def test_exceptions_never_show_the_key_even_when_the_server_echoes_it(
    mode: str, verbex_sandbox: Sandbox
) -> None:
    echo = f'{{"error": "invalid_api_key", "message": "Key {verbex_sandbox.api_key} is revoked"}}'.encode()
    verbex_sandbox.fail_next(status=401, body=echo)
    with pytest.raises(vc.AuthenticationError) as info:
        call_signed_url(mode, verbex_sandbox, "c1")
    for text in (str(info.value), repr(info.value), info.value.message, str(info.value.args)):
        assert verbex_sandbox.api_key not in text
    assert "is revoked" in str(info.value)


def test_response_validation_error_text_hides_the_signed_url(mode: str, verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.respond_next(
        b'{"file_name": "a", "signed_url": "https://h/p?X-Goog-Signature=SIGSECRET", "expiration_minutes": "x",'
        b' "expires_at": "2026-04-02T06:25:27Z"}'
    )
    with pytest.raises(vc.APIResponseValidationError) as info:
        call_signed_url(mode, verbex_sandbox, "c1")
    assert "SIGSECRET" not in str(info.value) and "SIGSECRET" not in repr(info.value)


def test_verbex_log_env_adds_a_stderr_handler(verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    code = (
        "from verbex_client import Verbex\n"
        f"c = Verbex(api_key={verbex_sandbox.api_key!r}, base_url={verbex_sandbox.base_url!r})\n"
        "print(c.recordings.signed_url('c1').url)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"VERBEX_LOG": "debug", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "verbex_client" in result.stderr and "POST /v1/call-recording/signed-url -> 200" in result.stderr
    assert verbex_sandbox.api_key not in result.stderr
    signature = result.stdout.split("X-Goog-Signature=")[1].strip()
    assert signature not in result.stderr
    quiet = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={"PATH": ""}
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
