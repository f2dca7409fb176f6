"""Semantic diff of two OpenAPI 3.x documents, classified for existing callers.

`make update-spec` runs this beside Optic (npm, pinned in package-lock.json):
Optic is the maintained second opinion, this module lists every category we
gate on (enum values, status codes, nested fields) in one readable report.
Either one finding a break stops the update. Rules, from the point of view of
code already written against the old spec:

- request side: a removed field, a newly required field or parameter, a
  retyped field or a removed enum value breaks callers; additions of optional
  things do not.
- response side: a removed field, a field made optional (may now be absent),
  a retyped field, a new enum value (unknown to callers) or a removed success
  status breaks callers; new fields and new error statuses do not.
- operations: removing one breaks; adding one does not.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Change:
    breaking: bool
    where: str
    what: str

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'ok      '}  {self.where}: {self.what}"


class _Resolver:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def __call__(self, schema: Any, _depth: int = 0) -> dict[str, Any]:
        """Follow local $refs (bounded, so a cyclic spec cannot hang us)."""
        while isinstance(schema, dict) and "$ref" in schema and _depth < 32:
            node: Any = self.document
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema, _depth = node, _depth + 1
        return schema if isinstance(schema, dict) else {}


def _type_of(schema: dict[str, Any], resolve: _Resolver) -> str:
    """A comparable description of a schema's type (not its constraints)."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "|".join(sorted({_type_of(resolve(s), resolve) for s in schema[key]}))
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = "|".join(sorted(kind))
    if kind == "array":
        return f"array<{_type_of(resolve(schema.get('items', {})), resolve)}>"
    fmt = schema.get("format")
    return f"{kind}({fmt})" if fmt else str(kind)


def _compare_schema(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    side: str,
    where: str,
    field: str,
    r_old: _Resolver,
    r_new: _Resolver,
    depth: int = 0,
) -> list[Change]:
    old, new = r_old(old), r_new(new)
    changes: list[Change] = []
    label = field or "body"
    if _type_of(old, r_old) != _type_of(new, r_new):
        return [
            Change(
                True, where, f"{side} {label} type changed {_type_of(old, r_old)} -> {_type_of(new, r_new)}"
            )
        ]
    if "enum" in old or "enum" in new:
        before, after = set(map(str, old.get("enum", []))), set(map(str, new.get("enum", [])))
        for value in sorted(after - before):
            changes.append(Change(side == "response", where, f"{side} {label} enum value added: {value}"))
        for value in sorted(before - after):
            changes.append(Change(side == "request", where, f"{side} {label} enum value removed: {value}"))
    if depth > 16:
        return changes
    if old.get("type") == "array":
        return changes + _compare_schema(
            old.get("items", {}),
            new.get("items", {}),
            side=side,
            where=where,
            field=f"{label}[]",
            r_old=r_old,
            r_new=r_new,
            depth=depth + 1,
        )
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    prefix = f"{field}." if field else ""
    for name in new_props.keys() - old_props.keys():
        required = name in new_req
        breaking = side == "request" and required
        changes.append(
            Change(breaking, where, f"{side} field added: {prefix}{name}{' (required)' if required else ''}")
        )
    for name in old_props.keys() - new_props.keys():
        changes.append(Change(True, where, f"{side} field removed: {prefix}{name}"))
    for name in sorted(old_props.keys() & new_props.keys()):
        if side == "request" and name in new_req and name not in old_req:
            changes.append(Change(True, where, f"request field newly required: {prefix}{name}"))
        if side == "response" and name in old_req and name not in new_req:
            changes.append(Change(True, where, f"response field newly optional: {prefix}{name}"))
        if side == "response" and name in new_req and name not in old_req:
            changes.append(Change(False, where, f"response field newly required: {prefix}{name}"))
        changes += _compare_schema(
            old_props[name],
            new_props[name],
            side=side,
            where=where,
            field=f"{prefix}{name}",
            r_old=r_old,
            r_new=r_new,
            depth=depth + 1,
        )
    return changes


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ops = {}
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if isinstance(item, dict) and method in item:
                ops[f"{method.upper()} {path}"] = item[method]
    return ops


def _json_schema(container: dict[str, Any], resolve: _Resolver) -> dict[str, Any]:
    content = resolve(container).get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    return media.get("schema", {}) if isinstance(media, dict) else {}


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every semantic change between two documents, breaking ones first."""
    r_old, r_new = _Resolver(old), _Resolver(new)
    old_ops, new_ops = _operations(old), _operations(new)
    changes = [Change(False, op, "operation added") for op in sorted(new_ops.keys() - old_ops.keys())]
    changes += [Change(True, op, "operation removed") for op in sorted(old_ops.keys() - new_ops.keys())]
    for op in sorted(old_ops.keys() & new_ops.keys()):
        o, n = old_ops[op], new_ops[op]
        changes += _compare_params(o, n, op, r_old, r_new)
        if "requestBody" in o or "requestBody" in n:
            changes += _compare_schema(
                _json_schema(o.get("requestBody", {}), r_old),
                _json_schema(n.get("requestBody", {}), r_new),
                side="request",
                where=op,
                field="",
                r_old=r_old,
                r_new=r_new,
            )
        o_resp, n_resp = o.get("responses", {}), n.get("responses", {})
        for status in sorted(n_resp.keys() - o_resp.keys()):
            changes.append(Change(False, op, f"status {status} added"))
        for status in sorted(o_resp.keys() - n_resp.keys()):
            changes.append(Change(str(status).startswith("2"), op, f"status {status} removed"))
        for status in sorted(o_resp.keys() & n_resp.keys()):
            changes += _compare_schema(
                _json_schema(o_resp[status], r_old),
                _json_schema(n_resp[status], r_new),
                side="response",
                where=f"{op} {status}",
                field="",
                r_old=r_old,
                r_new=r_new,
            )
    return sorted(changes, key=lambda c: (not c.breaking, c.where, c.what))


def _compare_params(
    o: dict[str, Any], n: dict[str, Any], op: str, r_old: _Resolver, r_new: _Resolver
) -> list[Change]:
    def index(params: list[Any], resolve: _Resolver) -> dict[str, dict[str, Any]]:
        out = {}
        for p in params:
            p = resolve(p)
            out[f"{p.get('in')}:{p.get('name')}"] = p
        return out

    old_p, new_p = index(o.get("parameters", []), r_old), index(n.get("parameters", []), r_new)
    changes = []
    for key in sorted(new_p.keys() - old_p.keys()):
        required = bool(new_p[key].get("required"))
        changes.append(Change(required, op, f"parameter added: {key}{' (required)' if required else ''}"))
    for key in sorted(old_p.keys() - new_p.keys()):
        changes.append(Change(True, op, f"parameter removed: {key}"))
    for key in sorted(old_p.keys() & new_p.keys()):
        if new_p[key].get("required") and not old_p[key].get("required"):
            changes.append(Change(True, op, f"parameter newly required: {key}"))
        changes += _compare_schema(
            old_p[key].get("schema", {}),
            new_p[key].get("schema", {}),
            side="request",
            where=op,
            field=f"parameter {key}",
            r_old=r_old,
            r_new=r_new,
        )
    return changes


def main(argv: list[str]) -> int:
    """spec_diff.py OLD NEW: print the changes; exit 1 if any is breaking."""
    from pathlib import Path

    from spec_tools import load_document

    if len(argv) != 2:
        print("usage: spec_diff.py OLD NEW", file=sys.stderr)
        return 2
    changes = diff(load_document(Path(argv[0])), load_document(Path(argv[1])))
    for change in changes:
        print(change)
    if not changes:
        print("no semantic changes")
    return 1 if any(c.breaking for c in changes) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
