"""Spec tooling for maintainers: read, parse, validate and normalise an OpenAPI document.

Kept out of the installed packages: only `make` targets and tests use it. Every
failure is a `SpecError` whose message is one line saying what is wrong and
where (file or URL, then line:column or a JSON pointer).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

_YAML_BLOCK = re.compile(r"^````yaml[^\n]*\n(.*?)^````", re.DOTALL | re.MULTILINE)
FETCH_TIMEOUT_SECONDS = 30.0
MAX_SPEC_BYTES = 20 * 1024 * 1024


class SpecError(Exception):
    """A spec that cannot be used, with a one-line message naming what and where."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def yaml_block_of_seed(seed_text: str) -> str:
    """Return the OpenAPI YAML block embedded in a docs page (the seed)."""
    match = _YAML_BLOCK.search(seed_text)
    if match is None:
        raise ValueError("no ````yaml block found in the seed document")
    return match.group(1)


def fetch(url: str) -> str:
    """The text at url (bounded in time and size), or a SpecError saying why not."""
    import httpx

    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as response:
            if response.status_code != 200:
                reason = response.reason_phrase or "error"
                raise SpecError(f"{url}: cannot fetch the spec: HTTP {response.status_code} {reason}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_SPEC_BYTES:
                    raise SpecError(f"{url}: cannot fetch the spec: larger than {MAX_SPEC_BYTES} bytes")
            encoding = response.encoding or "utf-8"
    except httpx.HTTPError as exc:
        raise SpecError(f"{url}: cannot fetch the spec: {type(exc).__name__}: {exc}") from None
    try:
        return bytes(body).decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise SpecError(f"{url}: the spec is not {encoding} text") from None


def read_source(source: str) -> str:
    """The text of a spec given as a path or an http(s) URL."""
    if is_url(source):
        return fetch(source)
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"{source}: no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None


def _format_of(source: str, text: str) -> str:
    """'json', 'yaml' or 'page' (a docs page holding a ````yaml block)."""
    if "````yaml" in text:
        return "page"
    name = source.split("?", 1)[0].lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    return "json" if text.lstrip().startswith("{") else "yaml"


def _looks_like_yaml_mapping(text: str) -> bool:
    try:
        return isinstance(yaml.safe_load(text), dict)
    except yaml.YAMLError:
        return False


def parse(source: str, text: str) -> dict[str, Any]:
    """Parse a spec's text; JSON for .json, YAML for .yaml/.yml, the YAML block of a docs page."""
    if not text.strip():
        raise SpecError(f"{source}: empty file, expected an OpenAPI document (JSON or YAML)")
    kind = _format_of(source, text)
    if kind == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = ""
            if _looks_like_yaml_mapping(text):
                hint = " (this is YAML: give it a .yaml or .yml name, or convert it to JSON)"
            raise SpecError(f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}{hint}") from None
    else:
        offset = 0
        if kind == "page":
            match = _YAML_BLOCK.search(text)
            if match is None:
                raise SpecError(f"{source}: a ````yaml block is opened but never closed")
            offset, text = text.count("\n", 0, match.start(1)), match.group(1)
        try:
            # YAML is a superset of JSON; PyYAML's dicts keep the source's key order.
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1 + offset}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"{source}{where}: invalid YAML: {problem}") from None
    if not isinstance(document, dict):
        raise SpecError(f"{source}: expected an OpenAPI document (an object), got {type(document).__name__}")
    return document


def load_document(path: Path) -> dict[str, Any]:
    """Load an OpenAPI document from JSON, YAML, or a docs page holding a YAML block."""
    return parse(str(path), read_source(str(path)))


def load_source(source: str) -> dict[str, Any]:
    """Load a spec from a path or an http(s) URL."""
    return parse(source, read_source(source))


def json_pointer(parts: Any) -> str:
    """RFC 6901 pointer of a path given as a sequence of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _at(document: Any, parts: list[Any]) -> tuple[bool, Any]:
    """(found, value) at a path of keys and indexes (an index may be given as digits)."""
    node = document
    for part in parts:
        if isinstance(node, list) and isinstance(part, str) and part.isdigit():
            part = int(part)
        if isinstance(node, dict):
            found = part in node
        else:
            found = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not found:
            return False, None
        node = node[part]
    return True, node


def _locate(document: Any, relative: list[Any], instance: Any) -> list[Any] | None:
    """Where in the document a validator error's path points.

    openapi-spec-validator reports errors inside a schema relative to that schema; find the
    first place (document order) where the path leads to the offending value.
    """
    found, value = _at(document, relative)
    if found and value == instance:
        return relative
    stack: list[tuple[list[Any], Any]] = [([], document)]
    while stack:
        prefix, node = stack.pop()
        found, value = _at(node, relative)
        if prefix and found and value == instance:
            return prefix + relative
        if isinstance(node, dict):
            stack.extend(([*prefix, k], v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend(([*prefix, i], v) for i, v in reversed(list(enumerate(node))))
    return None


def _short_message(error: Exception) -> str:
    """The validator's message without the dump of the offending value that follows it."""
    message = (str(getattr(error, "message", None) or error).strip().splitlines() or ["invalid"])[0]
    return message if len(message) <= 200 else message[:197] + "..."


def validate(document: Any, source: str = "spec") -> None:
    """Raise SpecError unless the document is valid OpenAPI 3.x (one line: where, then what)."""
    from openapi_spec_validator import validate as _validate

    try:
        _validate(document)
    except Exception as error:  # the validator raises several families; all mean "invalid"
        relative = list(getattr(error, "absolute_path", []) or [])
        parts = _locate(document, relative, getattr(error, "instance", None)) if relative else []
        where = f"#{json_pointer(parts if parts is not None else relative)}"
        if not where[1:]:
            where = "#/"
        raise SpecError(f"{source}{where}: not a valid OpenAPI document: {_short_message(error)}") from None
    _check_local_refs(document, source)


def _refs(node: Any, parts: tuple[Any, ...] = ()) -> Any:
    """(location, target) of every $ref in the document, in document order."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield parts, node["$ref"]
        for key, value in node.items():
            yield from _refs(value, (*parts, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, (*parts, i))


def _check_local_refs(document: Any, source: str) -> None:
    """openapi-spec-validator lets a $ref to a missing component through; the generator does not."""
    for parts, ref in _refs(document):
        if not ref.startswith("#"):
            continue
        target = [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/")[1:]]
        if not _at(document, target)[0]:
            where = json_pointer((*parts, "$ref"))
            raise SpecError(f"{source}#{where}: not a valid OpenAPI document: $ref {ref!r} does not resolve")


def dumps_normalised(document: Any) -> str:
    """The one canonical text of a spec: 2-space JSON, source key order, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "normalise":
        print("usage: spec_tools.py normalise SOURCE DEST", file=sys.stderr)
        return 2
    try:
        document = load_source(argv[1])
        validate(document, argv[1])
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    Path(argv[2]).write_text(dumps_normalised(document), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
