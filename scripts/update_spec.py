"""`make update-spec SPEC=path-or-URL`: one transaction from a new spec to a new release.

Validate, diff (ours and Optic's), refuse breaking changes unless ALLOW_BREAKING=1,
generate into a staging folder, type-check the wrapper (mypy --strict) against the
staged package (and, for an accepted breaking change, run the wrapper's API tests
against it), and only then replace openapi.json and generated/ together, bump
the version by semver and write the CHANGELOG.md entry. Any failure before the swap
leaves every file as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import release
import spec_diff
import spec_tools

OPTIC_STANDARD = Path(__file__).resolve().parent / "optic-standard.yml"
MAX_LISTED_TYPE_ERRORS = 20


class UpdateError(Exception):
    """The update cannot go ahead; the message is one line (details may follow on stderr)."""


@dataclass
class Outcome:
    """What an update did: status is 'updated', 'unchanged', 'refused' or 'failed'."""

    status: str
    changes: list[spec_diff.Change] = field(default_factory=list)
    version: str = ""
    entry: str = ""
    document: dict[str, Any] = field(default_factory=dict)


def optic_verdict(current: Path, new_text: str) -> tuple[bool, str]:
    """Optic's opinion: (breaking, its report).

    Optic skips every check when info.version changes major unless its standard says
    otherwise: ours (optic-standard.yml) does, so a breaking release is still checked.
    """
    optic = os.environ.get("VERBEX_OPTIC") or str(generate.ROOT / "node_modules" / ".bin" / "optic")
    if not Path(optic).exists() and shutil.which(optic) is None:
        raise UpdateError(f"Optic not found at {optic}: run `make node-tools` (needs Node.js 20+ and npm)")
    with tempfile.TemporaryDirectory(prefix="verbex-spec-") as tmp:
        new_path = Path(tmp) / "new.json"
        new_path.write_text(new_text, encoding="utf-8")
        env = {**os.environ, "OPTIC_TELEMETRY_LEVEL": "off", "NO_UPDATE_NOTIFIER": "1"}
        result = subprocess.run(
            [optic, "diff", str(current), str(new_path), "--check", "--standard", str(OPTIC_STANDARD)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            cwd=tmp,
        )
    if result.returncode not in (0, 1):
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise UpdateError(f"optic failed (exit {result.returncode}): {detail[-1] if detail else 'no output'}")
    return result.returncode == 1, result.stdout.strip()


def _scratch_interpreter(tmp: Path) -> Path:
    """A bare venv that sees this venv's libraries but not its editable install of generated/.

    mypy looks a module up on the interpreter's sys.path when MYPYPATH lacks it, so
    with our own venv a module the new spec no longer generates would silently come
    from the old generated/ (added to sys.path by the editable install's .pth file).
    Site directories listed in a .pth file do not get their own .pth files processed.
    """
    venv = tmp / "typecheck-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "verbex-deps.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    return python


def type_errors(root: Path, generated_root: Path, tmp: Path) -> list[str]:
    """mypy --strict over the wrapper against the package in generated_root: its error lines."""
    mypy = Path(sys.executable).parent / ("mypy.exe" if os.name == "nt" else "mypy")
    python = _scratch_interpreter(tmp)
    result = subprocess.run(
        [str(mypy), "--python-executable", str(python), "--cache-dir", str(tmp / "mypy-cache")],
        cwd=root,  # pyproject.toml's [tool.mypy]: strict, files = wrapper/verbex_client
        env={**os.environ, "MYPYPATH": str(generated_root)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode == 0:
        return []
    lines = [line for line in result.stdout.splitlines() if ": error:" in line]
    return lines or [(result.stdout + result.stderr).strip().splitlines()[-1]]


# With ALLOW_BREAKING=1, these run against the staged package before anything is swapped
# in: the wrapper's signed-URL tests, each a real request to the sandbox (a few seconds).
BREAKING_RELEASE_TESTS = ("tests/test_signed_url.py",)


def test_failures(root: Path, generated_root: Path) -> list[str]:
    """The wrapper's own tests against the staged package: the ids of those that fail."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(generated_root), str(root / "wrapper")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:cacheprovider", *BREAKING_RELEASE_TESTS],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode == 0:
        return []
    failed = [
        line.split(" ", 1)[1].split(" - ", 1)[0]
        for line in done.stdout.splitlines()
        if line.startswith("FAILED ")
    ]
    return failed or [done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "pytest failed"]


def _swap_in(root: Path, staged_package: Path, texts: dict[Path, str], tmp: Path) -> None:
    """Replace generated/verbex_api and the given files; put everything back if a step fails."""
    target = root / "generated" / generate.PACKAGE
    backup = tmp / "previous-package"
    staged_files = {}
    for rel, text in texts.items():
        staged = tmp / f"staged-{rel.name}"
        staged.write_text(text, encoding="utf-8")
        staged_files[rel] = staged
    originals = {rel: (root / rel).read_bytes() if (root / rel).exists() else None for rel in texts}
    moved_old = False
    try:
        if target.exists():
            os.replace(target, backup)
            moved_old = True
        os.replace(staged_package, target)
        for rel, staged in staged_files.items():
            os.replace(staged, root / rel)
    except BaseException:
        if target.exists() and moved_old:
            shutil.rmtree(target)
        if moved_old:
            os.replace(backup, target)
        for rel, data in originals.items():
            if data is None:
                (root / rel).unlink(missing_ok=True)
            else:
                (root / rel).write_bytes(data)
        raise


def run(
    source: str, *, root: Path = generate.ROOT, allow_breaking: bool = False, out: TextIO = sys.stdout
) -> Outcome:
    """The whole update; raises UpdateError (or spec_tools.SpecError) with nothing changed."""
    new = spec_tools.load_source(source)
    spec_tools.validate(new, source)
    current_path = root / "openapi.json"
    current = spec_tools.load_document(current_path)
    new_text = spec_tools.dumps_normalised(new)
    if new_text == current_path.read_text(encoding="utf-8"):
        print(f"openapi.json already is {source}: nothing to do", file=out)
        return Outcome("unchanged", document=new)

    changes = spec_diff.diff(current, new) or [spec_diff.Change(False, "spec", "formatting only", docs=True)]
    print(f"Changes from openapi.json to {source}:", file=out)
    for change in changes:
        print(f"  {change}", file=out)
    optic_breaking, optic_report = optic_verdict(current_path, new_text)
    print("Optic (second opinion):", file=out)
    print("\n".join(f"  {line}" for line in optic_report.splitlines() if "--web flag" not in line), file=out)
    if optic_breaking and not any(c.breaking for c in changes):
        changes.insert(
            0, spec_diff.Change(True, "Optic", "reported a breaking change (see its report above)")
        )
    breaking = [c for c in changes if c.breaking]
    if breaking and not allow_breaking:
        named = "; ".join(f"{c.where}: {c.what}" for c in breaking[:3]) + (
            "; ..." if len(breaking) > 3 else ""
        )
        print(
            f"error: {len(breaking)} breaking change(s) ({named}); "
            "openapi.json and generated/ left as they were. "
            "Re-run with ALLOW_BREAKING=1 to accept them as a major release.",
            file=sys.stderr,
        )
        return Outcome("refused", changes, document=new)

    level = spec_diff.bump_level(changes) or "patch"
    (root / ".build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="update-spec-", dir=root / ".build") as tmp_name:
        tmp = Path(tmp_name)
        staged_spec = tmp / "openapi.json"
        staged_spec.write_text(new_text, encoding="utf-8")
        try:
            (tmp / "generated").mkdir()
            package = generate.build_into(tmp / "generated", spec=staged_spec)
        except generate.GeneratorError as exc:
            raise UpdateError(f"openapi-python-client rejected {source}: {exc}") from None
        errors = type_errors(root, package.parent, tmp)
        if errors:
            for line in errors[:MAX_LISTED_TYPE_ERRORS]:
                print(f"  {line}", file=sys.stderr)
            if len(errors) > MAX_LISTED_TYPE_ERRORS:
                print(f"  ... and {len(errors) - MAX_LISTED_TYPE_ERRORS} more", file=sys.stderr)
            broke = "; ".join(f"{c.where}: {c.what}" for c in breaking[:3])
            cause = f" after the breaking change(s) {broke}" if breaking else ""
            raise UpdateError(
                f"the wrapper does not type-check against the new generated package{cause} "
                f"({len(errors)} mypy error(s), listed above; first: {errors[0]}); fix wrapper/ first"
            )
        if breaking:  # accepted with ALLOW_BREAKING=1: the tests must still pass
            failures = test_failures(root, package.parent)
            if failures:
                for test in failures[:MAX_LISTED_TYPE_ERRORS]:
                    print(f"  FAILED {test}", file=sys.stderr)
                broke = "; ".join(f"{c.where}: {c.what}" for c in breaking[:3])
                raise UpdateError(
                    f"{len(failures)} wrapper test(s) fail against the new generated package after the "
                    f"breaking change(s) {broke} (first: {failures[0]}); fix wrapper/ first"
                )
        old_version = release.read_version(root)
        version = release.bumped(old_version, level)
        entry = release.entry(version, level, changes, current, new)
        changelog_path = root / release.CHANGELOG
        changelog = changelog_path.read_text(encoding="utf-8") if changelog_path.exists() else ""
        _swap_in(
            root,
            package,
            {
                Path("openapi.json"): new_text,
                release.VERSION_FILE: release.version_file_text(root, version),
                release.CHANGELOG: release.with_entry(changelog, entry),
            },
            tmp,
        )
    print(
        f"Updated openapi.json and generated/; verbex-client {old_version} -> {version} ({level}); "
        "CHANGELOG.md entry written. Review `git diff`, run `make test`, commit.",
        file=out,
    )
    return Outcome("updated", changes, version, entry, new)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0]:
        print("usage: make update-spec SPEC=path/to/openapi.(json|yaml) or an http(s) URL", file=sys.stderr)
        return 2
    try:
        outcome = run(argv[0], allow_breaking=os.environ.get("ALLOW_BREAKING") == "1")
    except (spec_tools.SpecError, UpdateError) as exc:
        print(f"error: {exc}; nothing changed", file=sys.stderr)
        return 1
    return 0 if outcome.status in ("updated", "unchanged") else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
