"""The sandbox's gate, `hold_download`, over real sockets: a held recording's download waits
until the test releases it (or the hold times out), the others are served meanwhile."""

from __future__ import annotations

import threading

import httpx
import pytest

from verbex_client.testing import Sandbox

HELD, FREE = b"held" * 1000, b"free" * 1000


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    verbex_sandbox.add_recording("held", HELD)
    verbex_sandbox.add_recording("free", FREE)
    return verbex_sandbox


def url_of(sb: Sandbox, call_id: str) -> str:
    with sb.client() as client:
        return client.recordings.signed_url(call_id).url


def test_a_held_download_waits_for_release_while_others_are_served(sb: Sandbox) -> None:
    held = sb.hold_download("held")
    got: list[bytes] = []
    fetch = threading.Thread(target=lambda: got.append(httpx.get(url_of(sb, "held"), timeout=30).content))
    fetch.start()
    assert held.reached.wait(10)  # the request arrived and waits
    assert httpx.get(url_of(sb, "free"), timeout=10).content == FREE  # not held
    assert got == [] and fetch.is_alive()
    held.release()
    fetch.join(10)
    assert got == [HELD] and held.released and not held.timed_out
    assert httpx.get(url_of(sb, "held"), timeout=10).content == HELD  # released for good


def test_a_hold_ends_by_itself_after_its_timeout(sb: Sandbox) -> None:
    held = sb.hold_download("held", timeout=0.2)
    assert httpx.get(url_of(sb, "held"), timeout=10).content == HELD
    assert held.timed_out and not held.released


def test_clear_faults_releases_holds_and_unknown_ids_are_refused(sb: Sandbox) -> None:
    held = sb.hold_download("held")
    sb.clear_faults()
    assert held.released
    assert httpx.get(url_of(sb, "held"), timeout=10).content == HELD
    with pytest.raises(KeyError, match="no recording for 'nope'"):
        sb.hold_download("nope")
