"""openapi.json keeps the seed's operation faithfully, is normalised, valid OpenAPI 3.1; bad specs
get one clear line naming what and where, and leave everything as it was."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from test_generation import make, repo_copy, serve_directory, snapshot  # noqa: F401  (fixture)

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import spec_diff
import spec_tools

SEED_PAGE = ROOT / "tests" / "fixtures" / "seed_docs_page.txt"
SPECS = ROOT / "tests" / "fixtures" / "specs"
SEED_OPERATION = "POST /v1/call-recording/signed-url"


def seed_spec() -> Any:
    text = SEED_PAGE.read_text()
    block = text.split("````yaml", 1)[1].split("\n", 1)[1].split("````", 1)[0]
    return yaml.safe_load(block)


def seed_operation_breaks(document: dict[str, Any]) -> list[spec_diff.Change]:
    """What in document breaks a caller of the seed's own operation (other operations may come and go)."""
    return [
        c
        for c in spec_diff.diff(seed_spec(), document)
        if c.breaking and (c.where == SEED_OPERATION or c.where.startswith(SEED_OPERATION + " "))
    ]


def test_the_seed_page_converts_to_its_yaml_block() -> None:
    assert spec_tools.load_document(SEED_PAGE) == seed_spec()
    assert spec_tools.load_document(SPECS / "seed.json") == seed_spec()


def test_openapi_json_keeps_the_seed_operation_faithfully() -> None:
    document = json.loads((ROOT / "openapi.json").read_text())
    seed_op = seed_spec()["paths"]["/v1/call-recording/signed-url"]["post"]
    op = document["paths"]["/v1/call-recording/signed-url"]["post"]
    assert op["operationId"] == seed_op["operationId"] and op["tags"][:1] == seed_op["tags"][:1]
    assert seed_operation_breaks(document) == []


@pytest.mark.parametrize(("name", "breaks"), [("seed.json", 0), ("grown.json", 0), ("breaking.json", 2)])
def test_the_seed_fidelity_check_follows_the_spec_and_can_fail(name: str, breaks: int) -> None:
    found = seed_operation_breaks(json.loads((SPECS / name).read_text()))
    assert len(found) == breaks, found
    if breaks:
        assert {c.what for c in found} == {
            "request field newly required: expiration_url_in_minutes",
            "response field removed: file_name",
        }


def test_openapi_json_is_in_normal_form() -> None:
    text = (ROOT / "openapi.json").read_text()
    assert text == spec_tools.dumps_normalised(json.loads(text))  # 2-space JSON, key order kept
    assert text.endswith("}\n") and not text.endswith("\n\n")


def test_openapi_json_is_valid_openapi_3_1() -> None:
    document = json.loads((ROOT / "openapi.json").read_text())
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_validator_rejects_a_broken_document() -> None:
    document = json.loads((SPECS / "seed.json").read_text())
    document["paths"]["/v1/call-recording/signed-url"]["post"]["responses"] = "nope"
    with pytest.raises(OpenAPIValidationError):
        validate(document)


# --- bad specs: one line, what and where -----------------------------------------------------


def seed_with(change: Any) -> str:
    document = json.loads((SPECS / "seed.json").read_text())
    change(document)
    return json.dumps(document)


SCHEMA_VIOLATION = seed_with(
    lambda d: d["paths"]["/v1/call-recording/signed-url"]["post"].update(responses="nope")
)
BAD_SCHEMA_TYPE = seed_with(lambda d: d["components"]["schemas"]["CallRecordingRequest"].update(type=7))
DANGLING_REF = seed_with(
    lambda d: d["paths"]["/v1/call-recording/signed-url"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"].update({"$ref": "#/components/schemas/Nope"})
)
BAD_SPECS = [
    ("empty.json", "", "{f}: empty file, expected an OpenAPI document (JSON or YAML)"),
    ("blank.yaml", "  \n\n", "{f}: empty file, expected an OpenAPI document (JSON or YAML)"),
    (
        "broken.json",
        '{\n  "openapi": "3.1.0",,\n}',
        "{f}:2:22: invalid JSON: Expecting property name enclosed in double quotes",
    ),
    (
        "yaml-named.json",
        "openapi: 3.1.0\ninfo:\n  title: x\n  version: '1'\npaths: {}\n",
        "{f}:1:1: invalid JSON: Expecting value (this is YAML: give it a .yaml or .yml name, or convert it to JSON)",
    ),
    (
        "broken.yaml",
        "openapi: 3.1.0\ninfo: [a, b\n",
        "{f}:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    ("list.json", "[1, 2]", "{f}: expected an OpenAPI document (an object), got list"),
    (
        "violation.json",
        SCHEMA_VIOLATION,
        '{f}#/paths/~1v1~1call-recording~1signed-url/post/responses: not a valid OpenAPI document: "nope" is not of type "object"',
    ),
    (
        "bad-type.json",
        BAD_SCHEMA_TYPE,
        "{f}#/components/schemas/CallRecordingRequest/type: not a valid OpenAPI document: 7 is not valid under any of the given schemas",
    ),
    (
        "dangling-ref.json",
        DANGLING_REF,
        "{f}#/paths/~1v1~1call-recording~1signed-url/post/requestBody/content/application~1json/schema/$ref: "
        "not a valid OpenAPI document: $ref '#/components/schemas/Nope' does not resolve",
    ),
    (
        "no-info.json",
        '{"openapi": "3.1.0", "paths": {}}',
        '{f}#/: not a valid OpenAPI document: "info" is a required property',
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_specs_get_one_line_naming_what_and_where(
    name: str, text: str, message: str, tmp_path: Any
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(spec_tools.SpecError) as info:
        spec_tools.validate(spec_tools.load_source(str(path)), str(path))
    assert str(info.value) == message.format(f=path)


def test_a_21_kb_document_is_not_dumped_into_the_message(tmp_path: Any) -> None:
    document = json.loads(SCHEMA_VIOLATION)
    document["components"]["schemas"]["Big"] = {"type": "object", "description": "x" * 21_000}
    document.pop("info")
    path = tmp_path / "big.json"
    path.write_text(json.dumps(document))
    with pytest.raises(spec_tools.SpecError) as info:
        spec_tools.validate(spec_tools.load_source(str(path)), str(path))
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_unfetchable_urls_are_one_line(tmp_path: Any) -> None:
    with serve_directory(tmp_path) as base_url, pytest.raises(spec_tools.SpecError) as missing:
        spec_tools.load_source(f"{base_url}/nope.json")
    assert str(missing.value) == f"{base_url}/nope.json: cannot fetch the spec: HTTP 404 File not found"
    # the server is stopped now: nothing listens on that port any more
    with pytest.raises(spec_tools.SpecError) as refused:
        spec_tools.load_source(f"{base_url}/openapi.json")
    assert str(refused.value).startswith(f"{base_url}/openapi.json: cannot fetch the spec: ConnectError:")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [BAD_SPECS[0], BAD_SPECS[3], BAD_SPECS[6]],
    ids=["empty", "yaml-as-json", "schema-violation"],
)
def test_update_spec_rejects_bad_specs_with_one_line_and_changes_nothing(
    repo_copy: Any,  # noqa: F811
    name: str,
    text: str,
    message: str,
) -> None:
    path = repo_copy / name
    path.write_text(text)
    before = snapshot(repo_copy)
    result = make(repo_copy, "update-spec", f"SPEC={path}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert errors == [f"error: {message.format(f=path)}; nothing changed"], result.stderr
    assert snapshot(repo_copy) == before


def test_update_spec_reports_an_unreachable_url(repo_copy: Any, tmp_path: Any) -> None:  # noqa: F811
    with serve_directory(tmp_path) as base_url:
        pass  # started and stopped: the port now refuses connections
    before = snapshot(repo_copy)
    result = make(repo_copy, "update-spec", f"SPEC={base_url}/openapi.json")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {base_url}/openapi.json: cannot fetch the spec:"
    )
    assert snapshot(repo_copy) == before
