"""Where a downloaded recording may land: server file names reduced to safe, portable base names.

A name from the API is untrusted. It becomes one path component that cannot
escape `dest`, is creatable on Linux, macOS and Windows (no Windows device
names such as `CON` or `com1.wav`, no trailing dots or spaces, no reserved
characters), and never looks like our own files (`<name>.part`, the
manifest). I/O-free except for asking whether `dest` is a directory and
whether a name is a symlink; shared by sync and async.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePath

MAX_NAME_BYTES = 200  # well under common 255-byte limits, leaving room for ".part" and a call id
MANIFEST_NAME = "manifest.jsonl"
PART_SUFFIX = ".part"
_UNSAFE = re.compile(r'[<>:"|?*\\/]')
# Windows opens a device for these names, whatever the extension or case ("nul.ogg", "COM1.wav").
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{kind}{n}" for kind in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)


def _is_device_name(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES


def is_reserved(name: str) -> bool:
    """Names our own files use: a partial download's `.part`, and the batch manifest."""
    folded = name_key(name)
    return folded.endswith(PART_SUFFIX) or folded == MANIFEST_NAME


def name_key(name: str) -> str:
    """Two names with one key are one file on macOS and Windows (case, Unicode normalisation)."""
    return unicodedata.normalize("NFC", name).casefold()


def _shorten(name: str) -> str:
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:-1] + dot + ext) if dot and len(ext) <= 10 and stem else name[:-1]
    return name


def _reduce(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # keep only the last path component
    name = unicodedata.normalize("NFC", name)
    if not name.isprintable():  # printable means no category C: skip the per-character scan
        name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control, format, surrogate
    name = _UNSAFE.sub("_", name).strip().lstrip(".").rstrip(". ")  # Windows drops trailing dots/spaces
    name = _shorten(name).rstrip(". ")
    if name and _is_device_name(name):
        name = "_" + name
    return name


def with_tag(name: str, tag: str) -> str:
    """`<stem>.<tag><suffix>`: the collision rename (still a safe name, never a reserved one)."""
    stem, suffix = PurePath(name).stem, PurePath(name).suffix
    if suffix.casefold() == PART_SUFFIX:  # "take.ogg.part" -> "take.ogg.part.<tag>"
        stem, suffix = name, ""
    tagged = _reduce(f"{stem}.{tag}{suffix}".replace("/", "_").replace("\\", "_"))
    return tagged if not is_reserved(tagged) else _reduce(f"{tagged}.{tag}")


def safe_file_name(file_name: object, call_id: str) -> str:
    """A base name that cannot escape a directory and is valid on every platform.

    Falls back to `<call_id>.bin` (itself reduced the same way) when nothing usable remains;
    a name ending in `.part` or equal to the manifest's gets the call id as a tag.
    """
    name = _reduce(file_name) if isinstance(file_name, str) else ""
    if name in ("", ".", ".."):
        name = _reduce(f"{call_id}.bin".replace("/", "_").replace("\\", "_"))
    if name in ("", ".bin"):
        name = "recording.bin"
    return with_tag(name, call_id) if is_reserved(name) else name


def resolve_target(
    dest: str | os.PathLike[str], file_name: str | None, call_id: str, *, dest_is_dir: bool | None = None
) -> Path:
    """The file a download writes: inside `dest` when it is a directory, else `dest` itself.

    `dest_is_dir` saves asking the file system again when the caller already did.
    """
    path = Path(dest)
    if dest_is_dir is None:
        dest_is_dir = path.is_dir()
    if not dest_is_dir:
        return path
    target = path / safe_file_name(file_name, call_id)
    # Belt and braces: the name has no separators, but prove it stays inside, including
    # through an existing symbolic link of that name (resolved only then: one lstat, not a
    # walk of every path component per download).
    if target.parent != path or (target.is_symlink() and target.resolve().parent != path.resolve()):
        raise ValueError(f"refusing to write outside {path}")
    return target
