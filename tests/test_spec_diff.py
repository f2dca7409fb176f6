"""The semantic spec diff behind `make update-spec`, on fixture specs (never the live openapi.json)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_generation import make, repo_copy, snapshot  # noqa: F401  (fixture)

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import spec_diff

Spec = dict[str, Any]
OP = "POST /v1/call-recording/signed-url"
SPECS = ROOT / "tests" / "fixtures" / "specs"


def base() -> Spec:
    """The seed's spec, kept as a fixture: the live openapi.json may have moved on."""
    return json.loads((SPECS / "seed.json").read_text())


def fixture(name: str) -> Spec:
    return json.loads((SPECS / name).read_text())


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


# --- what breaks Python consumers ------------------------------------------------------------


def signed_url_op(s: Spec) -> Spec:
    return s["paths"]["/v1/call-recording/signed-url"]["post"]


def request_props(s: Spec) -> Spec:
    return schemas(s)["CallRecordingRequest"]["properties"]


def response_props(s: Spec) -> Spec:
    return schemas(s)["CallRecordingSignedUrlResponse"]["properties"]


def test_operation_id_rename_is_breaking_because_the_module_moves() -> None:
    c = only_change(base(), edited(lambda s: signed_url_op(s).update(operationId="get_signed_url")))
    assert c.breaking and c.where == OP
    assert "module get_signed_url_v1_call_recording_signed_url_post becomes get_signed_url" in c.what
    assert "ImportError" in c.what


def test_operation_id_change_with_the_same_python_name_is_not_breaking() -> None:
    renamed = edited(
        lambda s: signed_url_op(s).update(operationId="getSignedUrlV1CallRecordingSignedUrlPost")
    )
    c = only_change(base(), renamed)
    assert not c.breaking and "same Python name" in c.what


def test_tag_rename_is_breaking_because_the_package_moves() -> None:
    c = only_change(base(), edited(lambda s: signed_url_op(s).update(tags=["Recordings"])))
    assert c.breaking
    assert "verbex_api.api.call_recording becomes verbex_api.api.recordings" in c.what


def test_tag_spelling_that_keeps_the_module_is_not_breaking() -> None:
    c = only_change(base(), edited(lambda s: signed_url_op(s).update(tags=["call recording"])))
    assert not c.breaking and "same module" in c.what


BEARER = {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
API_KEY = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}


def secured(schemes: Spec, security: list[Spec]) -> Callable[[Spec], None]:
    def change(s: Spec) -> None:
        s["components"]["securitySchemes"] = schemes
        s["security"] = security

    return change


def test_declaring_the_bearer_key_the_api_always_required_is_not_breaking() -> None:
    c = only_change(base(), edited(secured(BEARER, [{"HTTPBearer": []}])))
    assert not c.breaking and c.what.startswith("security added: HTTPBearer")


def test_requiring_a_new_kind_of_credential_is_breaking() -> None:
    c = only_change(base(), edited(secured(API_KEY, [{"ApiKey": []}])))
    assert c.breaking and c.what == "security added: ApiKey"


def test_switching_security_schemes_is_breaking() -> None:
    old = edited(secured(BEARER, [{"HTTPBearer": []}]))
    new = edited(secured({**BEARER, **API_KEY}, [{"ApiKey": []}]))
    assert {(c.breaking, c.what) for c in spec_diff.diff(old, new)} == {
        (True, "security requirement removed or changed: HTTPBearer"),
        (False, "security alternative added: ApiKey"),
    }


def test_a_changed_scheme_definition_is_breaking() -> None:
    old = edited(secured(BEARER, [{"HTTPBearer": []}]))
    new = edited(secured({"HTTPBearer": {"type": "http", "scheme": "basic"}}, [{"HTTPBearer": []}]))
    c = only_change(old, new)
    assert c.breaking and c.what.startswith("security scheme HTTPBearer changed")


def test_per_operation_security_counts_and_dropping_it_is_not_breaking() -> None:
    old = edited(lambda s: (secured(API_KEY, [])(s), signed_url_op(s).update(security=[{"ApiKey": []}])))
    new = edited(lambda s: secured(API_KEY, [])(s))
    c = only_change(old, new)
    assert not c.breaking and c.what == "security removed: no credentials needed"


def nullable(schema: Spec) -> Spec:
    return {"anyOf": [schema, {"type": "null"}]}


def test_a_response_field_made_nullable_is_breaking() -> None:
    c = only_change(
        base(), edited(lambda s: response_props(s).update(file_name=nullable({"type": "string"})))
    )
    assert c.breaking and c.what == "response file_name made nullable (may now be null)"
    for spelling in ({"type": ["string", "null"]}, {"type": "string", "nullable": True}):
        c = only_change(base(), edited(lambda s, sp=spelling: response_props(s).update(file_name=sp)))
        assert c.breaking and "made nullable" in c.what


def test_a_request_field_no_longer_accepting_null_is_breaking_the_reverse_is_not() -> None:
    old = edited(lambda s: request_props(s).update(call_id=nullable({"type": "string"})))
    c = only_change(old, base())
    assert c.breaking and c.what == "request call_id no longer accepts null"
    c = only_change(base(), old)
    assert not c.breaking and c.what == "request call_id accepts null"


def with_path(template: str, param: str) -> Callable[[Spec], None]:
    def change(s: Spec) -> None:
        s["paths"][template] = {
            "get": {
                "operationId": "get_call",
                "parameters": [{"name": param, "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok"}},
            }
        }

    return change


def test_a_path_parameter_rename_is_breaking() -> None:
    old = edited(with_path("/v1/calls/{call_id}", "call_id"))
    new = edited(with_path("/v1/calls/{id}", "id"))
    c = only_change(old, new)
    assert c.breaking and c.where == "GET /v1/calls/{id}"
    assert c.what == "path parameter renamed {call_id} -> {id} (was /v1/calls/{call_id})"


def test_a_query_parameter_rename_is_breaking_and_named() -> None:
    def listing(name: str) -> Callable[[Spec], None]:
        def change(s: Spec) -> None:
            s["paths"]["/v1/calls/"] = {
                "get": {
                    "operationId": "list_calls",
                    "parameters": [{"name": name, "in": "query", "schema": nullable({"type": "string"})}],
                    "responses": {"200": {"description": "ok"}},
                }
            }

        return change

    changes = spec_diff.diff(edited(listing("page_token")), edited(listing("cursor")))
    assert [(c.breaking, c.what) for c in changes] == [
        (True, "parameter removed: query:page_token (renamed to query:cursor?)"),
        (False, "parameter added: query:cursor"),
    ]


def test_content_type_changes() -> None:
    def request_media(media: str) -> Callable[[Spec], None]:
        def change(s: Spec) -> None:
            content = signed_url_op(s)["requestBody"]["content"]
            content[media] = content.pop("application/json")

        return change

    changes = {
        (c.breaking, c.what) for c in spec_diff.diff(base(), edited(request_media("multipart/form-data")))
    }
    assert changes == {
        (True, "request content type removed: application/json"),
        (False, "request content type added: multipart/form-data"),
    }
    response_as_text = edited(
        lambda s: signed_url_op(s)["responses"]["200"].update(
            content={"text/plain": {"schema": {"type": "string"}}}
        )
    )
    removed = [c for c in spec_diff.diff(base(), response_as_text) if c.breaking]
    assert [(c.where, c.what) for c in removed] == [
        (f"{OP} 200", "response content type removed: application/json")
    ]


def test_enum_narrowing_on_requests_is_breaking() -> None:
    restricted = edited(lambda s: request_props(s)["call_id"].update(enum=["a", "b"]))
    c = only_change(base(), restricted)
    assert c.breaking and c.what == "request call_id restricted to enum ['a', 'b']"
    c = only_change(restricted, base())
    assert not c.breaking  # any value is accepted again
    response_enum = edited(lambda s: response_props(s)["file_name"].update(enum=["a.ogg"]))
    assert not only_change(base(), response_enum).breaking
    assert only_change(response_enum, base()).breaking  # values callers never saw can now come back


@pytest.mark.parametrize(
    ("old", "new", "breaking"),
    [
        ({}, {"maxLength": 64}, True),
        ({"maxLength": 128}, {"maxLength": 64}, True),
        ({"maxLength": 64}, {"maxLength": 128}, False),
        ({"maxLength": 64}, {}, False),
        ({"minLength": 1}, {"minLength": 4}, True),
        ({"minLength": 4}, {"minLength": 1}, False),
        ({}, {"pattern": "^call_"}, True),
        ({"pattern": "^call_"}, {"pattern": "^c"}, True),  # a pattern change cannot be judged looser
    ],
)
def test_tighter_string_limits_on_requests_are_breaking(old: Spec, new: Spec, breaking: bool) -> None:
    before = edited(lambda s: request_props(s)["call_id"].update(old))
    after = edited(lambda s: request_props(s)["call_id"].update(new))
    c = only_change(before, after)
    assert c.breaking is breaking and c.where == OP and "request call_id" in c.what


@pytest.mark.parametrize(
    ("old", "new", "breaking"),
    [
        ({}, {"maximum": 10080}, True),
        ({"maximum": 10080}, {"maximum": 60}, True),
        ({"maximum": 60}, {"maximum": 10080}, False),
        ({"minimum": 1}, {"minimum": 5}, True),
        ({"minimum": 5}, {"minimum": 1}, False),
        ({"exclusiveMaximum": 100}, {"exclusiveMaximum": 50}, True),
        ({}, {"multipleOf": 5}, True),
    ],
)
def test_tighter_numeric_limits_on_requests_are_breaking(old: Spec, new: Spec, breaking: bool) -> None:
    before = edited(lambda s: request_props(s)["expiration_url_in_minutes"].update(old))
    after = edited(lambda s: request_props(s)["expiration_url_in_minutes"].update(new))
    c = only_change(before, after)
    assert c.breaking is breaking and "expiration_url_in_minutes" in c.what


def test_limits_on_responses_are_informational() -> None:
    c = only_change(base(), edited(lambda s: response_props(s)["expiration_minutes"].update(maximum=60)))
    assert not c.breaking and "(tighter)" in c.what


def test_parameter_limits_count_too() -> None:
    grown, tighter = fixture("grown.json"), fixture("grown.json")
    for p in tighter["paths"]["/v1/calls/"]["get"]["parameters"]:
        if p["name"] == "page_size":
            p["schema"]["maximum"] = 500
    c = only_change(grown, tighter)
    assert c.breaking and c.what == "request parameter query:page_size maximum 1000 -> 500 (tighter)"


def test_a_removed_schema_is_breaking_because_its_model_goes() -> None:
    def change(s: Spec) -> None:
        schemas(s)["Unused"] = {"type": "object"}

    c = only_change(edited(change), base())
    assert c.breaking and c.what == "schema removed: Unused (its model leaves verbex_api.models)"


def test_documentation_only_changes_are_a_patch() -> None:
    def change(s: Spec) -> None:
        s["info"]["version"] = "1.0.1"
        request_props(s)["call_id"]["description"] = "The call's id"

    changes = spec_diff.diff(base(), edited(change))
    assert [(c.where, c.docs, c.breaking) for c in changes] == [
        ("#/components/schemas/CallRecordingRequest/properties/call_id/description", True, False),
        ("#/info/version", True, False),
    ]
    assert spec_diff.bump_level(changes) == "patch"


def test_unclassified_changes_are_listed_as_minor() -> None:
    changes = spec_diff.diff(base(), edited(lambda s: s.update(servers=[{"url": "https://api.verbex.ai"}])))
    assert spec_diff.bump_level(changes) == "patch"  # servers are documentation for a generated client
    changes = spec_diff.diff(
        base(), edited(lambda s: schemas(s)["CallRecordingRequest"].update(additionalProperties=False))
    )
    assert [c.where for c in changes] == ["#/components/schemas/CallRecordingRequest/additionalProperties"]
    assert spec_diff.bump_level(changes) == "minor" and not changes[0].breaking


def test_bump_levels() -> None:
    ok, docs, breaking = (
        spec_diff.Change(False, "w", "x"),
        spec_diff.Change(False, "w", "d", docs=True),
        spec_diff.Change(True, "w", "b"),
    )
    assert spec_diff.bump_level([]) is None
    assert spec_diff.bump_level([docs]) == "patch"
    assert spec_diff.bump_level([docs, ok]) == "minor"
    assert spec_diff.bump_level([ok, breaking]) == "major"


# --- the fixture specs: a grown one and a breaking one ---------------------------------------


def test_the_grown_fixture_is_non_breaking_and_adds_what_a_real_update_adds() -> None:
    changes = spec_diff.diff(base(), fixture("grown.json"))
    assert not [c for c in changes if c.breaking], changes
    listed = {f"{c.where}: {c.what}" for c in changes}
    assert {
        "GET /v1/calls/: operation added",
        "GET /v1/calls/{call_id}: operation added",
        "POST /v1/ai-agents/: operation added",
        f"{OP} 200: response field added: duration_seconds",
        f"{OP}: status 429 added",
    } <= listed
    assert any(c.what.startswith("security added: HTTPBearer") for c in changes)
    assert spec_diff.bump_level(changes) == "minor"


def test_the_breaking_fixture_breaks_four_ways() -> None:
    breaking = {
        f"{c.where}: {c.what}"
        for c in spec_diff.diff(fixture("grown.json"), fixture("breaking.json"))
        if c.breaking
    }
    assert breaking == {
        f"{OP} 200: response field removed: file_name",  # renamed to recording_file_name
        f"{OP}: request field newly required: expiration_url_in_minutes",
        "GET /v1/calls/{call_id}: operation removed",
        "GET /v1/calls/: request parameter query:page_size type changed integer -> string",
    }


# --- the whole `make update-spec` transaction, on scratch copies of the repo -----------------

sys.path.insert(0, str(ROOT / "scripts"))
import release  # noqa: E402
import spec_tools  # noqa: E402
import update_spec  # noqa: E402

# A representative part of the suite, run in the scratch copy after the grown update: the
# seed fidelity check, the signed-URL behaviour, Prism and schemathesis over every operation.
WRAPPER_TESTS = [
    "tests/test_spec.py",
    "tests/test_signed_url.py",
    "tests/test_prism.py",
    "tests/test_schemathesis.py",
]


def live_edited(repo: Path, change: Callable[[Spec], None]) -> Spec:
    """The scratch copy's own openapi.json, edited: tests that update it work whatever it has become."""
    spec = json.loads((repo / "openapi.json").read_text())
    change(spec)
    return spec


def error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def grown_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, str]:
    """A scratch copy of the repo taken back to the seed's spec, then `make update-spec
    SPEC=<the grown fixture>`: the first spec update a team makes, however far openapi.json has
    moved since (the wrapper must still work with the grown fixture)."""
    from test_generation import copy_repo, seed_mypy_cache

    repo = copy_repo(tmp_path_factory.mktemp("grown") / "repo")
    seed_mypy_cache(repo / ".mypy_cache")  # for its `make typecheck`
    (repo / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    shutil.copy2(SPECS / "seed.json", repo / "openapi.json")
    assert make(repo, "generate").returncode == 0
    before = release.read_version(repo)
    result = make(repo, "update-spec", f"SPEC={SPECS / 'grown.json'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return repo, result, before


def test_update_spec_with_the_grown_spec_replaces_spec_package_version_and_changelog_together(
    grown_repo: tuple[Path, Any, str],
) -> None:
    repo, result, version_before = grown_repo
    assert (repo / "openapi.json").read_text() == spec_tools.dumps_normalised(fixture("grown.json"))
    assert (repo / "generated/verbex_api/api/calls/list_calls_v1_calls_get.py").exists()
    assert make(repo, "check-generated").returncode == 0
    new = release.bumped(version_before, "minor")
    assert release.read_version(repo) == new and f"{version_before} -> {new} (minor)" in result.stdout
    changelog = (repo / "CHANGELOG.md").read_text()
    entry = release.latest_entry(changelog)
    assert entry.startswith(f"## {new} (") and entry.splitlines()[0].endswith("): Verbex Platform API 1.1.0")
    assert "- GET /v1/calls/: operation added" in entry
    assert f"- {OP} 200: response field added: duration_seconds" in entry and "Breaking:" not in entry
    assert "## 0.1.0 (" in changelog.split(entry)[1]  # older entries stay, below
    assert "Checks: 3/3 passed" in result.stdout  # Optic ran and agreed


def test_after_the_grown_update_the_wrapper_type_checks_and_its_tests_pass(
    grown_repo: tuple[Path, Any, str],
) -> None:
    repo, _, _ = grown_repo
    # The venv's editable install points at this checkout; put the scratch copy first.
    paths = os.pathsep.join([str(repo / "wrapper"), str(repo / "generated")])
    env = {**os.environ, "PYTHONPATH": paths, "MYPYPATH": paths}
    typecheck = make(repo, "typecheck", MYPYPATH=paths)
    assert typecheck.returncode == 0, typecheck.stdout + typecheck.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import verbex_api.api.calls, verbex_client; print(verbex_client.__file__)"],
        env=env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stdout.startswith(str(repo)), probe.stderr
    result = subprocess.run(
        # (-k: not the scratch-copy tests of update-spec itself, which this file already runs)
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--tb=short",
            "-p",
            "no:cacheprovider",
            "-x",
            "-k",
            "not update_spec",
            *WRAPPER_TESTS,
        ],
        env=env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_update_spec_refuses_the_breaking_spec_and_changes_nothing(grown_repo: tuple[Path, Any, str]) -> None:
    repo, _, _ = grown_repo
    before = snapshot(repo)
    result = make(repo, "update-spec", f"SPEC={SPECS / 'breaking.json'}")
    assert result.returncode != 0
    assert result.stdout.count("BREAKING  ") == 4, result.stdout
    # breaking.json bumps info.version to 2.0.0; Optic's default would skip every check there
    assert "[prevent operation removal] cannot remove an operation" in result.stdout
    [error] = error_lines(result)
    assert error.startswith("error: 4 breaking change(s) (") and "ALLOW_BREAKING=1" in error
    assert snapshot(repo) == before


def test_allow_breaking_still_type_checks_and_names_what_broke(grown_repo: tuple[Path, Any, str]) -> None:
    repo, _, _ = grown_repo
    before = snapshot(repo)
    result = make(repo, "update-spec", f"SPEC={SPECS / 'breaking.json'}", ALLOW_BREAKING="1")
    assert result.returncode != 0
    [error] = error_lines(result)
    assert error.startswith("error: the wrapper does not type-check against the new generated package")
    assert "response field removed: file_name" in error or "file_name" in error
    assert error.endswith("; fix wrapper/ first; nothing changed")
    listed = [line.strip() for line in result.stderr.splitlines() if line.startswith("  wrapper/")]
    assert listed and all(": error:" in line for line in listed)
    assert snapshot(repo) == before


def required_expiry(s: Spec) -> None:
    schemas(s)["CallRecordingRequest"]["required"].append("expiration_url_in_minutes")


def test_allow_breaking_accepts_a_break_the_wrapper_survives_as_a_major_release(repo_copy: Path) -> None:  # noqa: F811
    new_spec = repo_copy / "new.json"
    new_spec.write_text(json.dumps(live_edited(repo_copy, required_expiry)))
    version = release.read_version(repo_copy)
    before = snapshot(repo_copy)
    refused = make(repo_copy, "update-spec", f"SPEC={new_spec}")
    assert (
        refused.returncode != 0
        and "request field newly required: expiration_url_in_minutes" in refused.stdout
    )
    assert "cannot make a request property required" in refused.stdout  # Optic agrees
    assert snapshot(repo_copy) == before

    allowed = make(repo_copy, "update-spec", f"SPEC={new_spec}", ALLOW_BREAKING="1")
    assert allowed.returncode == 0, allowed.stderr
    assert release.read_version(repo_copy) == release.bumped(version, "major")
    entry = release.latest_entry((repo_copy / "CHANGELOG.md").read_text())
    assert "major release" in entry
    assert f"Breaking:\n- {OP}: request field newly required: expiration_url_in_minutes" in entry
    model = (repo_copy / "generated/verbex_api/models/call_recording_request.py").read_text()
    assert "expiration_url_in_minutes: int | Unset" not in model
    assert make(repo_copy, "check-generated").returncode == 0


def test_update_spec_accepts_a_compatible_yaml_change_normalised(repo_copy: Path) -> None:  # noqa: F811
    import yaml

    spec = live_edited(repo_copy, lambda s: request_props(s).update(note={"type": "string"}))
    version = release.read_version(repo_copy)
    new_spec = repo_copy / "new.yaml"
    new_spec.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = make(repo_copy, "update-spec", f"SPEC={new_spec}")
    assert result.returncode == 0, result.stderr
    assert f"ok        {OP}: request field added: note" in result.stdout
    assert (repo_copy / "openapi.json").read_text() == json.dumps(spec, indent=2) + "\n"
    assert "note" in (repo_copy / "generated/verbex_api/models/call_recording_request.py").read_text()
    assert release.read_version(repo_copy) == release.bumped(version, "minor")


def test_a_documentation_only_update_is_a_patch_release(repo_copy: Path) -> None:  # noqa: F811
    def change(s: Spec) -> None:
        s["info"]["version"] += ".1"
        request_props(s)["call_id"]["description"] = "The call's id, documented anew"

    new_spec = repo_copy / "new.json"
    new_spec.write_text(json.dumps(live_edited(repo_copy, change)))
    version = release.read_version(repo_copy)
    result = make(repo_copy, "update-spec", f"SPEC={new_spec}")
    assert result.returncode == 0, result.stderr
    assert release.read_version(repo_copy) == release.bumped(version, "patch")
    entry = release.latest_entry((repo_copy / "CHANGELOG.md").read_text())
    assert "patch release: documentation only" in entry and "Documentation:\n- #/components/schemas/" in entry


def test_the_same_spec_again_changes_nothing(repo_copy: Path) -> None:  # noqa: F811
    before = snapshot(repo_copy)
    result = make(repo_copy, "update-spec", f"SPEC={repo_copy / 'openapi.json'}")
    assert result.returncode == 0 and "nothing to do" in result.stdout
    assert snapshot(repo_copy) == before


def test_a_spec_the_generator_rejects_changes_nothing(repo_copy: Path) -> None:  # noqa: F811
    def change(s: Spec) -> None:  # two schemas that would both become class CallRecordingRequest
        schemas(s)["Call_Recording_Request"] = {
            "type": "object",
            "title": "CallRecordingRequest",
            "properties": {},
        }

    new_spec = repo_copy / "new.json"
    new_spec.write_text(json.dumps(live_edited(repo_copy, change)))
    before = snapshot(repo_copy)
    result = make(repo_copy, "update-spec", f"SPEC={new_spec}")
    assert result.returncode != 0
    [error] = error_lines(result)
    assert error.startswith(
        f"error: openapi-python-client rejected {new_spec}: Unable to parse schema /components/schemas/Call_Recording_Request"
    )
    assert 'duplicate models with name "CallRecordingRequest"' in error and error.endswith(
        "; nothing changed"
    )
    assert snapshot(repo_copy) == before


def test_optic_checks_a_major_version_bump_only_with_our_standard(tmp_path: Path) -> None:
    def change(s: Spec) -> None:
        s["info"]["version"] = "2.0.0"
        resp = schemas(s)["CallRecordingSignedUrlResponse"]
        del resp["properties"]["file_name"]
        resp["required"].remove("file_name")

    old = tmp_path / "old.json"
    old.write_text(spec_tools.dumps_normalised(base()))
    new_text = spec_tools.dumps_normalised(edited(change))
    breaking, report = update_spec.optic_verdict(old, new_text)
    assert breaking and "cannot remove response property 'file_name'" in report
    # what the standard changes: Optic's default lets the same break through on a major bump
    (tmp_path / "new.json").write_text(new_text)
    optic = ROOT / "node_modules" / ".bin" / "optic"
    default = subprocess.run(
        [str(optic), "diff", str(old), str(tmp_path / "new.json"), "--check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "OPTIC_TELEMETRY_LEVEL": "off", "NO_UPDATE_NOTIFIER": "1"},
    )
    assert default.returncode == 0 and "cannot remove response property" not in default.stdout


def moved_path(s: Spec) -> None:
    """The operation moves (same operationId, so the same module: mypy cannot see it)."""
    s["paths"]["/v2/call-recording/signed-url"] = s["paths"].pop("/v1/call-recording/signed-url")


def test_allow_breaking_runs_the_wrapper_tests_and_names_the_failing_ones(repo_copy: Path) -> None:  # noqa: F811
    new_spec = repo_copy / "new.json"
    new_spec.write_text(json.dumps(live_edited(repo_copy, moved_path)))
    before = snapshot(repo_copy)
    result = make(repo_copy, "update-spec", f"SPEC={new_spec}", ALLOW_BREAKING="1")
    assert result.returncode != 0
    [error] = error_lines(result)
    assert "wrapper test(s) fail against the new generated package after the breaking change(s)" in error
    assert "(first: tests/test_" in error and error.endswith("fix wrapper/ first; nothing changed")
    assert any(line.startswith("  FAILED tests/test_signed_url.py::") for line in result.stderr.splitlines())
    assert snapshot(repo_copy) == before
