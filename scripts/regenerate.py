"""`make regenerate`: fetch the published spec, run the update-spec transaction, and on change
commit the result on a new branch (the changelog entry is the commit message) and push it.

For CI (.github/workflows/regenerate-client.yml) on a schedule and on demand. The branch is
named after the spec's API version and content hash, so a rerun for the same spec finds it
already pushed and does nothing. Exit status: 0 up to date or pushed, 1 refused or failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import release
import spec_tools
import update_spec

DEFAULT_SPEC_URL = "https://docs.verbex.ai/api-reference/openapi.json"
BRANCH_PREFIX = "regenerate/"
# Who commits when the job has no git identity of its own (.invalid: a reserved, unroutable domain).
BOT_NAME = "verbex-client regeneration"
BOT_EMAIL = "regenerate@verbex-client.invalid"
COMMITTED = ("openapi.json", "generated", str(release.CHANGELOG), str(release.VERSION_FILE))


class RegenerateError(Exception):
    pass


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise RegenerateError(f"git {' '.join(args)} failed: {detail[-1] if detail else result.returncode}")
    return result


def branch_name(document: dict[str, object]) -> str:
    info = document.get("info")
    api_version = str(info.get("version", "unknown")) if isinstance(info, dict) else "unknown"
    digest = hashlib.sha256(spec_tools.dumps_normalised(document).encode()).hexdigest()[:12]
    safe = "".join(ch if ch.isalnum() or ch in ".-_" else "-" for ch in api_version)
    return f"{BRANCH_PREFIX}api-{safe}-{digest}"


def _identity(root: Path) -> list[str]:
    has_email = git(root, "config", "user.email", check=False).stdout.strip()
    return [] if has_email else ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]


def regenerate(url: str, remote: str, root: Path, allow_breaking: bool) -> int:
    dirty = git(root, "status", "--porcelain", "--", *COMMITTED).stdout.strip()
    if dirty:
        raise RegenerateError(f"uncommitted changes in files regeneration writes:\n{dirty}")
    document = spec_tools.load_source(url)  # fetched once here for the branch name...
    branch = branch_name(document)
    if git(root, "ls-remote", "--heads", remote, branch).stdout.strip():
        print(f"{branch} is already on {remote}: nothing to do")
        return 0
    local_copy = root / ".build" / "regenerate-spec.json"
    local_copy.parent.mkdir(exist_ok=True)
    local_copy.write_text(spec_tools.dumps_normalised(document), encoding="utf-8")
    # ...and the transaction reads that same copy, so what is committed is what was named.
    outcome = update_spec.run(str(local_copy), root=root, allow_breaking=allow_breaking)
    if outcome.status == "unchanged":
        print(f"openapi.json already matches {url}: nothing to commit")
        return 0
    if outcome.status != "updated":
        return 1
    message = root / ".build" / "regenerate-commit-message.txt"
    message.write_text(release.commit_message(outcome.entry), encoding="utf-8")
    git(root, "switch", "-c", branch)
    git(root, "add", "--all", "--", *COMMITTED)
    git(root, *_identity(root), "commit", "--quiet", "--cleanup=verbatim", "-F", str(message))
    git(root, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
    print(f"pushed {branch} to {remote}: verbex-client {outcome.version}, ready for review")
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as out:
            out.write(f"branch={branch}\nversion={outcome.version}\n")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec-url", default=os.environ.get("SPEC_URL") or DEFAULT_SPEC_URL)
    parser.add_argument("--remote", default="origin", help="git remote (name or URL) to push the branch to")
    args = parser.parse_args(argv)
    try:
        return regenerate(
            args.spec_url, args.remote, generate.ROOT, allow_breaking=os.environ.get("ALLOW_BREAKING") == "1"
        )
    except (spec_tools.SpecError, update_spec.UpdateError, RegenerateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
