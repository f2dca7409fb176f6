"""Spec tooling for maintainers: extract, normalise and validate openapi.json.

Kept out of the installed packages: only `make` targets and tests use it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

_YAML_BLOCK = re.compile(r"^````yaml[^\n]*\n(.*?)^````", re.DOTALL | re.MULTILINE)


def yaml_block_of_seed(seed_text: str) -> str:
    """Return the OpenAPI YAML block embedded in a docs page (the seed)."""
    match = _YAML_BLOCK.search(seed_text)
    if match is None:
        raise ValueError("no ````yaml block found in the seed document")
    return match.group(1)


def load_document(path: Path) -> Any:
    """Load an OpenAPI document from JSON, YAML, or a docs page holding a YAML block."""
    text = path.read_text(encoding="utf-8")
    if "````yaml" in text:
        text = yaml_block_of_seed(text)
    # YAML is a superset of JSON; PyYAML's dicts keep the source's key order.
    return yaml.safe_load(text)


def dumps_normalised(document: Any) -> str:
    """The one canonical text of a spec: 2-space JSON, source key order, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def validate(document: Any) -> None:
    """Raise if the document is not a valid OpenAPI 3.x document."""
    from openapi_spec_validator import validate as _validate

    _validate(document)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "normalise":
        print("usage: spec_tools.py normalise SOURCE DEST", file=sys.stderr)
        return 2
    document = load_document(Path(argv[1]))
    validate(document)
    Path(argv[2]).write_text(dumps_normalised(document), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
