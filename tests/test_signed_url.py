"""`recordings.signed_url`: validation before sending, parsing, the result type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import call_signed_url
from verbex_api.models import CallRecordingSignedUrlResponse
from verbex_client import SignedRecordingUrl
from verbex_client.testing import Sandbox


def test_returns_a_signed_url_for_a_known_call(mode: str, verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("call-1", b"OggS" + b"\0" * 100, file_name="call-1.ogg")
    before = datetime.now(UTC)
    url = call_signed_url(mode, verbex_sandbox, "call-1", expires_in_minutes=15)
    assert isinstance(url, SignedRecordingUrl)
    assert url.call_id == "call-1" and url.file_name == "call-1.ogg" and url.expiration_minutes == 15
    assert (
        url.url.startswith(verbex_sandbox.base_url + "/verbex-recordings/") and "X-Goog-Signature=" in url.url
    )
    assert url.expires_at.tzinfo == UTC
    assert before <= url.received_at <= datetime.now(UTC)
    assert 14 * 60 < url.seconds_remaining() <= 15 * 60
    assert not url.expired
    assert verbex_sandbox.api_requests()[0].json() == {"call_id": "call-1", "expiration_url_in_minutes": 15}


def test_raw_response_returns_parsed_value_and_http_response(mode: str, verbex_sandbox: Sandbox) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    raw = call_signed_url(mode, verbex_sandbox, "c1", raw=True)
    assert raw.status_code == 200 and raw.http_response.status_code == 200
    assert raw.parse() is raw.parsed and raw.parsed.call_id == "c1"
    assert raw.headers["content-type"] == "application/json"


BAD_ARGUMENTS = [
    ((123,), {}, TypeError, "call_id"),
    ((None,), {}, TypeError, "call_id"),
    ((b"c1",), {}, TypeError, "call_id"),
    (("",), {}, ValueError, "call_id"),
    ((" c1",), {}, ValueError, "call_id"),
    (("c1\n",), {}, ValueError, "call_id"),
    (("c\x001",), {}, ValueError, "call_id"),
    (("c\x7f1",), {}, ValueError, "call_id"),
    (("x" * 513,), {}, ValueError, "call_id"),
    (("c1",), {"expires_in_minutes": True}, TypeError, "expires_in_minutes"),
    (("c1",), {"expires_in_minutes": 10.0}, TypeError, "expires_in_minutes"),
    (("c1",), {"expires_in_minutes": "10"}, TypeError, "expires_in_minutes"),
    (("c1",), {"expires_in_minutes": 0}, ValueError, "expires_in_minutes"),
    (("c1",), {"expires_in_minutes": -5}, ValueError, "expires_in_minutes"),
    (("c1",), {"expires_in_minutes": 10081}, ValueError, "expires_in_minutes"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "names"), BAD_ARGUMENTS)
def test_bad_arguments_raise_before_anything_is_sent(
    mode: str,
    verbex_sandbox: Sandbox,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    error: type,
    names: str,
) -> None:
    with pytest.raises(error, match=names):
        call_signed_url(mode, verbex_sandbox, *args, **kwargs)
    assert verbex_sandbox.requests == []


@pytest.mark.parametrize("minutes", [1, 10080])
def test_boundary_expiry_values_are_sent(mode: str, verbex_sandbox: Sandbox, minutes: int) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    assert (
        call_signed_url(mode, verbex_sandbox, "c1", expires_in_minutes=minutes).expiration_minutes == minutes
    )


def test_max_length_call_id_is_accepted(verbex_sandbox: Sandbox) -> None:
    call_id = "é" * 512
    verbex_sandbox.add_recording(call_id, b"abc")
    assert call_signed_url("sync", verbex_sandbox, call_id).call_id == call_id


def _reply(expires_at: object) -> bytes:
    import json

    body = {"file_name": "a.ogg", "signed_url": "https://h/a.ogg", "expiration_minutes": 10}
    return json.dumps({**body, "expires_at": expires_at}).encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-02T06:25:27.773121825Z", datetime(2026, 4, 2, 6, 25, 27, 773121, tzinfo=UTC)),
        ("2026-04-02T06:25:27Z", datetime(2026, 4, 2, 6, 25, 27, tzinfo=UTC)),
        ("2026-04-02T08:25:27.5+02:00", datetime(2026, 4, 2, 6, 25, 27, 500000, tzinfo=UTC)),
        ("2026-04-02T06:25:27", datetime(2026, 4, 2, 6, 25, 27, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_to_aware_utc(
    mode: str, verbex_sandbox: Sandbox, text: str, expected: datetime
) -> None:
    verbex_sandbox.respond_next(_reply(text))
    parsed = call_signed_url(mode, verbex_sandbox, "c1").expires_at
    assert parsed == expected and parsed.tzinfo == UTC


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-02T06:25:27Z", 12345, None])
def test_bad_timestamps_are_rejected(mode: str, verbex_sandbox: Sandbox, text: object) -> None:
    import verbex_client as vc

    verbex_sandbox.respond_next(_reply(text))
    with pytest.raises(vc.APIResponseValidationError, match="field 'expires_at'"):
        call_signed_url(mode, verbex_sandbox, "c1")


def _url(expires_at: datetime, received_at: datetime, minutes: int = 10) -> SignedRecordingUrl:
    url = "https://storage.googleapis.com/b/f.ogg?X-Goog-Credential=SECRETCRED&X-Goog-Signature=SECRETSIG"
    model = CallRecordingSignedUrlResponse(
        file_name="f.ogg", signed_url=url, expiration_minutes=minutes, expires_at=expires_at
    )
    return SignedRecordingUrl(
        call_id="c",
        file_name="f.ogg",
        url=url,
        expiration_minutes=minutes,
        expires_at=expires_at,
        received_at=received_at,
        model=model,
    )


def test_expiry_uses_the_earlier_deadline_so_clock_skew_cannot_resurrect_a_url() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    # Local clock 1 h behind the server: expires_at looks far away, received_at + 10 min does not.
    behind = _url(expires_at=now + timedelta(minutes=70), received_at=now)
    assert behind.seconds_remaining(now + timedelta(minutes=9, seconds=56)) < 0
    # Local clock ahead: expires_at is the earlier one and wins.
    ahead = _url(expires_at=now + timedelta(minutes=2), received_at=now)
    assert 100 < ahead.seconds_remaining(now) <= 115
    assert ahead.seconds_remaining(now + timedelta(minutes=2)) < 0
    assert _url(now - timedelta(seconds=1), now - timedelta(minutes=11)).expired


def test_repr_and_str_show_host_path_expiry_but_no_credential_or_signature() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    url = _url(now, now)
    for text in (repr(url), str(url), f"{url}", repr([url])):
        assert "storage.googleapis.com/b/f.ogg" in text and "2026-01-01T12:00:00" in text
        assert "SECRETCRED" not in text and "SECRETSIG" not in text and "X-Goog" not in text


def test_signed_url_is_immutable() -> None:
    import attrs

    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        _url(now, now).url = "x"  # type: ignore[misc]
