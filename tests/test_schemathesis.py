"""schemathesis covers every operation the spec declares: the ones the sandbox serves against the
sandbox (it must not drift from the spec), the rest against Prism's mock of the same spec.

Run for the live openapi.json and for the grown fixture spec, so the split keeps working however
the spec grows.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from _tools import prism

from conftest import ROOT, require_tool
from verbex_client.testing import Sandbox
from verbex_client.testing._audio import tone_wav

# operationIds of what verbex_client.testing.Sandbox implements
SANDBOX_SERVES = {"get_signed_url_v1_call_recording_signed_url_post"}
SPECS = {"openapi.json": ROOT / "openapi.json", "grown": ROOT / "tests" / "fixtures" / "specs" / "grown.json"}
KEY = "API_schemathesis_prism_key_0123456789"
# Checks that judge the spec's own consistency through Prism. Left out, as limits of a mock:
# ignored_auth (any bearer key is accepted), unsupported_method (no Allow header on 405) and the
# negative-data checks (Prism does not check every format, and hangs on malformed JSON bodies).
PRISM_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


def operation_ids(spec: Path) -> set[str]:
    document = json.loads(spec.read_text())
    ids = set()
    for path, item in document["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                assert op.get("operationId"), f"{method.upper()} {path} has no operationId"
                ids.add(op["operationId"])
    return ids


def run_schemathesis(
    spec: Path, base_url: str, cwd: Path, max_examples: int, *options: str, key: str = KEY
) -> subprocess.CompletedProcess[str]:
    tool = require_tool("schemathesis", "pip install schemathesis (it is in the dev extra: make install)")
    return subprocess.run(
        [
            tool,
            "run",
            str(spec),
            "--url",
            base_url,
            "-H",
            f"Authorization: Bearer {key}",
            "--generation-database",
            "none",
            "--seed",
            "20261128",
            "--max-examples",
            str(max_examples),
            *options,
        ],
        cwd=cwd,  # it writes .hypothesis/ and .schemathesis/ where it runs
        capture_output=True,
        text=True,
        timeout=300,
    )


def count_tested(output: str) -> int:
    match = re.search(r"Tested: (\d+)", output)
    assert match, output[-3000:]
    return int(match.group(1))


def sandbox_run(
    spec: Path, sandbox: Sandbox, cwd: Path, max_examples: int
) -> subprocess.CompletedProcess[str]:
    selected = sorted(SANDBOX_SERVES & operation_ids(spec))
    options = [arg for op_id in selected for arg in ("--include-operation-id", op_id)]
    return run_schemathesis(spec, sandbox.base_url, cwd, max_examples, *options, key=sandbox.api_key)


def test_the_sandbox_operations_are_in_the_spec() -> None:
    # if the seed's operation were renamed, the sandbox runs below would select nothing
    assert operation_ids(ROOT / "openapi.json") >= SANDBOX_SERVES


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_sandbox_conforms_to_the_spec(spec: Path, tmp_path: Path) -> None:
    with Sandbox(any_call_id=tone_wav(seconds=0.1)) as sandbox:
        result = sandbox_run(spec, sandbox, tmp_path, max_examples=150)
        served = len(sandbox.api_requests())
    assert result.returncode == 0, result.stdout[-4000:]
    assert count_tested(result.stdout) == len(SANDBOX_SERVES) and served >= 150


def test_schemathesis_catches_a_drifted_sandbox(tmp_path: Path) -> None:
    with Sandbox(any_call_id=tone_wav(seconds=0.1)) as sandbox:
        sandbox.respond_next(b'{"file_name": "x.ogg", "signed_url": "http://h/x"}', count=10_000)
        result = sandbox_run(ROOT / "openapi.json", sandbox, tmp_path, max_examples=20)
    assert result.returncode != 0
    assert "expires_at" in result.stdout


def prism_run(
    spec: Path, mock_url: str, cwd: Path, max_examples: int, checks: str = PRISM_CHECKS
) -> subprocess.CompletedProcess[str]:
    excluded = [arg for op_id in sorted(SANDBOX_SERVES) for arg in ("--exclude-operation-id", op_id)]
    return run_schemathesis(
        spec,
        mock_url,
        cwd,
        max_examples,
        *excluded,
        "--mode",
        "positive",
        "-c",
        checks,
        "--request-timeout",
        "10",
    )


@pytest.mark.parametrize(
    "spec",
    [s for s in SPECS.values() if operation_ids(s) - SANDBOX_SERVES],
    ids=[k for k, s in SPECS.items() if operation_ids(s) - SANDBOX_SERVES],
)
def test_prism_mock_covers_every_other_operation(spec: Path, tmp_path: Path) -> None:
    rest = operation_ids(spec) - SANDBOX_SERVES
    with prism("mock", "-d", str(spec)) as url:  # random schema-valid bodies, nulls included
        result = prism_run(spec, url, tmp_path, max_examples=50)
    assert result.returncode == 0, result.stdout[-4000:]
    assert count_tested(result.stdout) == len(rest)


def test_the_prism_run_can_fail(tmp_path: Path) -> None:
    """Judged against a spec that promises more than the mocked one delivers, the run fails."""
    grown = json.loads(SPECS["grown"].read_text())
    stricter = json.loads(json.dumps(grown))
    stricter["components"]["schemas"]["ListCallsResponse"]["properties"]["cursor"] = {"type": "string"}
    stricter["components"]["schemas"]["ListCallsResponse"]["required"].append("cursor")
    (tmp_path / "stricter.json").write_text(json.dumps(stricter))
    with prism("mock", str(SPECS["grown"])) as url:
        result = prism_run(tmp_path / "stricter.json", url, tmp_path, max_examples=5)
    assert result.returncode != 0
    assert "cursor" in result.stdout
