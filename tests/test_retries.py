"""Retries: pure decisions tested directly, then the loop against the sandbox with a fake sleep."""

from __future__ import annotations

import email.utils

import pytest

import verbex_client as vc
from conftest import SleepRecorder, call_signed_url
from verbex_client._retries import backoff_delay, is_retryable_status, parse_retry_after
from verbex_client.testing import Sandbox


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 410, 422])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert not is_retryable_status(status)


def test_backoff_doubles_from_half_a_second_and_caps_at_eight() -> None:
    assert [backoff_delay(n, jitter=lambda: 0.0) for n in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert backoff_delay(0, jitter=lambda: 1.0) == 0.375  # jitter takes off at most 25 %


def test_retry_after_wins_and_is_capped_at_sixty_seconds() -> None:
    assert backoff_delay(3, 1.5) == 1.5
    assert backoff_delay(0, 3600.0) == 60.0


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "x", "retry-after": "4"}, 4.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, NOW) == expected


def test_500_twice_then_success(mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.fail_next(2, status=500)
    assert call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps).call_id == "c1"
    assert sleeps.delays == [0.5, 1.0]
    assert len(verbex_sandbox.api_requests()) == 3


def test_retries_are_bounded_by_max_retries(
    mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder
) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.fail_next(10, status=503)
    with pytest.raises(vc.InternalServerError):
        call_signed_url(mode, verbex_sandbox, "c1", client_options={"max_retries": 3}, sleeps=sleeps)
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert len(verbex_sandbox.api_requests()) == 4


def test_max_retries_zero_disables_retries(mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder) -> None:
    verbex_sandbox.fail_next(1, status=500)
    with pytest.raises(vc.InternalServerError):
        call_signed_url(mode, verbex_sandbox, "c1", client_options={"max_retries": 0}, sleeps=sleeps)
    assert sleeps.delays == [] and len(verbex_sandbox.api_requests()) == 1


def test_429_retry_after_is_honoured(mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.fail_next(1, status=429, retry_after="1")
    assert call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps).call_id == "c1"
    assert sleeps.delays == [1.0]


def test_retry_after_is_capped(mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.fail_next(1, status=503, retry_after="86400")
    call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps)
    assert sleeps.delays == [60.0]


@pytest.mark.parametrize("status", [408, 409])
def test_408_and_409_are_retried(
    mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder, status: int
) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.fail_next(1, status=status)
    assert call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps).call_id == "c1"
    assert len(sleeps.delays) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_not_retried(
    mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder, status: int
) -> None:
    verbex_sandbox.fail_next(3, status=status)
    with pytest.raises(vc.APIStatusError):
        call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps)
    assert sleeps.delays == [] and len(verbex_sandbox.api_requests()) == 1


def test_connection_reset_is_retried(mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder) -> None:
    verbex_sandbox.add_recording("c1", b"abc")
    verbex_sandbox.reset_next(2)
    assert call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps).call_id == "c1"
    assert sleeps.delays == [0.5, 1.0]


def test_connection_reset_every_time_ends_in_api_connection_error(
    mode: str, verbex_sandbox: Sandbox, sleeps: SleepRecorder
) -> None:
    verbex_sandbox.reset_next(5)
    with pytest.raises(vc.APIConnectionError) as info:
        call_signed_url(mode, verbex_sandbox, "c1", sleeps=sleeps)
    host = verbex_sandbox.base_url.removeprefix("http://")
    assert str(info.value).startswith(f"connection to {host} failed (")
    # The facts are copied in; the httpx error (whose text may quote the request) is not chained.
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert len(sleeps.delays) == 2
