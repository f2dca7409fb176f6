"""The semantic spec diff behind `make update-spec`, on fixture spec pairs."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_generation import make, repo_copy  # noqa: F401  (fixture)

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import spec_diff

Spec = dict[str, Any]
OP = "POST /v1/call-recording/signed-url"


def base() -> Spec:
    return json.loads((ROOT / "openapi.json").read_text())


def schemas(spec: Spec) -> Spec:
    return spec["components"]["schemas"]


def edited(change: Callable[[Spec], None]) -> Spec:
    spec = copy.deepcopy(base())
    change(spec)
    return spec


def only_change(old: Spec, new: Spec) -> spec_diff.Change:
    changes = spec_diff.diff(old, new)
    assert len(changes) == 1, changes
    return changes[0]


def test_identical_specs_have_no_changes() -> None:
    assert spec_diff.diff(base(), base()) == []


def test_removed_response_field_is_breaking() -> None:
    def change(s: Spec) -> None:
        resp = schemas(s)["CallRecordingSignedUrlResponse"]
        del resp["properties"]["expires_at"]
        resp["required"].remove("expires_at")

    c = only_change(base(), edited(change))
    assert c.breaking and c.where == f"{OP} 200" and "field removed: expires_at" in c.what


def test_newly_required_request_field_is_breaking() -> None:
    c = only_change(
        base(),
        edited(lambda s: schemas(s)["CallRecordingRequest"]["required"].append("expiration_url_in_minutes")),
    )
    assert c.breaking and "newly required: expiration_url_in_minutes" in c.what


def test_new_required_request_field_is_breaking() -> None:
    def change(s: Spec) -> None:
        req = schemas(s)["CallRecordingRequest"]
        req["properties"]["tenant"] = {"type": "string"}
        req["required"].append("tenant")

    c = only_change(base(), edited(change))
    assert c.breaking and "request field added: tenant (required)" in c.what


def test_new_optional_request_field_is_not_breaking() -> None:
    c = only_change(
        base(),
        edited(lambda s: schemas(s)["CallRecordingRequest"]["properties"].update(note={"type": "string"})),
    )
    assert not c.breaking and "request field added: note" in c.what


def test_new_response_field_is_not_breaking() -> None:
    c = only_change(
        base(),
        edited(
            lambda s: schemas(s)["CallRecordingSignedUrlResponse"]["properties"].update(
                size={"type": "integer"}
            )
        ),
    )
    assert not c.breaking and "response field added: size" in c.what


def test_response_field_made_optional_is_breaking() -> None:
    c = only_change(
        base(),
        edited(lambda s: schemas(s)["CallRecordingSignedUrlResponse"]["required"].remove("signed_url")),
    )
    assert c.breaking and "newly optional: signed_url" in c.what


def test_new_operation_is_not_breaking() -> None:
    def change(s: Spec) -> None:
        s["paths"]["/v1/calls"] = {"get": {"responses": {"200": {"description": "ok"}}}}

    c = only_change(base(), edited(change))
    assert not c.breaking and c.where == "GET /v1/calls" and c.what == "operation added"


def test_removed_operation_is_breaking() -> None:
    c = only_change(base(), edited(lambda s: s["paths"].clear()))
    assert c.breaking and c.what == "operation removed"


@pytest.mark.parametrize("side", ["request", "response"])
def test_changed_type_is_breaking(side: str) -> None:
    schema, field = (
        ("CallRecordingRequest", "expiration_url_in_minutes")
        if side == "request"
        else ("CallRecordingSignedUrlResponse", "expiration_minutes")
    )
    c = only_change(base(), edited(lambda s: schemas(s)[schema]["properties"][field].update(type="string")))
    assert c.breaking and f"{field} type changed integer -> string" in c.what


def test_status_codes_added_and_removed() -> None:
    def change(s: Spec) -> None:
        responses = s["paths"]["/v1/call-recording/signed-url"]["post"]["responses"]
        responses["429"] = {"description": "Too many requests"}
        del responses["404"]

    changes = {c.what: c.breaking for c in spec_diff.diff(base(), edited(change))}
    assert changes == {"status 429 added": False, "status 404 removed": False}
    success_gone = edited(
        lambda s: s["paths"]["/v1/call-recording/signed-url"]["post"]["responses"].pop("200")
    )
    assert only_change(base(), success_gone).breaking


def test_enum_values() -> None:
    def with_enum(values: list[str], schema: str, field: str) -> Callable[[Spec], None]:
        def change(s: Spec) -> None:
            schemas(s)[schema]["properties"][field]["enum"] = values

        return change

    old = edited(with_enum(["a", "b"], "CallRecordingSignedUrlResponse", "file_name"))
    new = edited(with_enum(["a", "b", "c"], "CallRecordingSignedUrlResponse", "file_name"))
    c = only_change(old, new)
    assert c.breaking and "enum value added: c" in c.what  # callers may not handle a new response value
    old_req = edited(with_enum(["x", "y"], "CallRecordingRequest", "call_id"))
    new_req = edited(with_enum(["x"], "CallRecordingRequest", "call_id"))
    c = only_change(old_req, new_req)
    assert c.breaking and "enum value removed: y" in c.what


def test_update_spec_rejects_a_breaking_change_and_leaves_everything(repo_copy: Path) -> None:  # noqa: F811
    def change(s: Spec) -> None:
        resp = schemas(s)["CallRecordingSignedUrlResponse"]
        del resp["properties"]["file_name"]
        resp["required"].remove("file_name")

    new_spec = repo_copy / "new.json"
    new_spec.write_text(json.dumps(edited(change)))
    before = (repo_copy / "openapi.json").read_text()
    result = make(repo_copy, "update-spec", f"SPEC={new_spec}")
    assert result.returncode != 0
    assert "BREAKING" in result.stdout and "field removed: file_name" in result.stdout
    assert "cannot remove response property 'file_name'" in result.stdout  # Optic agrees
    assert "ALLOW_BREAKING=1" in result.stderr
    assert (repo_copy / "openapi.json").read_text() == before
    assert make(repo_copy, "check-generated").returncode == 0

    allowed = make(repo_copy, "update-spec", f"SPEC={new_spec}", ALLOW_BREAKING="1")
    assert allowed.returncode == 0, allowed.stderr
    model = (repo_copy / "generated/verbex_api/models/call_recording_signed_url_response.py").read_text()
    assert "file_name: str" not in model and 'd.pop("file_name")' not in model
    assert make(repo_copy, "check-generated").returncode == 0


def test_update_spec_accepts_a_compatible_yaml_change_normalised(repo_copy: Path) -> None:  # noqa: F811
    import yaml

    spec = edited(lambda s: schemas(s)["CallRecordingRequest"]["properties"].update(note={"type": "string"}))
    new_spec = repo_copy / "new.yaml"
    new_spec.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = make(repo_copy, "update-spec", f"SPEC={new_spec}")
    assert result.returncode == 0, result.stderr
    assert "ok        POST /v1/call-recording/signed-url: request field added: note" in result.stdout
    assert (repo_copy / "openapi.json").read_text() == json.dumps(spec, indent=2) + "\n"
    assert "note" in (repo_copy / "generated/verbex_api/models/call_recording_request.py").read_text()


def test_update_spec_rejects_an_invalid_document(repo_copy: Path) -> None:  # noqa: F811
    bad = repo_copy / "bad.json"
    bad.write_text(json.dumps({"openapi": "3.1.0", "paths": {}}))
    result = make(repo_copy, "update-spec", f"SPEC={bad}")
    assert result.returncode != 0 and "not a valid OpenAPI document" in result.stderr
