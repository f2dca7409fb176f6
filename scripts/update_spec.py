"""`make update-spec SPEC=...`: validate, normalise, diff, gate, regenerate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import spec_diff
import spec_tools


def optic_verdict(current: Path, new_document: object) -> tuple[bool, str]:
    """Optic's opinion (a maintained breaking-change checker): (breaking, its report)."""
    optic = os.environ.get("VERBEX_OPTIC") or str(generate.ROOT / "node_modules" / ".bin" / "optic")
    if not Path(optic).exists() and shutil.which(optic) is None:
        raise SystemExit(
            f"error: Optic not found at {optic}: run `make node-tools` (needs Node.js 20+ and npm)"
        )
    with tempfile.TemporaryDirectory(prefix="verbex-spec-") as tmp:
        new_path = Path(tmp) / "new.json"
        new_path.write_text(spec_tools.dumps_normalised(new_document), encoding="utf-8")
        env = {**os.environ, "OPTIC_TELEMETRY_LEVEL": "off", "NO_UPDATE_NOTIFIER": "1"}
        result = subprocess.run(
            [optic, "diff", str(current), str(new_path), "--check"],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            cwd=tmp,
        )
    if result.returncode not in (0, 1):
        raise SystemExit(f"error: optic failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.returncode == 1, result.stdout.strip()


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
    optic_breaking, optic_report = optic_verdict(current_path, new)
    print("Optic (second opinion):")
    print("\n".join(f"  {line}" for line in optic_report.splitlines() if "--web flag" not in line))
    breaking = [c for c in changes if c.breaking]
    if (breaking or optic_breaking) and os.environ.get("ALLOW_BREAKING") != "1":
        count = len(breaking) or "Optic-reported"
        print(
            f"error: {count} breaking change(s); openapi.json left as it was. "
            "Re-run with ALLOW_BREAKING=1 to accept them.",
            file=sys.stderr,
        )
        return 1
    current_path.write_text(spec_tools.dumps_normalised(new), encoding="utf-8")
    return generate.main(["generate"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
