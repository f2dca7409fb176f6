"""File names from the API are made portable: valid on Linux, macOS and Windows, unique in a batch."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from verbex_client._batch import Manifest
from verbex_client._paths import MANIFEST_NAME, MAX_NAME_BYTES, name_key, safe_file_name
from verbex_client.testing import Sandbox

WINDOWS_DEVICES = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{n}" for n in range(1, 10)),
    *(f"LPT{n}" for n in range(1, 10)),
}
HARD_NAMES = [
    "CON",
    "nul.ogg",
    "COM1.wav",
    "lpt9.tar.gz",
    "Aux",
    "con .ogg",
    "take.ogg.",
    "take.ogg ",
    "take.ogg. . ",
    "take.ogg.part",
    "TAKE.OGG.PART",
    "manifest.jsonl",
    "Manifest.JSONL",
    "..",
    "...",
    "a/../../etc/passwd",
    "C:\\Windows\\system32\\x.dll",
    'a<b>c:"d"|e?f*g.ogg',
    "e\u0301.ogg",  # e + combining acute: NFD
    "\u00e9.ogg",  # é: NFC
    "\x00\x1f.ogg",
    "\u202eggo.exe",  # right-to-left override
    "x" * 300 + ".ogg",
    "ü" * 150 + ".wav",
    "",
]


def assert_portable(name: str) -> None:
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and not any(c in name for c in '<>:"|?*')
    assert all(unicodedata.category(c)[0] != "C" for c in name)  # no control or format characters
    assert not name.endswith((".", " ")), "Windows drops trailing dots and spaces"
    assert name.split(".", 1)[0].rstrip(" ").upper() not in WINDOWS_DEVICES
    assert not name_key(name).endswith(".part") and name_key(name) != MANIFEST_NAME
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES + 64  # room for a collision tag, under 255
    assert unicodedata.normalize("NFC", name) == name


@pytest.mark.parametrize("raw", HARD_NAMES)
def test_hard_names_become_portable_names(raw: str) -> None:
    assert_portable(safe_file_name(raw, "call-1"))


def test_windows_device_names_are_prefixed_and_reserved_names_tagged() -> None:
    assert safe_file_name("CON", "c") == "_CON"
    assert safe_file_name("nul.ogg", "c") == "_nul.ogg"
    assert safe_file_name("COM1.wav", "c") == "_COM1.wav"
    assert safe_file_name("take.ogg...", "c") == "take.ogg"
    assert safe_file_name("take.ogg.part", "call_9") == "take.ogg.part.call_9"
    assert safe_file_name("manifest.jsonl", "call_9") == "manifest.call_9.jsonl"
    assert safe_file_name("COMPUTER.ogg", "c") == "COMPUTER.ogg"  # only the devices themselves


@seed(20261201)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=12))
@example(names=["Rec.ogg", "rec.ogg", "REC.OGG"])
@example(names=["e\u0301.ogg", "\u00e9.ogg", "\u00c9.ogg"])
@example(names=["take.ogg", "take.ogg.part", "manifest.jsonl", "MANIFEST.jsonl"])
@example(names=["CON", "con", "Con.ogg", "con.ogg"])
@example(names=["a.", "a", "a ", "a. "])
def test_a_batch_gets_unique_portable_names_that_can_be_created(names: list[str]) -> None:
    """Unique under case-folding and NFC (one file on macOS and Windows), creatable on Linux."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Manifest(Path(tmp), fsync=False)
        chosen = [
            manifest.claim(f"call-{i}", safe_file_name(raw, f"call-{i}")) for i, raw in enumerate(names)
        ]
        for name in chosen:
            assert_portable(name)
            with open(os.path.join(tmp, name), "xb"):  # exclusive create: a clash would fail here
                pass
        assert len({name_key(n) for n in chosen}) == len(chosen)


def test_a_file_in_dest_differing_only_by_case_gets_the_collision_rename(tmp_path: Path) -> None:
    (tmp_path / "Rec.ogg").write_bytes(b"someone else's")
    assert Manifest(tmp_path, fsync=False).claim("call-1", "rec.ogg") == "rec.call-1.ogg"
    # The very same name is not a collision: the usual rule applies (FileExistsError, or overwrite).
    assert Manifest(tmp_path, fsync=False).claim("call-2", "Rec.ogg") == "Rec.ogg"


def test_names_differing_by_case_in_one_batch_download_to_separate_files(
    verbex_sandbox: Sandbox, tmp_path: Path
) -> None:
    verbex_sandbox.add_recording("c1", b"first", file_name="Rec.ogg")
    verbex_sandbox.add_recording("c2", b"second", file_name="rec.ogg")
    verbex_sandbox.add_recording("c3", b"third", file_name="CON")
    with verbex_sandbox.client() as client:
        # One at a time: the first to claim a name keeps it, so which call that is must be fixed.
        result = client.recordings.download_many(["c1", "c2", "c3"], tmp_path, concurrency=1)
    assert result.ok
    paths = {i.call_id: i.path for i in result.results}
    assert paths["c1"] == tmp_path / "Rec.ogg" and paths["c1"].read_bytes() == b"first"
    assert paths["c2"] == tmp_path / "rec.c2.ogg" and paths["c2"].read_bytes() == b"second"
    assert paths["c3"] == tmp_path / "_CON" and paths["c3"].read_bytes() == b"third"
