"""One wheel holding verbex_api and verbex_client (typed), installable into a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel_path,) = out.glob("verbex_client-*.whl")
    return wheel_path


def test_wheel_holds_both_packages_with_py_typed_and_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "verbex_api/__init__.py" in names
    assert "verbex_api/py.typed" in names
    assert "verbex_client/__init__.py" in names
    assert "verbex_client/py.typed" in names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n or n.startswith("scripts/")]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [
        line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    names = sorted(r.split(":", 1)[1].strip().split(">")[0].split("<")[0] for r in requires)
    assert names == ["attrs", "google-crc32c", "httpx", "rich", "sniffio", "urllib3"]


def test_wheel_installs_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = subprocess.run(
        [str(python), "-c", "import verbex_api, verbex_client; print(verbex_client.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    from verbex_client import __version__

    assert result.stdout.strip() == __version__
