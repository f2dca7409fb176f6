"""openapi.json is the seed's spec, faithfully converted, and valid OpenAPI 3.1."""

from __future__ import annotations

import json

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from conftest import ROOT


def seed_spec() -> object:
    text = (ROOT / "tests" / "fixtures" / "seed_docs_page.txt").read_text()
    block = text.split("````yaml", 1)[1].split("\n", 1)[1].split("````", 1)[0]
    return yaml.safe_load(block)


def test_openapi_json_equals_the_seed_yaml_block() -> None:
    assert json.loads((ROOT / "openapi.json").read_text()) == seed_spec()


def test_key_order_indent_and_trailing_newline_match_the_source() -> None:
    text = (ROOT / "openapi.json").read_text()
    assert text == json.dumps(seed_spec(), indent=2, ensure_ascii=False) + "\n"
    assert text.endswith("}\n") and not text.endswith("\n\n")


def test_openapi_json_is_valid_openapi_3_1() -> None:
    document = json.loads((ROOT / "openapi.json").read_text())
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_validator_rejects_a_broken_document() -> None:
    document = json.loads((ROOT / "openapi.json").read_text())
    document["paths"]["/v1/call-recording/signed-url"]["post"]["responses"] = "nope"
    try:
        validate(document)
    except OpenAPIValidationError:
        return
    raise AssertionError("a document with non-object responses validated")
