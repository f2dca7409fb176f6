"""`<target>.part`: one writer at a time, positional writes, checked before the atomic rename.

A download writes into `<target>.part` while holding an OS lock on it (flock
on POSIX, a byte-range lock on Windows), so two threads or processes
downloading the same recording never write one file together: the second
waits, then finds the finished target (or resumes what the first left). The
file appears under its real name only by an atomic rename, after its size on
disk was checked, so a target is complete and verified or absent.

Every platform call has a fallback: `fdatasync` -> `fsync`, `pwrite`/`pread` ->
seek + write/read, `O_NOFOLLOW` and early writeback (`posix_fadvise`) only
where they exist.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
from collections.abc import Iterator
from pathlib import Path

from ._exceptions import DestinationError, IntegrityError

# Bytes per write(). Large writes into the page cache were bimodal on the benchmark's kernel
# (Linux 6.18: 1 MiB took 0.22-1.57 s per GiB); 64 KiB won every HTTPS A/B of this size in
# benchmarks/RESULTS.md's session (1.2-1.6x over 256 KiB), for a few more system calls.
WRITE_SLICE = 64 << 10
READ_SIZE = 1 << 20
# With fsync on, writeback starts every this many bytes, while the rest still arrives: the
# fdatasync before the rename then waits for the last few MiB, not the whole file (1.3x for
# 64 MiB and 1 GiB over HTTPS, benchmarks/RESULTS.md). Smaller files are flushed at the end.
EARLY_WRITEBACK = 4 << 20
LOCK_POLL_SECONDS = 0.05  # how often a waiting download tries the lock again

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def destination_error(error: OSError, path: Path, call_id: str | None) -> DestinationError:
    """Our exception for a local file failure (disk full, permission denied, read-only)."""
    reason = os.strerror(error.errno) if error.errno else type(error).__name__
    return DestinationError(
        f"cannot write the recording to {path}: {reason}", path=str(path), errno=error.errno, call_id=call_id
    )


class TargetExists(FileExistsError):
    """FileExistsError with `errno`, `filename` and a message naming the path, as printed."""

    def __init__(self, path: Path, detail: str = "pass overwrite=True to replace it") -> None:
        super().__init__(errno_codes.EEXIST, f"{path} exists ({detail})", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


def _open_flags() -> int:
    # Read at call time, not import time: tests remove platform calls to prove the fallbacks.
    return os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _try_lock(fd: int) -> bool:
    """An exclusive lock on the open file, without waiting; True when we hold it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif msvcrt is not None:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # byte 0: the lock's owner may still write it
    except (BlockingIOError, PermissionError):
        return False
    except OSError as error:
        if error.errno in (errno_codes.EAGAIN, errno_codes.EACCES, errno_codes.EDEADLK):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (a finished writer renames it away)."""
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def sync_data(fd: int) -> None:
    """The data and the size that reads it back (fdatasync: no timestamps); fsync where there is
    no fdatasync (macOS, Windows). The name is made durable by the directory's fsync."""
    sync = getattr(os, "fdatasync", None) or os.fsync
    sync(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (POSIX; Windows has no directory descriptors)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class PartFile:
    """The partial file of one download; `open()` / `try_open()` before anything else."""

    def __init__(self, target: Path, *, fsync: bool = True, call_id: str | None = None) -> None:
        self.target, self.path = target, part_path(target)
        self.fsync = fsync
        self.call_id = call_id
        self.fd: int | None = None
        self.size = 0  # bytes in the file
        self._unflushed_from: int | None = None  # where bytes not yet sent to the disk start

    def try_open(self) -> bool:
        """Open and lock the `.part` (creating it); False while another writer holds it.

        A `.part` that is a symbolic link is refused (O_NOFOLLOW where it exists): it could
        point anywhere. When the lock is won on a file that a finished writer has meanwhile
        renamed into place, the lock is let go and the caller simply tries again.
        """
        try:
            fd = os.open(self.path, _open_flags(), 0o644)
        except OSError as error:
            if error.errno == errno_codes.ELOOP:
                raise DestinationError(
                    f"refusing to write through the symbolic link {self.path}",
                    path=str(self.path),
                    errno=error.errno,
                    call_id=self.call_id,
                ) from None
            raise destination_error(error, self.path, self.call_id) from None
        if not _try_lock(fd):
            os.close(fd)
            return False
        if not _same_file(fd, self.path):
            os.close(fd)  # renamed into place by the writer we waited for: look again
            return False
        self.fd = fd
        self.size = os.fstat(fd).st_size
        return True

    def existing(self) -> Iterator[bytes]:
        """The bytes already in the file (a resumed download hashes them from disk)."""
        offset = 0
        while offset < self.size:
            block = self._read_at(min(READ_SIZE, self.size - offset), offset)
            if not block:
                break
            offset += len(block)
            yield block

    def _read_at(self, size: int, offset: int) -> bytes:
        assert self.fd is not None
        pread = getattr(os, "pread", None)
        if pread is not None:
            return bytes(pread(self.fd, size, offset))
        os.lseek(self.fd, offset, os.SEEK_SET)
        return os.read(self.fd, size)

    def write_at(self, offset: int, data: bytes | memoryview) -> None:
        """Write `data` at `offset` (where storage says those bytes go), in slices."""
        assert self.fd is not None
        view, start = memoryview(data), offset
        pwrite = getattr(os, "pwrite", None)
        try:
            if pwrite is None:
                os.lseek(self.fd, offset, os.SEEK_SET)
            while view:
                piece = view[:WRITE_SLICE]
                written = pwrite(self.fd, piece, offset) if pwrite is not None else os.write(self.fd, piece)
                view = view[written:]
                offset += written
                self.size = max(self.size, offset)
        except OSError as error:
            raise destination_error(error, self.path, self.call_id) from None
        if self.fsync:
            self._start_writeback(self.fd, start, offset)

    def _start_writeback(self, fd: int, start: int, end: int) -> None:
        """Once EARLY_WRITEBACK bytes are waiting, ask the kernel to start writing them out.

        The fdatasync before the rename would wait for them anyway; started now, the disk
        writes overlap the rest of the transfer. Linux starts writeback of a range's dirty
        pages on POSIX_FADV_DONTNEED (and drops only pages already clean); where there is
        no posix_fadvise (macOS, Windows) or it fails, the fdatasync does all of it.
        """
        first = start if self._unflushed_from is None else min(self._unflushed_from, start)
        if end - first < EARLY_WRITEBACK:
            self._unflushed_from = first
            return
        self._unflushed_from = end
        fadvise = getattr(os, "posix_fadvise", None)  # read per call: tests remove it
        if fadvise is not None:
            with contextlib.suppress(OSError):
                fadvise(fd, first, end - first, os.POSIX_FADV_DONTNEED)

    def truncate(self, size: int = 0) -> None:
        """Storage restarted the object from `size` (a 200 to a Range request): drop the rest."""
        assert self.fd is not None
        os.ftruncate(self.fd, size)
        self.size = size
        self._unflushed_from = None

    def finish(self, expected_size: int, overwrite: bool) -> None:
        """Check the file on disk, flush it, give it its real name atomically."""
        assert self.fd is not None
        on_disk = os.fstat(self.fd).st_size
        if on_disk != expected_size:
            raise IntegrityError(
                f"{self.path} holds {on_disk} bytes, expected {expected_size}", call_id=self.call_id
            )
        try:
            if self.fsync:
                sync_data(self.fd)
            if os.name == "nt":  # Windows renames no open file: let go of it first
                self.close()
            self._rename(overwrite)
        except OSError as error:
            if isinstance(error, FileExistsError):
                raise
            raise destination_error(error, self.target, self.call_id) from None
        finally:
            self.close()  # POSIX: after the rename, so no other writer ever locks a complete .part
        if self.fsync:
            fsync_dir(self.target.parent)

    def _rename(self, overwrite: bool) -> None:
        if overwrite:
            os.replace(self.path, self.target)
            return
        try:
            os.link(self.path, self.target)  # atomic, and refuses to clobber
        except FileExistsError:
            raise TargetExists(self.target, "it appeared during the download; pass overwrite=True") from None
        except OSError:  # file systems without hard links
            if self.target.exists():
                raise TargetExists(self.target) from None
            os.replace(self.path, self.target)
        else:
            os.unlink(self.path)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # also lets go of the lock

    def abandon(self, *, keep: bool) -> None:
        """After a failure: keep a `.part` worth resuming, else remove it (still holding the lock,
        so no other writer's file is removed)."""
        if self.fd is not None and (not keep or self.size == 0):
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.close()
