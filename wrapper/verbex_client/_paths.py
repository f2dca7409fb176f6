"""Where a downloaded recording may land: server file names reduced to safe base names.

I/O-free except for asking whether `dest` is a directory and whether a name is a symlink;
shared by sync and async.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200  # well under common 255-byte limits, leaving room for ".part"
_UNSAFE = re.compile(r'[<>:"|?*\\/]')


def _reduce(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # keep only the last path component
    if not name.isprintable():  # printable means no category C: skip the per-character scan
        name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control, format, surrogate
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:-1] + dot + ext) if dot and len(ext) <= 10 and stem else name[:-1]
    return name


def safe_file_name(file_name: object, call_id: str) -> str:
    """A base name that cannot escape a directory: no separators, `..`, control chars or leading dot.

    Falls back to `<call_id>.bin` (itself reduced the same way) when nothing usable remains.
    """
    name = _reduce(file_name) if isinstance(file_name, str) else ""
    if name in ("", ".", ".."):
        name = _reduce(f"{call_id}.bin".replace("/", "_").replace("\\", "_"))
    return name if name not in ("", ".bin") else "recording.bin"


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


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")
