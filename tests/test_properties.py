"""Property tests (hypothesis from a fixed seed, so CI runs repeat without being stuck in one corner)."""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

import verbex_client as vc
from verbex_client._paths import resolve_target
from verbex_client._recordings import build_signed_url_request
from verbex_client.testing import Sandbox
from verbex_client.testing._server import validate_request_body

SEED = 20261201
SETTINGS = settings(
    max_examples=300,
    derandomize=False,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("file_name", "signed_url", "expiration_minutes", "expires_at")
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "file_name": st.one_of(st.text(max_size=20), json_values),
        "signed_url": st.one_of(
            st.just("https://storage.example/b/o?X-Goog-Signature=s"), st.text(max_size=20), json_values
        ),
        "expiration_minutes": st.one_of(st.integers(), json_values),
        "expires_at": st.one_of(st.just("2026-04-02T06:25:27.773121825Z"), st.text(max_size=30), json_values),
        "error": st.text(max_size=10),
        "message": json_values,
        "detail": json_values,
    },
)
bodies = st.one_of(
    near_valid.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
statuses = st.sampled_from([s for s in range(200, 600) if s not in (204, 205, 304)])
content_types = st.sampled_from(["application/json", "text/html", "text/plain", "application/xml"])
DOCUMENTED = (vc.APIStatusError, vc.APIResponseValidationError)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def client(sandbox: Sandbox) -> Iterator[vc.Verbex]:
    with sandbox.client(max_retries=0) as c:
        yield c


VALID = {
    "file_name": "a.ogg",
    "signed_url": "https://storage.example/b/o?X-Goog-Signature=s",
    "expiration_minutes": 10,
    "expires_at": "2026-04-02T06:25:27.773121825Z",
}


@SETTINGS
@seed(SEED)
@given(body=bodies, status=statuses, content_type=content_types)
# The spec types signed_url as any string: "x" is schema-valid and parses (downloads refuse it).
@example(body=json.dumps({**VALID, "signed_url": "x"}).encode(), status=200, content_type="application/json")
@example(body=json.dumps(VALID).encode(), status=201, content_type="text/plain")
@example(
    body=json.dumps({**VALID, "expiration_minutes": True}).encode(),
    status=200,
    content_type="application/json",
)
@example(body=json.dumps({**VALID, "expires_at": None}).encode(), status=200, content_type="application/json")
@example(body=b"\x1f\x8b broken", status=200, content_type="application/json")
@example(body=b'{"detail": "Not Found"}', status=404, content_type="application/json")
@example(body=b"[" * 5000, status=200, content_type="application/json")
def test_any_reply_is_a_result_or_a_documented_exception(
    sandbox: Sandbox, client: vc.Verbex, body: bytes, status: int, content_type: str
) -> None:
    sandbox.respond_next(body, status=status, content_type=content_type)
    try:
        result = client.recordings.signed_url("c1")
    except DOCUMENTED as error:
        text = str(error)
        assert text and len(text) < 400 and "\n" not in text.strip()
        if isinstance(error, vc.APIStatusError):
            assert error.status_code == status
        assert error.__cause__ is None and error.__context__ is None
        return
    assert 200 <= status < 300 and isinstance(result, vc.SignedRecordingUrl)
    sent = json.loads(body)  # only a JSON object with the four fields, well typed, gets here
    assert (result.file_name, result.url, result.expiration_minutes) == (
        sent["file_name"],
        sent["signed_url"],
        sent["expiration_minutes"],
    )
    assert isinstance(result.url, str) and not isinstance(result.expiration_minutes, bool)
    assert result.expires_at.tzinfo is not None and result.model.signed_url == sent["signed_url"]


@SETTINGS
@seed(SEED)
@given(
    file_name=st.one_of(
        st.text(), st.text(alphabet="./\\\x00\x01 abc", max_size=20), st.none(), st.integers()
    )
)
def test_any_server_file_name_stays_inside_dest(file_name: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp).resolve()
        target = resolve_target(dest, file_name, "call/../1")
        assert target.parent == dest
        name = target.name
        assert (
            name not in ("", ".", "..") and not name.startswith(".") and "/" not in name and "\\" not in name
        )
        assert not any(unicodedata.category(ch)[0] == "C" for ch in name)
        target.write_bytes(b"x")  # the OS accepts it
        assert [p.name for p in dest.iterdir()] == [name]


arguments = st.one_of(
    st.text(max_size=600),
    st.integers(),
    st.none(),
    st.binary(max_size=10),
    st.booleans(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
)


@SETTINGS
@seed(SEED)
@given(
    call_id=st.one_of(arguments, st.text(min_size=1, max_size=20)),
    minutes=st.one_of(arguments, st.integers(-5, 20000)),
)
def test_any_arguments_raise_type_or_value_error_or_make_a_valid_request(call_id: Any, minutes: Any) -> None:
    try:
        method, path, body = build_signed_url_request(call_id, minutes)
    except (TypeError, ValueError):
        return
    assert (method, path) == ("POST", "/v1/call-recording/signed-url")
    assert body == {"call_id": call_id, "expiration_url_in_minutes": minutes}
    parsed, errors = validate_request_body(json.dumps(body).encode())
    assert errors == [] and parsed == body
    assert 0 < len(call_id) <= 512 and call_id == call_id.strip() and 1 <= minutes <= 10080
