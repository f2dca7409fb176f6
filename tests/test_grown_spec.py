"""A grown spec is a non-event for the wrapper: generated with the pinned generator into a scratch
folder (new operations, a per-operation bearer scheme, a new nullable field, a documented 429),
served by Prism's mock, and used through the unchanged wrapper in a fresh interpreter.

And a breaking one (a response field renamed) is caught: by mypy in the wrapper, and at run time
as APIResponseValidationError, never AttributeError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tools import prism

from conftest import ROOT, VENV_BIN

FIXTURES = ROOT / "tests" / "fixtures"
GROWN = FIXTURES / "grown_api_spec.json"
RENAMED = FIXTURES / "renamed_field_api_spec.json"
KEY = "API_grown_spec_contract_key_0123456789"
EXAMPLE = json.loads(GROWN.read_text())["components"]["schemas"]["CallRecordingSignedUrlResponse"]["example"]


def generate(spec: Path, out: Path) -> Path:
    """Run the pinned openapi-python-client as scripts/generate.py does; returns the folder to import from."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--config",
            str(ROOT / "generator-config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(out / "verbex_api"),
            "--fail-on-warning",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=out,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (out / "verbex_api" / "py.typed").write_text("")
    return out


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(GROWN, tmp_path_factory.mktemp("grown"))


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(RENAMED, tmp_path_factory.mktemp("renamed"))


@pytest.fixture(scope="module")
def grown_mock() -> Iterator[str]:
    with prism("mock", str(GROWN)) as url:
        yield url


def run_python(package_dir: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter importing verbex_api from `package_dir` (ahead of the repo's own)."""
    env = dict(os.environ, PYTHONPATH=str(package_dir))
    env.pop("VERBEX_LOG", None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def mypy(package_dir: Path, *targets: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    from test_generation import seed_mypy_cache

    env = dict(os.environ, MYPYPATH=str(package_dir))
    seed_mypy_cache(package_dir / ".mypy_cache")
    return subprocess.run(
        [str(VENV_BIN / "mypy"), "--cache-dir", str(package_dir / ".mypy_cache"), *targets],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


NEW_OPERATION = """
    import asyncio, json, sys
    import verbex_client as vc
    from verbex_api.api.calls import list_calls_v1_calls_get as list_calls
    from verbex_api.models import ListCallsResponse

    base_url, key = sys.argv[1], sys.argv[2]
    out, sleeps = {}, []

    async def record(seconds):
        sleeps.append(seconds)

    def fake_sleep(client):  # retries are counted by the waits before them; no real sleeping
        client._transport.hooks.sleep = sleeps.append
        client._transport.hooks.async_sleep = record

    with vc.Verbex(api_key=key, base_url=base_url, max_retries=2) as client:
        fake_sleep(client)
        page = client.call(list_calls.sync_detailed, page_size=2)
        assert isinstance(page, ListCallsResponse)
        out["page"] = [[c.call_id for c in page.calls], page.next_page_token, page.total_count]
        raw = list_calls.sync_detailed(client=client.api, page_size=2)
        out["api_status"] = raw.status_code
        for code in ("429", "500", "401"):
            sleeps.clear()
            prefer = client.with_options(default_headers={"Prefer": f"code={code}"})
            for how in ("api", "call"):
                try:
                    if how == "api":
                        list_calls.sync_detailed(client=prefer.api, page_size=2)
                    else:
                        prefer.call(list_calls, page_size=2)
                except vc.APIStatusError as error:
                    out[f"{code}-{how}"] = [type(error).__name__, error.code, error.message, list(sleeps)]
                    if isinstance(error, vc.RateLimitError):
                        out[f"{code}-{how}"].append(error.retry_after)
                sleeps.clear()
        signed = client.recordings.signed_url("call_1")
        out["duration"] = signed.model.duration_seconds
        out["to_dict"] = signed.to_dict()
        # Another operation's documented 404 is a NotFoundError with the server's words.
        from verbex_api.api.calls import get_call_v1_calls_call_id_get as get_call
        out["get_call"] = client.call(get_call, call_id="call_1").call_id
        try:
            client.with_options(default_headers={"Prefer": "code=404"}).call(get_call, call_id="call_1")
        except vc.NotFoundError as error:
            out["404"] = [type(error).__name__, error.message]
        try:  # a path parameter that cannot be encoded: ValueError, before anything is sent
            client.call(get_call, call_id="a\\ud800")
        except ValueError as error:
            out["bad-arg"] = [type(error).__name__, str(error)]
        try:  # one httpx refuses to build (httpx.InvalidURL): ValueError too
            client.call(get_call, call_id="a" * 70000)
        except ValueError as error:
            out["too-long"] = [type(error).__name__, str(error)]

    # A connection error names the host it could not reach, never the query's values.
    dead = vc.Verbex(api_key=key, base_url="http://127.0.0.1:9", max_retries=0)
    try:
        list_calls.sync_detailed(client=dead.api, page_token="PAGE_TOKEN_SECRET_123")
    except vc.APIConnectionError as error:
        out["dead"] = str(error)

    async def main():
        async with vc.AsyncVerbex(api_key=key, base_url=base_url) as client:
            fake_sleep(client)
            page = await client.call(list_calls.asyncio_detailed, page_size=2)
            assert isinstance(page, ListCallsResponse)
            limited = client.with_options(default_headers={"Prefer": "code=429"})
            try:
                await list_calls.asyncio_detailed(client=limited.api, page_size=2)
            except vc.RateLimitError as error:
                out["async-429"] = [error.retry_after, list(sleeps)]

    asyncio.run(main())
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def new_operation(grown: Path, grown_mock: str) -> dict[str, Any]:
    result = run_python(grown, NEW_OPERATION, grown_mock, KEY)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_a_new_operation_gets_auth_retries_and_named_exceptions_with_no_new_code(
    new_operation: dict[str, Any],
) -> None:
    out = new_operation
    # Prism answers 401 to a request without the bearer token: these succeeded, so auth was sent.
    assert out["page"] == [["call_1", "call_2"], "page_2", 3] and out["api_status"] == 200
    for how in ("api", "call"):  # the generated function itself, and client.call: the same path
        # 429 retried twice, each time after the spec's Retry-After (2 s), then RateLimitError
        assert out[f"429-{how}"] == ["RateLimitError", "rate_limited", "Slow down", [2.0, 2.0], 2.0]
        # 500: retried with backoff, then InternalServerError (not a None parsed value)
        assert out[f"500-{how}"][:3] == ["InternalServerError", "internal", "Something broke"]
        assert out[f"500-{how}"][3] == [pytest.approx(0.5, abs=0.13), pytest.approx(1.0, abs=0.26)]
        # 401: not retried
        assert out[f"401-{how}"] == ["AuthenticationError", "invalid_api_key", "Invalid API key", []]
    assert out["async-429"] == [2.0, [2.0, 2.0]]
    assert out["get_call"] == "call_1" and out["404"] == ["NotFoundError", "No such call"]
    assert out["bad-arg"] == [
        "ValueError",
        "the request cannot be encoded: an argument holds a character HTTP cannot carry",
    ]
    assert out["too-long"] == [
        "ValueError",
        "the request cannot be built from these arguments (InvalidURL: URL too long)",
    ]
    assert out["dead"].startswith("could not connect to 127.0.0.1:9 (") and "PAGE_TOKEN" not in out["dead"]


def test_a_new_response_field_reaches_users_and_the_cli_json(
    grown: Path, grown_mock: str, new_operation: dict[str, Any]
) -> None:
    out = new_operation
    assert out["duration"] == 42
    assert out["to_dict"]["duration_seconds"] == 42 and out["to_dict"]["url"] == EXAMPLE["signed_url"]
    cli = run_python(
        grown,
        "from verbex_client.__main__ import main; raise SystemExit(main())",
        "--api-key",
        KEY,
        "--base-url",
        grown_mock,
        "recordings",
        "url",
        "call_1",
        "--json",
    )
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["duration_seconds"] == 42  # a field this wrapper never heard of
    assert printed["url"] == EXAMPLE["signed_url"] and printed["file_name"] == EXAMPLE["file_name"]
    assert printed["call_id"] == "call_1" and printed["expires_at"] == "2026-04-02T06:25:27.773121Z"
    assert KEY not in cli.stdout + cli.stderr


CONSUMER = """
    from verbex_api.api.calls import list_calls_v1_calls_get as list_calls
    from verbex_api.models import ListCallsResponse

    from verbex_client import AsyncVerbex, Verbex


    def call_ids(client: Verbex) -> list[str]:
        page = client.call(list_calls.sync_detailed, page_size=10)
        assert isinstance(page, ListCallsResponse)
        raw = list_calls.sync_detailed(client=client.api, page_token=page.next_page_token)
        more = raw.parsed.calls if isinstance(raw.parsed, ListCallsResponse) else []
        return [call.call_id for call in [*page.calls, *more]]


    async def duration(client: AsyncVerbex) -> int | None:
        await list_calls.asyncio_detailed(client=client.api)
        seconds = (await client.recordings.signed_url("call_1")).model.duration_seconds
        return seconds if isinstance(seconds, int) else None
"""

PLAIN_CLIENT = """
    import verbex_api
    from verbex_api.api.calls import list_calls_v1_calls_get as list_calls

    list_calls.sync_detailed(client=verbex_api.Client(base_url="http://127.0.0.1:1"))
"""


def test_consumers_and_the_wrapper_pass_mypy_strict_against_the_grown_spec(grown: Path) -> None:
    (grown / "consumer.py").write_text(textwrap.dedent(CONSUMER))
    (grown / "plain_client.py").write_text(textwrap.dedent(PLAIN_CLIENT))
    # The wrapper as it is, checked against the regenerated package, and a consumer's code.
    result = mypy(grown, "--strict", str(ROOT / "wrapper" / "verbex_client"), "consumer.py", cwd=grown)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check can fail: the secured operation refuses the generated plain Client.
    plain = mypy(grown, "--strict", "plain_client.py", cwd=grown)
    assert plain.returncode == 1 and 'expected "AuthenticatedClient"' in plain.stdout, plain.stdout


def test_a_renamed_response_field_is_a_mypy_error_and_a_validation_error_at_run_time(
    renamed: Path,
) -> None:
    result = mypy(renamed, "--strict", str(ROOT / "wrapper" / "verbex_client"), cwd=renamed)
    assert result.returncode == 1
    assert '"CallRecordingSignedUrlResponse" has no attribute "file_name"' in result.stdout, result.stdout
    with prism("mock", str(RENAMED)) as url:
        run = run_python(
            renamed,
            """
            import sys
            import verbex_client as vc
            with vc.Verbex(api_key=sys.argv[2], base_url=sys.argv[1]) as client:
                try:
                    client.recordings.signed_url("call_1")
                except vc.APIResponseValidationError as error:
                    print(type(error).__name__, error)
            """,
            url,
            KEY,
        )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        "APIResponseValidationError invalid response (200): "
        "field 'file_name' is not in the spec this verbex_api was generated from"
    )
