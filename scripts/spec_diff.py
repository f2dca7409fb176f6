"""Semantic diff of two OpenAPI 3.x documents, classified for existing Python callers.

`make update-spec` gates on this diff (Optic runs beside it as a second opinion;
either one finding a break stops the update) and derives the version bump and
the changelog entry from it. Rules, from the point of view of code already
written against the old spec and the package generated from it:

- operations: removing one breaks; adding one does not. An operationId or first
  tag whose Python name changes moves the generated module (`verbex_api.api.<tag>.
  <operation_id>`): an ImportError for consumers, so it breaks. A renamed path
  parameter renames the generated function's argument: it breaks.
- security: an operation that starts requiring a scheme other than HTTP bearer, a
  requirement that goes away while others stay, or a scheme whose definition
  changes breaks callers. Declaring HTTP bearer where nothing was declared does
  not: the API has always required `Authorization: Bearer <key>` and the wrapper
  always sends it (the seed spec just said `security: []`).
- request side: a removed field or parameter, a newly required field, parameter
  or body, a retyped field, null no longer accepted, a removed content type, a
  removed enum value (or an enum where there was none) and tighter limits
  (minimum/maximum, lengths, item counts, pattern, multipleOf) break callers.
- response side: a removed field, a field made optional or nullable (it may now be
  absent or null), a retyped field, a new enum value (unknown to callers), a
  removed content type or a removed success status break callers; new fields and
  new error statuses do not. Limits on responses are informational.
- components: a removed schema removes its model class from `verbex_api.models`.
- anything else that differs is listed: as documentation (descriptions, titles,
  examples, info) or, when no rule covers it, as an unclassified non-breaking change.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PATH_PARAM = re.compile(r"\{([^}]*)\}")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT_LIMITS = ("pattern", "multipleOf")
_DOC_KEYS = {"description", "summary", "title", "example", "examples", "externalDocs", "deprecated"}
_MAX_DEPTH = 16
_MAX_LISTED_DOC_CHANGES = 50


@dataclass(frozen=True)
class Change:
    breaking: bool
    where: str
    what: str
    docs: bool = False  # documentation only: a patch release

    def __str__(self) -> str:
        mark = "BREAKING" if self.breaking else "docs    " if self.docs else "ok      "
        return f"{mark}  {self.where}: {self.what}"


def bump_level(changes: list[Change]) -> str | None:
    """Semantic-versioning level a set of changes calls for: major, minor, patch or None."""
    if any(c.breaking for c in changes):
        return "major"
    if any(not c.docs for c in changes):
        return "minor"
    return "patch" if changes else None


def python_name(value: str) -> str:
    """The identifier openapi-python-client makes of an operationId or tag (module names)."""
    from openapi_python_client.strings import snake_case

    return snake_case(value)


class _Resolver:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def __call__(self, schema: Any, _depth: int = 0) -> dict[str, Any]:
        """Follow local $refs (bounded, so a cyclic spec cannot hang us)."""
        while isinstance(schema, dict) and "$ref" in schema and _depth < 32:
            node: Any = self.document
            for part in str(schema["$ref"]).lstrip("#/").split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema, _depth = node, _depth + 1
        return schema if isinstance(schema, dict) else {}


def _is_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or ("const" in schema and schema["const"] is None)


def _unwrap(schema: dict[str, Any], resolve: _Resolver) -> tuple[dict[str, Any], bool]:
    """(the schema without its null alternative, whether null is allowed).

    FastAPI writes `Optional[X]` as `anyOf: [X, {type: null}]`; 3.0 specs say `nullable: true`;
    3.1 also allows `type: [X, "null"]`.
    """
    nullable = bool(schema.get("nullable"))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            members = [resolve(s) for s in schema[key]]
            rest = [m for m in members if not _is_null(m)]
            nullable = nullable or len(rest) < len(members)
            if len(rest) == 1:
                return rest[0], nullable
            return {**schema, key: rest}, nullable
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        others = [k for k in kind if k != "null"]
        return {**schema, "type": others[0] if len(others) == 1 else others}, True
    return schema, nullable


def _types(schema: dict[str, Any], resolve: _Resolver, depth: int = 0) -> frozenset[str]:
    """The non-null types a schema allows, as comparable strings (not its constraints)."""
    schema, _ = _unwrap(schema, resolve)
    for key in ("anyOf", "oneOf"):
        if key in schema and depth < _MAX_DEPTH:
            return frozenset().union(*(_types(resolve(s), resolve, depth + 1) for s in schema[key]))
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    out = set()
    for k in kinds:
        if k == "array" and depth < _MAX_DEPTH:
            items = _types(resolve(schema.get("items", {})), resolve, depth + 1)
            out.add(f"array<{'|'.join(sorted(items))}>")
        elif schema.get("format") and k != "any":
            out.add(f"{k}({schema['format']})")
        else:
            out.add(str(k))
    return frozenset(out)


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    return "any" in wide or narrow <= wide


def _show(types: frozenset[str]) -> str:
    return "|".join(sorted(types))


def _limit_changes(
    old: dict[str, Any], new: dict[str, Any], side: str, where: str, label: str
) -> list[Change]:
    """Tighter limits break requests; on responses they are informational."""
    changes = []
    for key in (*_LOWER_BOUNDS, *_UPPER_BOUNDS, *_EXACT_LIMITS):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
        if after is None:
            tighter = False
        elif before is None or not numeric or key in _EXACT_LIMITS:
            tighter = True
        else:
            tighter = after > before if key in _LOWER_BOUNDS else after < before
        what = f"{side} {label} {key} {before!r} -> {after!r}" + (" (tighter)" if tighter else " (looser)")
        changes.append(Change(side == "request" and tighter, where, what))
    return changes


def _enum_changes(
    old: dict[str, Any], new: dict[str, Any], side: str, where: str, label: str
) -> list[Change]:
    if "enum" not in old and "enum" not in new:
        return []
    if "enum" not in old:  # narrowed from any value to a list
        return [Change(side == "request", where, f"{side} {label} restricted to enum {new['enum']!r}")]
    if "enum" not in new:
        return [Change(side == "response", where, f"{side} {label} no longer restricted to an enum")]
    before, after = set(map(str, old["enum"])), set(map(str, new["enum"]))
    changes = [
        Change(side == "response", where, f"{side} {label} enum value added: {v}")
        for v in sorted(after - before)
    ]
    changes += [
        Change(side == "request", where, f"{side} {label} enum value removed: {v}")
        for v in sorted(before - after)
    ]
    return changes


def _compare_schema(
    old: Any,
    new: Any,
    *,
    side: str,
    where: str,
    field: str,
    r_old: _Resolver,
    r_new: _Resolver,
    depth: int = 0,
) -> list[Change]:
    label = field or "body"
    old_full, new_full = r_old(old), r_new(new)
    old_types, new_types = _types(old_full, r_old), _types(new_full, r_new)
    if old_types != new_types:
        compatible = _covers(new_types, old_types) if side == "request" else _covers(old_types, new_types)
        verb = "widened" if side == "request" and compatible else "narrowed" if compatible else "changed"
        return [
            Change(
                not compatible, where, f"{side} {label} type {verb} {_show(old_types)} -> {_show(new_types)}"
            )
        ]
    old_s, old_null = _unwrap(old_full, r_old)
    new_s, new_null = _unwrap(new_full, r_new)
    changes: list[Change] = []
    if old_null != new_null:
        if side == "response":
            what = (
                f"response {label} made nullable (may now be null)"
                if new_null
                else f"response {label} no longer null"
            )
            changes.append(Change(new_null, where, what))
        else:
            what = f"request {label} accepts null" if new_null else f"request {label} no longer accepts null"
            changes.append(Change(not new_null, where, what))
    changes += _enum_changes(old_s, new_s, side, where, label)
    changes += _limit_changes(old_s, new_s, side, where, label)
    if side == "request" and field and old_s.get("default") != new_s.get("default"):
        changes.append(
            Change(
                False, where, f"request {label} default {old_s.get('default')!r} -> {new_s.get('default')!r}"
            )
        )
    if depth > _MAX_DEPTH:
        return changes
    if "items" in old_s or "items" in new_s:
        changes += _compare_schema(
            old_s.get("items", {}),
            new_s.get("items", {}),
            side=side,
            where=where,
            field=f"{label}[]",
            r_old=r_old,
            r_new=r_new,
            depth=depth + 1,
        )
    old_props, new_props = old_s.get("properties", {}), new_s.get("properties", {})
    old_req, new_req = set(old_s.get("required", [])), set(new_s.get("required", []))
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
        if side == "request" and name in old_req and name not in new_req:
            changes.append(Change(False, where, f"request field now optional: {prefix}{name}"))
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


def _template(path: str) -> str:
    return _PATH_PARAM.sub("{}", path)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any], list[Any]]]:
    """(METHOD, path template with unnamed params) -> (path, operation, path-level parameters)."""
    ops = {}
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                ops[(method.upper(), _template(path))] = (path, item[method], item.get("parameters", []))
    return ops


def _content(container: Any, resolve: _Resolver) -> dict[str, Any]:
    content = resolve(container).get("content") or {}
    return content if isinstance(content, dict) else {}


def _compare_content(
    old: Any, new: Any, *, side: str, where: str, r_old: _Resolver, r_new: _Resolver
) -> list[Change]:
    old_c, new_c = _content(old, r_old), _content(new, r_new)
    changes = []
    for media in sorted(new_c.keys() - old_c.keys()):
        changes.append(Change(False, where, f"{side} content type added: {media}"))
    for media in sorted(old_c.keys() - new_c.keys()):
        changes.append(Change(True, where, f"{side} content type removed: {media}"))
    common = sorted(old_c.keys() & new_c.keys())
    for media in common:
        at = where if len(common) == 1 else f"{where} [{media}]"
        changes += _compare_schema(
            (old_c[media] or {}).get("schema", {}),
            (new_c[media] or {}).get("schema", {}),
            side=side,
            where=at,
            field="",
            r_old=r_old,
            r_new=r_new,
        )
    return changes


def _requirements(op: dict[str, Any], document: dict[str, Any]) -> list[frozenset[str]]:
    """The operation's effective security: alternatives, each a set of scheme names."""
    security = op["security"] if "security" in op else document.get("security") or []
    return [frozenset(req) for req in security if isinstance(req, dict)]


def _scheme(document: dict[str, Any], name: str) -> dict[str, Any]:
    scheme = _Resolver(document)((document.get("components") or {}).get("securitySchemes", {}).get(name, {}))
    return {
        k: v for k, v in scheme.items() if k in ("type", "scheme", "in", "name", "flows", "openIdConnectUrl")
    }


def _is_bearer(document: dict[str, Any], names: frozenset[str]) -> bool:
    return all(
        _scheme(document, n).get("type") == "http"
        and str(_scheme(document, n).get("scheme", "")).lower() == "bearer"
        for n in names
    )


def _compare_security(
    o: dict[str, Any], n: dict[str, Any], old: dict[str, Any], new: dict[str, Any], op: str
) -> list[Change]:
    before, after = _requirements(o, old), _requirements(n, new)
    open_before = not before or frozenset() in before
    open_after = not after or frozenset() in after
    changes = []
    if open_after and not open_before:
        changes.append(Change(False, op, "security removed: no credentials needed"))
    elif open_before and not open_after:
        added = sorted(set().union(*after))
        bearer = all(_is_bearer(new, req) for req in after)
        note = " (the API always required a bearer key; the wrapper sends it)" if bearer else ""
        changes.append(Change(not bearer, op, f"security added: {', '.join(added)}{note}"))
    elif not open_before:
        for req in before:
            if req not in after:
                changes.append(
                    Change(True, op, f"security requirement removed or changed: {' + '.join(sorted(req))}")
                )
        for req in after:
            if req not in before:
                changes.append(Change(False, op, f"security alternative added: {' + '.join(sorted(req))}"))
    for name in sorted(set().union(*before, set()) & set().union(*after, set())):
        if _scheme(old, name) != _scheme(new, name):
            changes.append(
                Change(
                    True, op, f"security scheme {name} changed: {_scheme(old, name)} -> {_scheme(new, name)}"
                )
            )
    return changes


def _compare_names(o: dict[str, Any], n: dict[str, Any], op: str) -> list[Change]:
    """operationId and first tag name the generated module: a rename is an ImportError."""
    changes = []
    old_tag = (o.get("tags") or ["default"])[0]
    new_tag = (n.get("tags") or ["default"])[0]
    if python_name(old_tag) != python_name(new_tag):
        changes.append(
            Change(
                True,
                op,
                f"tag renamed {old_tag!r} -> {new_tag!r}: module verbex_api.api.{python_name(old_tag)} "
                f"becomes verbex_api.api.{python_name(new_tag)} (ImportError for consumers)",
            )
        )
    elif (o.get("tags") or []) != (n.get("tags") or []):
        changes.append(Change(False, op, f"tags {o.get('tags')!r} -> {n.get('tags')!r} (same module)"))
    old_id, new_id = o.get("operationId"), n.get("operationId")
    if old_id != new_id:
        if old_id and new_id and python_name(old_id) == python_name(new_id):
            changes.append(Change(False, op, f"operationId {old_id!r} -> {new_id!r} (same Python name)"))
        else:
            old_mod = python_name(old_id) if old_id else "(derived from the path)"
            new_mod = python_name(new_id) if new_id else "(derived from the path)"
            changes.append(
                Change(
                    True,
                    op,
                    f"operationId renamed {old_id!r} -> {new_id!r}: module {old_mod} becomes {new_mod} "
                    "(ImportError for consumers)",
                )
            )
    if n.get("deprecated") and not o.get("deprecated"):
        changes.append(Change(False, op, "operation deprecated"))
    return changes


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change between two documents, breaking ones first."""
    r_old, r_new = _Resolver(old), _Resolver(new)
    old_ops, new_ops = _operations(old), _operations(new)
    changes = [
        Change(False, f"{k[0]} {new_ops[k][0]}", "operation added") for k in new_ops.keys() - old_ops.keys()
    ]
    changes += [
        Change(True, f"{k[0]} {old_ops[k][0]}", "operation removed") for k in old_ops.keys() - new_ops.keys()
    ]
    for key in old_ops.keys() & new_ops.keys():
        (old_path, o, o_shared), (new_path, n, n_shared) = old_ops[key], new_ops[key]
        op = f"{key[0]} {new_path}"
        renames = {}
        for a, b in zip(_PATH_PARAM.findall(old_path), _PATH_PARAM.findall(new_path), strict=True):
            if a != b:
                renames[a] = b
                changes.append(
                    Change(True, op, f"path parameter renamed {{{a}}} -> {{{b}}} (was {old_path})")
                )
        changes += _compare_names(o, n, op)
        changes += _compare_security(o, n, old, new, op)
        changes += _compare_params(
            [*o_shared, *o.get("parameters", [])],
            [*n_shared, *n.get("parameters", [])],
            op,
            renames,
            r_old,
            r_new,
        )
        if "requestBody" in o or "requestBody" in n:
            o_body, n_body = r_old(o.get("requestBody", {})), r_new(n.get("requestBody", {}))
            if n_body.get("required") and not o_body.get("required"):
                changes.append(Change(True, op, "request body newly required"))
            changes += _compare_content(o_body, n_body, side="request", where=op, r_old=r_old, r_new=r_new)
        o_resp, n_resp = o.get("responses") or {}, n.get("responses") or {}
        for status in sorted(n_resp.keys() - o_resp.keys()):
            changes.append(Change(False, op, f"status {status} added"))
        for status in sorted(o_resp.keys() - n_resp.keys()):
            changes.append(Change(str(status).startswith("2"), op, f"status {status} removed"))
        for status in sorted(o_resp.keys() & n_resp.keys()):
            changes += _compare_content(
                o_resp[status],
                n_resp[status],
                side="response",
                where=f"{op} {status}",
                r_old=r_old,
                r_new=r_new,
            )
    changes += _compare_components(old, new)
    if not changes and old != new:
        changes = _other_changes(old, new)
    return sorted(changes, key=lambda c: (not c.breaking, c.docs, c.where, c.what))


def _compare_components(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    old_s = (old.get("components") or {}).get("schemas") or {}
    new_s = (new.get("components") or {}).get("schemas") or {}
    changes = [
        Change(False, "components", f"schema added: {name}") for name in sorted(new_s.keys() - old_s.keys())
    ]
    changes += [
        Change(True, "components", f"schema removed: {name} (its model leaves verbex_api.models)")
        for name in sorted(old_s.keys() - new_s.keys())
    ]
    return changes


def _leaf_differences(old: Any, new: Any, parts: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old.keys(), *(k for k in new if k not in old)]:
            if old.get(key, _MISSING) != new.get(key, _MISSING):
                yield from _leaf_differences(old.get(key, _MISSING), new.get(key, _MISSING), (*parts, key))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                yield from _leaf_differences(a, b, (*parts, i))
    else:
        yield parts


_MISSING = object()


def _other_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What differs where no semantic rule applies: documentation, or unclassified."""
    from spec_tools import json_pointer

    changes = []
    for parts in _leaf_differences(old, new):
        docs = (bool(parts) and parts[0] in ("info", "tags", "externalDocs", "servers")) or any(
            p in _DOC_KEYS or str(p).startswith("x-") for p in parts
        )
        what = "documentation changed" if docs else "changed (no rule covers it; treated as non-breaking)"
        changes.append(Change(False, f"#{json_pointer(parts)}", what, docs=docs))
    if len(changes) > _MAX_LISTED_DOC_CHANGES:
        rest = changes[_MAX_LISTED_DOC_CHANGES:]
        changes = changes[:_MAX_LISTED_DOC_CHANGES]
        changes.append(Change(False, "spec", f"{len(rest)} more changes", docs=all(c.docs for c in rest)))
    return changes


def _compare_params(
    o_params: list[Any],
    n_params: list[Any],
    op: str,
    renames: dict[str, str],
    r_old: _Resolver,
    r_new: _Resolver,
) -> list[Change]:
    def index(params: list[Any], resolve: _Resolver, rename: dict[str, str]) -> dict[str, dict[str, Any]]:
        out = {}
        for p in params:
            p = resolve(p)
            name = rename.get(p.get("name"), p.get("name")) if p.get("in") == "path" else p.get("name")
            out[f"{p.get('in')}:{name}"] = p  # operation-level entries override path-level ones
        return out

    old_p, new_p = index(o_params, r_old, renames), index(n_params, r_new, {})
    changes = []
    added, removed = sorted(new_p.keys() - old_p.keys()), sorted(old_p.keys() - new_p.keys())
    for key in added:
        required = bool(new_p[key].get("required"))
        changes.append(Change(required, op, f"parameter added: {key}{' (required)' if required else ''}"))
    for key in removed:
        same_place = [a for a in added if a.split(":")[0] == key.split(":")[0]]
        hint = f" (renamed to {same_place[0]}?)" if len(removed) == 1 and len(same_place) == 1 else ""
        changes.append(Change(True, op, f"parameter removed: {key}{hint}"))
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
    from spec_tools import SpecError, load_source

    if len(argv) != 2:
        print("usage: spec_diff.py OLD NEW", file=sys.stderr)
        return 2
    try:
        changes = diff(load_source(argv[0]), load_source(argv[1]))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for change in changes:
        print(change)
    if not changes:
        print("no semantic changes")
    return 1 if any(c.breaking for c in changes) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
