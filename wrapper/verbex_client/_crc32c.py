"""crc32c through google-crc32c's C library, without copying and without holding the GIL.

google-crc32c's `extend()` takes only `bytes`, so a received buffer would be
copied first, and it hashes holding the GIL: with many downloads at once that
was an eighth of all GIL-held time. The same wheel ships the C library
itself (`crc32c_extend` of google/crc32c's C API); called through ctypes it
reads our buffer in place and lets other threads run meanwhile. Where the
library cannot be found (or answers wrongly), `extend()` is used as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

Buffer = bytes | bytearray | memoryview
Extend = Callable[[Buffer, int], int]
_CHECK = (b"123456789", 0xE3069283)  # the standard crc32c check value


def crc32c_extender() -> Extend | None:
    """`f(data, crc) -> crc` for any buffer, or None without google-crc32c's C extension
    (its pure-Python fallback is far too slow to use: md5 verifies instead)."""
    try:
        import google_crc32c
    except ImportError:
        return None
    if google_crc32c.implementation != "c":
        return None
    native = _native_extend()
    extend = google_crc32c.extend

    def copying(data: Buffer, crc: int) -> int:
        return int(extend(crc, data if isinstance(data, bytes) else bytes(data)))

    return native or copying


@functools.cache
def _native_extend() -> Extend | None:
    import ctypes

    import google_crc32c

    for path in _library_candidates(Path(google_crc32c.__file__).parent):
        try:
            function: Any = ctypes.CDLL(str(path)).crc32c_extend  # CDLL: the GIL is released per call
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        function.restype = ctypes.c_uint32
        extend = _in_place(function)
        if extend(_CHECK[0], 0) == _CHECK[1] and extend(bytearray(_CHECK[0]), 0) == _CHECK[1]:
            return extend
    return None


def _library_candidates(package: Path) -> list[Path]:
    """Where wheels put the library: auditwheel (Linux), delocate (macOS), delvewheel (Windows)."""
    places = [
        (package.parent / "google_crc32c.libs", "*crc32c*"),
        (package / ".dylibs", "*crc32c*"),
        (package / "extra-dll", "*crc32c*"),
    ]
    return [path for folder, pattern in places if folder.is_dir() for path in sorted(folder.glob(pattern))]


def _in_place(function: Any) -> Extend:
    """Pass a writable buffer's address (our receive buffers); copy only read-only or strided ones."""
    import ctypes

    first_byte, address_of = ctypes.c_char.from_buffer, ctypes.addressof

    def extend(data: Buffer, crc: int) -> int:
        if isinstance(data, bytes):
            return int(function(crc, data, len(data))) if data else crc
        view = data if isinstance(data, memoryview) else memoryview(data)
        size = view.nbytes
        if not size:
            return crc
        if view.readonly or not view.c_contiguous:
            return int(function(crc, view.tobytes(), size))
        anchor = first_byte(view)  # holds the buffer for the call
        return int(function(crc, address_of(anchor), size))

    return extend


# Resolved when the download code is imported (once, under the import lock), not
# by the first downloads of a batch all at once, each loading ctypes (~6 ms). Through
# crc32c_extender: without google-crc32c (or its C extension) there is nothing to load.
crc32c_extender()
