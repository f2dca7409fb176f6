"""`make update-spec SPEC=...`: validate, normalise, diff, gate, regenerate."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import spec_diff
import spec_tools


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0]:
        print("usage: make update-spec SPEC=path/to/openapi.(json|yaml)", file=sys.stderr)
        return 2
    current_path = generate.ROOT / "openapi.json"
    try:
        new = spec_tools.load_document(Path(argv[0]))
        spec_tools.validate(new)
    except Exception as exc:  # any parse/validation failure is the user's input, reported plainly
        print(f"error: {argv[0]} is not a valid OpenAPI document: {exc}", file=sys.stderr)
        return 1
    current = spec_tools.load_document(current_path)
    changes = spec_diff.diff(current, new)
    print(f"Changes from openapi.json to {argv[0]}:")
    for change in changes:
        print(f"  {change}")
    if not changes:
        print("  no semantic changes")
    breaking = [c for c in changes if c.breaking]
    if breaking and os.environ.get("ALLOW_BREAKING") != "1":
        print(
            f"error: {len(breaking)} breaking change(s); openapi.json left as it was. "
            "Re-run with ALLOW_BREAKING=1 to accept them.",
            file=sys.stderr,
        )
        return 1
    current_path.write_text(spec_tools.dumps_normalised(new), encoding="utf-8")
    return generate.main(["generate"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
