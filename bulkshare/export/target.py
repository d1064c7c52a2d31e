"""Where an export goes: a temporary file beside the target, renamed into place only when it is
whole (so no half-written file ever has the final name), or standard output.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from bulkshare.errors import BulkshareError, UsageError

__all__ = ["STDOUT", "AtomicFile", "StdoutTarget", "Target", "open_target"]

#: `--out -` writes to standard output
STDOUT = "-"
_BUFFER = 1 << 20


class Target(Protocol):
    """A byte sink that can be committed (made final) or discarded."""

    @property
    def name(self) -> str: ...

    @property
    def restartable(self) -> bool:
        """True when `rewind` can take back what was written."""
        ...

    def write(self, data: bytes) -> None: ...

    def rewind(self) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class AtomicFile:
    """A file written as `.NAME.*.partial` in the target's directory, then os.replace'd.

    Mode 0600: an export holds recipients' addresses. A kill -9 leaves only the `.partial` file.
    """

    restartable = True

    def __init__(self, path: Path) -> None:
        _check_destination(path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        except OSError as exc:
            raise UsageError(f"--out {path}: {exc.strerror or exc}") from None
        self.path = path
        self.tmp = Path(tmp)
        self._stream: BinaryIO = os.fdopen(fd, "wb", buffering=_BUFFER)

    @property
    def name(self) -> str:
        return str(self.path)

    def write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
        except OSError as exc:
            raise UsageError(f"--out {self.path}: cannot write: {exc.strerror or exc}") from None

    def rewind(self) -> None:
        self._stream.seek(0)
        self._stream.truncate()

    def commit(self) -> None:
        """Flush, fsync and rename into place; the directory entry is fsync'd too."""
        try:
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._stream.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise UsageError(f"--out {self.path}: cannot write: {exc.strerror or exc}") from None
        _fsync_dir(self.path.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()
        self.tmp.unlink(missing_ok=True)


class StdoutTarget:
    """Standard output: streamed as it comes, so it cannot be taken back (not restartable)."""

    restartable = False
    name = "standard output"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    def write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
        except BrokenPipeError:
            _silence_stdout()
            raise BulkshareError("--out -: the reader closed the pipe; export incomplete") from None

    def rewind(self) -> None:
        raise AssertionError("standard output cannot be rewound")  # restartable is False

    def commit(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise BulkshareError("--out -: the reader closed the pipe; export incomplete") from None

    def discard(self) -> None:
        pass  # what went out is out; without its trailer a reader refuses it


@contextlib.contextmanager
def open_target(out: str) -> Iterator[Target]:
    """The target `--out` names; discarded unless the body committed it, whatever happens."""
    target: AtomicFile | StdoutTarget = StdoutTarget() if out == STDOUT else AtomicFile(Path(out))
    try:
        yield target
    except BaseException:
        target.discard()
        raise
    if isinstance(target, AtomicFile) and target.tmp.exists():
        target.discard()  # left without a commit: never leave a partial file behind


def _check_destination(path: Path) -> None:
    """Refuse, before anything is read, a target that is not (or could not be) a regular file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"--out {path}: exists and is not a regular file; refusing to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: directory {path.parent} does not exist")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or filesystem allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _silence_stdout() -> None:
    # the interpreter flushes stdout once more at exit: point it at /dev/null so that final
    # flush does not print a BrokenPipeError of its own
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
