"""Files written and read without being fooled: no symlink followed on write, atomic replaces,
no device or FIFO written or read, bounded reads; every failure one FileRefused line (exit 2).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from bulkshare.errors import UsageError

__all__ = [
    "MAX_INPUT_BYTES",
    "FileRefused",
    "check_target",
    "create_new",
    "open_append",
    "open_regular",
    "read_regular",
    "refuse_links",
    "write_all",
    "write_atomic",
]

#: the most an input file (job, mapping CSV) may hold: far more than any real one
MAX_INPUT_BYTES = 10 * 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FileRefused(UsageError):
    """A file that cannot be read or written safely (exit 2); `reason` says why, without the path.

    A UsageError like the rest of the tree in bulkshare.errors, so every caller that turns
    usage errors into one line and exit 2 handles it already.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link; refusing to follow it"
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return exc.strerror or str(exc)


def check_target(path: Path) -> None:
    """FileRefused unless `path` is new, a regular file or a symlink (replaced, not followed).

    An existing device, FIFO, socket or directory is never replaced: `--out /dev/full` must
    leave the device node where it is.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileRefused(path, f"cannot write: {_why(exc)}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise FileRefused(path, "not a regular file; refusing to replace it")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` whole: a fresh temp file beside it (O_EXCL|O_NOFOLLOW), fsync, rename.

    The rename replaces a symlink planted at `path` instead of writing through it; a reader
    sees the old content or the new, never half of either.
    """
    check_target(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
    except OSError as exc:
        raise FileRefused(path, f"cannot write: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileRefused(path, f"cannot write: {_why(exc)}") from None


def create_new(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` unless an entry of that name (a symlink too) exists: False."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
    except FileExistsError:
        return False
    except OSError as exc:
        raise FileRefused(path, f"cannot create: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise FileRefused(path, f"cannot write: {_why(exc)}") from None
    return True


def open_append(path: Path) -> int:
    """A descriptor of `path` opened to append (created if new), refusing a symlink or a
    non-regular file. A raw descriptor: no buffer that could write later what failed now."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise FileRefused(path, f"cannot open: {_why(exc)}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileRefused(path, "not a regular file; refusing to write to it")
    os.set_blocking(fd, True)
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (a raw write may take only part of it); OSError as it comes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def open_regular(path: Path, *, follow: bool = True) -> BinaryIO:
    """A regular file opened for reading (blocking reads); FileRefused for anything else.

    Opened non-blocking first, so a FIFO answers at once (and is refused) instead of waiting for
    a writer; `follow=False` also refuses a symlink (for the run's own files).
    """
    flags = os.O_RDONLY | _NONBLOCK | _CLOEXEC | (0 if follow else _NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileRefused(path, f"cannot read: {_why(exc)}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileRefused(path, "not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: Path, limit: int = MAX_INPUT_BYTES, *, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; FileRefused otherwise."""
    with open_regular(path, follow=follow) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise FileRefused(path, f"{size} bytes, more than the {limit} allowed")
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise FileRefused(path, f"cannot read: {_why(exc)}") from None
    if len(data) > limit:  # it grew while we read it
        raise FileRefused(path, f"more than the {limit} bytes allowed")
    return data


def refuse_links(*paths: Path) -> None:
    """FileRefused if any of `paths` exists as a symlink or as anything but a regular file."""
    for path in paths:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise FileRefused(path, "is a symbolic link; refusing to follow it")
        if not stat.S_ISREG(mode):
            raise FileRefused(path, "not a regular file")
