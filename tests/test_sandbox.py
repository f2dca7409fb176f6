"""The sandbox itself, over real sockets: API behaviour, GCS-style storage, faults, lifecycle."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from verbex_client.testing import Sandbox

DATA = bytes(range(256)) * 400  # 102,400 bytes


@pytest.fixture
def sb(verbex_sandbox: Sandbox) -> Sandbox:
    verbex_sandbox.add_recording("c1", DATA, file_name="c1.ogg")
    return verbex_sandbox


def api(sb: Sandbox, body: object, key: str | None = "default", raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {sb.api_key if key == 'default' else key}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{sb.base_url}/v1/call-recording/signed-url", content=content, headers=headers)


def signed(sb: Sandbox, call_id: str = "c1", minutes: int = 10) -> str:
    response = api(sb, {"call_id": call_id, "expiration_url_in_minutes": minutes})
    assert response.status_code == 200, response.text
    return str(response.json()["signed_url"])


def error_code(response: httpx.Response) -> str:
    return response.text.split("<Code>")[1].split("</Code>")[0]


# -- API side ---------------------------------------------------------------------------------


def test_success_body_matches_the_spec(sb: Sandbox) -> None:
    response = api(sb, {"call_id": "c1", "expiration_url_in_minutes": 15})
    body = response.json()
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert set(body) == {"file_name", "signed_url", "expiration_minutes", "expires_at"}
    assert body["file_name"] == "c1.ogg" and body["expiration_minutes"] == 15
    assert body["expires_at"].endswith("Z") and len(body["expires_at"].split(".")[1]) == 10  # 9 digits + Z
    query = dict(parse_qsl(urlsplit(body["signed_url"]).query))
    assert set(query) == {
        "X-Goog-Algorithm",
        "X-Goog-Credential",
        "X-Goog-Date",
        "X-Goog-Expires",
        "X-Goog-SignedHeaders",
        "X-Goog-Signature",
        "x-sandbox-url-id",
    }
    assert query["X-Goog-Expires"] == "900" and query["X-Goog-SignedHeaders"] == "host"


def test_default_expiry_is_ten_minutes(sb: Sandbox) -> None:
    assert api(sb, {"call_id": "c1"}).json()["expiration_minutes"] == 10


@pytest.mark.parametrize(("key", "code"), [(None, "missing_api_key"), ("API_wrong", "invalid_api_key")])
def test_auth_failures_are_401_with_error_and_message(sb: Sandbox, key: str | None, code: str) -> None:
    response = api(sb, {"call_id": "c1"}, key=key)
    assert response.status_code == 401 and response.json()["error"] == code and response.json()["message"]


def test_unknown_call_is_404(sb: Sandbox) -> None:
    response = api(sb, {"call_id": "nope"})
    assert response.status_code == 404 and response.json()["error"] == "recording_not_found"


@pytest.mark.parametrize(
    ("raw", "loc", "kind"),
    [
        (b"{", ["body", 0], "json_invalid"),
        (b"[]", ["body"], "model_attributes_type"),
        (b"{}", ["body", "call_id"], "missing"),
        (b'{"call_id": 5}', ["body", "call_id"], "string_type"),
        (
            b'{"call_id": "c1", "expiration_url_in_minutes": "10"}',
            ["body", "expiration_url_in_minutes"],
            "int_type",
        ),
        (
            b'{"call_id": "c1", "expiration_url_in_minutes": true}',
            ["body", "expiration_url_in_minutes"],
            "int_type",
        ),
    ],
)
def test_invalid_bodies_are_422_in_fastapi_shape(
    sb: Sandbox, raw: bytes, loc: list[object], kind: str
) -> None:
    response = api(sb, None, raw=raw)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == loc and error["type"] == kind and isinstance(error["msg"], str)


def test_requests_are_recorded_with_secrets_masked(sb: Sandbox) -> None:
    url = signed(sb)
    httpx.get(url)
    api_request, storage_request = sb.requests
    assert api_request.target == "api" and api_request.method == "POST"
    assert api_request.headers["Authorization"] == "Bearer ***"
    assert api_request.json() == {"call_id": "c1", "expiration_url_in_minutes": 10}
    assert storage_request.target == "storage" and storage_request.query["X-Goog-Signature"] == "***"
    assert storage_request.query["X-Goog-Credential"] == "***"
    assert sb.api_key not in repr(sb.requests)
    sb.clear_requests()
    assert sb.requests == []


# -- storage side -----------------------------------------------------------------------------


def test_get_serves_the_object_with_length_etag_and_hashes(sb: Sandbox) -> None:
    response = httpx.get(signed(sb))
    assert response.status_code == 200 and response.content == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    hashes = dict(h.split("=", 1) for h in ",".join(response.headers.get_list("x-goog-hash")).split(","))
    assert base64.b64decode(hashes["md5"]) == hashlib.md5(DATA).digest()
    import google_crc32c

    assert base64.b64decode(hashes["crc32c"]) == google_crc32c.value(DATA).to_bytes(4, "big")
    assert response.headers["content-type"] == "audio/ogg"


def test_pure_python_crc32c_matches_the_c_library() -> None:
    import google_crc32c

    from verbex_client.testing import _storage

    table = _storage._crc32c_table()
    c = 0xFFFFFFFF
    for byte in DATA[:5000]:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    assert c ^ 0xFFFFFFFF == google_crc32c.value(DATA[:5000])


def test_head_returns_headers_only(sb: Sandbox) -> None:
    response = httpx.head(signed(sb))
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(DATA))


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-", 100, len(DATA) - 1),
        ("bytes=10-19", 10, 19),
        ("bytes=-5", len(DATA) - 5, len(DATA) - 1),
        ("bytes=0-999999", 0, len(DATA) - 1),
    ],
)
def test_ranges_give_206_with_content_range(sb: Sandbox, header: str, start: int, end: int) -> None:
    response = httpx.get(signed(sb), headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.content == DATA[start : end + 1]


def test_range_past_the_end_is_416(sb: Sandbox) -> None:
    response = httpx.get(signed(sb), headers={"Range": f"bytes={len(DATA)}-"})
    assert response.status_code == 416 and response.headers["content-range"] == f"bytes */{len(DATA)}"


def _tamper(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = value
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"X-Goog-Signature": "0" * 64}, 403, "SignatureDoesNotMatch"),
        ({"X-Goog-Expires": "1200"}, 403, "SignatureDoesNotMatch"),
        ({"X-Goog-Date": "yesterday"}, 400, "MalformedSecurityHeader"),
        ({"X-Goog-Expires": "abc"}, 400, "MalformedSecurityHeader"),
        ({"X-Goog-Expires": "604801"}, 400, "MalformedSecurityHeader"),
        ({"X-Goog-Signature": None}, 400, "MalformedSecurityHeader"),
    ],
)
def test_bad_signed_urls_get_gcs_errors(
    sb: Sandbox, changes: dict[str, str | None], status: int, code: str
) -> None:
    response = httpx.get(_tamper(signed(sb), **changes))  # type: ignore[arg-type]
    assert response.status_code == status and error_code(response) == code
    assert response.headers["content-type"].startswith("application/xml")


def test_expired_url_is_400_expired_token(verbex_sandbox: Sandbox) -> None:
    now = [1_800_000_000.0]
    with Sandbox(clock=lambda: now[0]) as sb:
        sb.add_recording("c1", DATA)
        url = signed(sb, minutes=1)
        assert httpx.get(url).status_code == 200
        now[0] += 61
        response = httpx.get(url)
        assert response.status_code == 400 and error_code(response) == "ExpiredToken"


def test_removed_object_is_404_no_such_key(sb: Sandbox) -> None:
    url = signed(sb)
    sb.remove_recording("c1")
    response = httpx.get(url)
    assert response.status_code == 404 and error_code(response) == "NoSuchKey"
    assert api(sb, {"call_id": "c1"}).status_code == 404


def test_recording_from_a_path_is_served_in_place(verbex_sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "long-call.wav"
    path.write_bytes(DATA * 3)
    verbex_sandbox.add_recording("c2", path)
    response = api(verbex_sandbox, {"call_id": "c2"})
    assert response.json()["file_name"] == "long-call.wav"
    got = httpx.get(response.json()["signed_url"])
    assert got.content == DATA * 3 and got.headers["content-type"] == "audio/x-wav"


def test_hostile_file_names_are_returned_verbatim_and_still_served(verbex_sandbox: Sandbox) -> None:
    for i, name in enumerate(["../../x.ogg", "/etc/passwd", "..", "a/b", "", "bad\x01name"]):
        verbex_sandbox.add_recording(f"h{i}", DATA[:10], file_name=name)
        body = api(verbex_sandbox, {"call_id": f"h{i}"}).json()
        assert body["file_name"] == name
        assert httpx.get(body["signed_url"]).content == DATA[:10]


# -- faults -----------------------------------------------------------------------------------


def test_fail_next_applies_to_n_requests_then_stops(sb: Sandbox) -> None:
    sb.fail_next(2, status=503, retry_after="1")
    first, second, third = (api(sb, {"call_id": "c1"}) for _ in range(3))
    assert first.status_code == second.status_code == 503 and first.headers["retry-after"] == "1"
    assert third.status_code == 200
    assert sb.faults.pending() == 0


def test_storage_faults_target_storage_only(sb: Sandbox) -> None:
    sb.fail_next(status=500, target="storage")
    url = signed(sb)  # the API call is untouched
    assert httpx.get(url).status_code == 500
    assert httpx.get(url).status_code == 200


def test_respond_next_sends_exact_bodies(sb: Sandbox) -> None:
    sb.respond_next(b"<html>proxy</html>", status=502, content_type="text/html")
    response = api(sb, {"call_id": "c1"})
    assert response.status_code == 502 and response.text == "<html>proxy</html>"


def test_delay_next_delays(sb: Sandbox) -> None:
    sb.delay_next(0.3)
    started = time.monotonic()
    assert api(sb, {"call_id": "c1"}).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_reset_next_resets_the_connection(sb: Sandbox) -> None:
    sb.reset_next()
    with pytest.raises(httpx.TransportError):
        api(sb, {"call_id": "c1"})
    assert api(sb, {"call_id": "c1"}).status_code == 200


def test_cut_download_after_k_bytes(sb: Sandbox) -> None:
    url = signed(sb)
    sb.cut_next_download(1000)
    received = bytearray()
    with pytest.raises(httpx.TransportError), httpx.stream("GET", url) as response:
        for chunk in response.iter_raw():
            received += chunk
    assert bytes(received) == DATA[:1000]


def test_corrupt_one_byte(sb: Sandbox) -> None:
    url = signed(sb)
    sb.corrupt_next_download(at=10)
    body = httpx.get(url).content
    assert (
        len(body) == len(DATA)
        and body[10] == DATA[10] ^ 0xFF
        and body[:10] + body[11:] == DATA[:10] + DATA[11:]
    )


def test_wrong_content_length(sb: Sandbox) -> None:
    url = signed(sb)
    sb.wrong_length_next_download(delta=50)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    sb.wrong_length_next_download(delta=-50)
    short = httpx.get(url)
    assert short.headers["content-length"] == str(len(DATA) - 50) and short.content == DATA[:-50]


def test_expire_urls_before_the_first_byte(sb: Sandbox) -> None:
    sb.expire_urls(after_seconds=0, count=1)
    dead, alive = signed(sb), signed(sb)
    assert error_code(httpx.get(dead)) == "ExpiredToken"
    assert httpx.get(alive).content == DATA


def test_expire_urls_after_t_seconds() -> None:
    now = [1_800_000_000.0]
    with Sandbox(clock=lambda: now[0]) as sb:
        sb.add_recording("c1", DATA)
        sb.expire_urls(after_seconds=30)
        url = signed(sb, minutes=10)
        now[0] += 29
        assert httpx.get(url).status_code == 200
        now[0] += 2
        assert error_code(httpx.get(url)) == "ExpiredToken"


def test_expire_urls_after_k_bytes_cuts_then_refuses(sb: Sandbox) -> None:
    sb.expire_urls(after_bytes=5000, count=1)
    url = signed(sb)
    received = bytearray()
    with pytest.raises(httpx.TransportError), httpx.stream("GET", url) as response:
        for chunk in response.iter_raw():
            received += chunk
    assert bytes(received) == DATA[:5000]
    again = httpx.get(url, headers={"Range": "bytes=5000-"})
    assert again.status_code == 400 and error_code(again) == "ExpiredToken"
    assert httpx.get(signed(sb)).content == DATA  # the next URL is healthy


def test_latency_settings(sb: Sandbox) -> None:
    sb.storage_latency = 0.2
    url = signed(sb)
    started = time.monotonic()
    httpx.get(url)
    assert time.monotonic() - started >= 0.2
    sb.clear_faults()
    assert sb.storage_latency == 0.0


def test_fault_count_must_be_positive(sb: Sandbox) -> None:
    with pytest.raises(ValueError):
        sb.fail_next(0)


# -- lifecycle and concurrency ----------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_clean_shutdown_leaks_no_threads_or_sockets() -> None:
    threads_before, fds_before = threading.active_count(), _open_fds()
    with Sandbox() as sb:
        sb.add_recording("c1", DATA)
        client = httpx.Client()  # keeps connections alive across requests
        for _ in range(5):
            assert client.get(signed(sb)).status_code == 200
        assert threading.active_count() > threads_before
        port = sb.port
    client.close()
    assert threading.active_count() == threads_before
    assert _open_fds() <= fds_before
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_many_concurrent_clients(sb: Sandbox) -> None:
    def one(i: int) -> bytes:
        with sb.client() as client:
            url = client.recordings.signed_url("c1")
        return httpx.get(url.url).content

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(48)))
    assert all(r == DATA for r in results)
    assert len(sb.api_requests()) == 48 and len(sb.storage_requests()) == 48


def test_pytest_fixture_is_registered_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "verbex_client"]
    assert ep.value == "verbex_client.testing._pytest_plugin"


def test_fixture_gives_a_running_sandbox(verbex_sandbox: Sandbox) -> None:
    assert verbex_sandbox.base_url.startswith("http://127.0.0.1:")
    assert api(verbex_sandbox, {"call_id": "x"}).status_code == 404


def test_standalone_module_serves_until_terminated(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "verbex_client.testing", "--port", "0", "--api-key", "API_standalone_key_1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip().split("=", 1)[1]
        assert proc.stdout.readline().strip() == "VERBEX_API_KEY=API_standalone_key_1"
        from verbex_client import Verbex

        with Verbex(api_key="API_standalone_key_1", base_url=base_url) as client:
            url = client.recordings.signed_url("demo-call-001")
        audio = httpx.get(url.url).content
        assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
