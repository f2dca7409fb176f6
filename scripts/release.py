"""Package version and changelog: the semver bump a spec diff calls for, and its CHANGELOG.md entry.

The version lives in one place, wrapper/verbex_client/_version.py (hatch reads it for
the wheel; the wrapper imports it for its user agent and `--version`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spec_diff import Change

VERSION_FILE = Path("wrapper") / "verbex_client" / "_version.py"
CHANGELOG = Path("CHANGELOG.md")
_VERSION = re.compile(r'^__version__ = "(\d+)\.(\d+)\.(\d+)"$', re.MULTILINE)
_TITLE = "# Changelog"


def read_version(root: Path) -> str:
    match = _VERSION.search((root / VERSION_FILE).read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f'{VERSION_FILE}: no `__version__ = "X.Y.Z"` line')
    return ".".join(match.groups())


def bumped(version: str, level: str) -> str:
    """version raised by semver level: major (breaking), minor (additive) or patch (docs)."""
    major, minor, patch = (int(p) for p in version.split("."))
    if level == "major":
        return f"{major + 1}.0.0"
    if level == "minor":
        return f"{major}.{minor + 1}.0"
    if level == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValueError(f"unknown bump level {level!r}")


def version_file_text(root: Path, version: str) -> str:
    text = (root / VERSION_FILE).read_text(encoding="utf-8")
    return _VERSION.sub(f'__version__ = "{version}"', text, count=1)


_LEVEL_WORDS = {
    "major": "major release: breaking changes for existing callers",
    "minor": "minor release: additions, nothing existing breaks",
    "patch": "patch release: documentation only",
}


def entry(
    version: str, level: str, changes: list[Change], old: dict[str, Any], new: dict[str, Any], today: str = ""
) -> str:
    """The CHANGELOG.md entry of a spec update (its first line, minus `## `, is a commit subject)."""
    today = today or datetime.now(UTC).date().isoformat()
    title = new.get("info", {}).get("title", "API")
    old_api, new_api = old.get("info", {}).get("version", "?"), new.get("info", {}).get("version", "?")
    lines = [
        f"## {version} ({today}): {title} {new_api}",
        "",
        f"Spec update from API {old_api} to {new_api}; {_LEVEL_WORDS[level]}.",
    ]
    sections = (
        ("Breaking", [c for c in changes if c.breaking]),
        ("Added or changed (compatible)", [c for c in changes if not c.breaking and not c.docs]),
        ("Documentation", [c for c in changes if c.docs]),
    )
    for heading, items in sections:
        if items:
            lines += ["", f"{heading}:", *(f"- {c.where}: {c.what}" for c in items)]
    return "\n".join(lines) + "\n"


def commit_message(changelog_entry: str) -> str:
    """The entry as a commit message: the heading without its `## ` is the subject."""
    return changelog_entry.removeprefix("## ")


def latest_entry(changelog_text: str) -> str:
    """The newest entry of a changelog (from its first `## ` heading to the next)."""
    parts = re.split(r"^(?=## )", changelog_text, flags=re.MULTILINE)
    entries = [p for p in parts if p.startswith("## ")]
    return entries[0].rstrip("\n") + "\n" if entries else ""


def with_entry(changelog_text: str, new_entry: str) -> str:
    """The changelog with new_entry first (the file is created with a title if it is new)."""
    if not changelog_text.strip():
        changelog_text = f"{_TITLE}\n\n"
    head, sep, rest = changelog_text.partition("\n## ")
    if not sep:
        return changelog_text.rstrip("\n") + "\n\n" + new_entry
    return head.rstrip("\n") + "\n\n" + new_entry + "\n## " + rest
