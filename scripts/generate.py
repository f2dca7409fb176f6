"""Regenerate generated/verbex_api from openapi.json, or check that it is current.

`generate` builds into a temporary folder and swaps it in whole, so files the
generator no longer writes cannot linger. `check` builds into a temporary
folder and compares, so a hand edit or an unregenerated spec change fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "verbex_api"
TARGET = ROOT / "generated" / PACKAGE


class GeneratorError(Exception):
    """openapi-python-client refused the spec or warned about it (first line of its complaint)."""


def build_into(out_dir: Path, spec: Path = ROOT / "openapi.json") -> Path:
    """Run the pinned generator on spec into out_dir and return the package folder."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    package_dir = out_dir / PACKAGE
    cmd = [
        str(bin_dir / "openapi-python-client"),
        "generate",
        "--path",
        str(spec),
        "--config",
        str(ROOT / "generator-config.yaml"),
        "--meta",
        "none",
        "--output-path",
        str(package_dir),
        "--fail-on-warning",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out_dir)
    if result.returncode != 0:
        raise GeneratorError(_complaint(result.stdout + result.stderr) or f"exit {result.returncode}")
    # --meta none writes no marker; the package is fully annotated, so ship one.
    (package_dir / "py.typed").write_text("")
    return package_dir


def _complaint(output: str) -> str:
    """The generator's report squeezed to one line: its "Unable to ..." findings, not the
    banner, the dump of the offending schema or the link to its issue tracker."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    findings = [line for line in lines if line.startswith(("Unable to", "Error", "error"))]
    text = "; ".join(findings or lines[-1:])
    return text if len(text) <= 400 else text[:397] + "..."


def _files(tree: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _differences(expected: Path, actual: Path) -> list[str]:
    """Human-readable list of what differs between two package trees."""
    want, have = _files(expected), _files(actual)
    out = [f"missing from generated/: {n}" for n in sorted(want.keys() - have.keys())]
    out += [f"only in generated/: {n}" for n in sorted(have.keys() - want.keys())]
    out += [f"differs: {n}" for n in sorted(want.keys() & have.keys()) if want[n] != have[n]]
    return out


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else ""
    if mode not in ("generate", "check"):
        print("usage: generate.py generate|check", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="verbex-gen-") as tmp:
        try:
            fresh = build_into(Path(tmp))
        except GeneratorError as exc:
            print(f"error: openapi-python-client rejected openapi.json: {exc}", file=sys.stderr)
            return 1
        if mode == "generate":
            if TARGET.exists():
                shutil.rmtree(TARGET)
            shutil.copytree(fresh, TARGET)
            print(f"wrote {TARGET.relative_to(ROOT)}/ from openapi.json")
            return 0
        if not TARGET.exists():
            print("generated/verbex_api is missing: run `make generate`", file=sys.stderr)
            return 1
        diffs = _differences(fresh, TARGET)
    if diffs:
        print("generated/ is out of date with openapi.json + generator-config.yaml:", file=sys.stderr)
        for line in diffs:
            print(f"  {line}", file=sys.stderr)
        print("Never edit generated/ by hand; run `make generate` and commit the result.", file=sys.stderr)
        return 1
    print("generated/ matches openapi.json + generator-config.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
