"""Lock files on disk: who a lock names and whether its lease is live; creating and removing
them so that two processes never both win one lock, even when both saw it stale.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.errors import ConfigError, UsageError

__all__ = [
    "DEFAULT_LEASE_S",
    "FORMAT",
    "LEASE_ENV",
    "STALE_AFTER_LEASES",
    "Holder",
    "create_linked",
    "lease_from_env",
    "lock_path",
    "new_file",
    "pid_namespace",
    "read_lock",
    "remove_lock",
    "run_is_live",
]

#: how long a lock holds without being renewed (seconds); it is renewed every third of it
DEFAULT_LEASE_S = 60.0
#: the environment variable that sets the lease of the locks this process takes
LEASE_ENV = "BULKSHARE_LOCK_LEASE_S"
_LEASE_MIN, _LEASE_MAX = 1.0, 86400.0
#: a lease not renewed for this many lease lengths is stale: three renewals missed, and half a
#: lease more as a margin for clocks of two hosts that disagree
STALE_AFTER_LEASES = 1.5
_LOCK_LIMIT = 64 * 1024
#: a break ticket older than this was left by a process that died taking a lock over
_TICKET_STALE_S = 30.0
_TICKET_GENERATIONS = 8
FORMAT = "bulkshare-lock/1"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def lease_from_env(env: dict[str, str] | None = None) -> float:
    """The lease length `BULKSHARE_LOCK_LEASE_S` asks for, else the default; ConfigError if bad."""
    text = (os.environ if env is None else env).get(LEASE_ENV, "").strip()
    if not text:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not _LEASE_MIN <= value <= _LEASE_MAX:  # nan fails both
        raise ConfigError(
            f"{LEASE_ENV}={text[:40]!r}: must be a number of seconds from {_LEASE_MIN:g} to "
            f"{_LEASE_MAX:g}"
        )
    return value


def lock_path(state_dir: Path, tenant: str, job: str) -> Path:
    """Where the lock of `job` on `tenant` lives."""
    return state_dir / "locks" / f"{tenant}--{job}.lock"


def pid_namespace() -> str:
    """This process's pid namespace (Linux), so a pid is only checked where it means the same."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a lock file says holds it, and when its lease was last renewed (its mtime)."""

    renewed: float  #: epoch seconds, the holder's wall clock
    lease_s: float = DEFAULT_LEASE_S
    run_id: str | None = None
    pid: int | None = None
    host: str = "?"
    since: str = "?"
    #: the holder's pid namespace; None in a lock written before leases (same host: same pids)
    pid_ns: str | None = None
    #: False: no lock file of ours (a symlink, a directory, a FIFO): stale at once
    regular: bool = True
    #: written before leases existed: it names no run, and nothing renews it
    legacy: bool = False
    #: (device, inode, mtime in ns) of the file judged: what a takeover may remove, nothing else
    ident: tuple[int, int, int] = (0, 0, 0)

    def stale_reason(self, now: float) -> str | None:
        """Why the lock may be taken over now; None while its holder is live."""
        if not self.regular:
            return "it is not a lock file (a symlink or another kind of file)"
        if self._process_gone():
            return f"its process (pid {self.pid}) is gone from this host"
        age = now - self.renewed
        if age > self.lease_s * STALE_AFTER_LEASES:
            return f"its {self.lease_s:g} s lease was last renewed {age:.0f} s ago"
        return None

    def _process_gone(self) -> bool:
        if self.host != socket.gethostname() or not isinstance(self.pid, int) or self.pid <= 0:
            return False  # another machine's process (or no pid): only its lease can tell
        if self.pid_ns is not None and self.pid_ns != pid_namespace():
            return False  # another container with this host name: its pids are not ours
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def names(self, run_id: str) -> bool:
        """The lock is held for this run (a lock from before leases names none: maybe it)."""
        return self.run_id == run_id or self.legacy

    def describe(self, now: float) -> str:
        """`run R, pid N on HOST since T, lease renewed S s ago`."""
        who = f"run {self.run_id}, " if self.run_id else ""
        return (
            f"{who}pid {self.pid} on {self.host} since {self.since}, lease renewed "
            f"{max(0.0, now - self.renewed):.0f} s ago"
        )


def read_lock(path: Path) -> Holder | None:
    """The holder a lock file names; None if there is no lock file."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _not_a_lock(path)
        raise UsageError(f"{path}: cannot read the lock: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Holder(info.st_mtime, regular=False, ident=_ident_of(info))
        data = fh.read(_LOCK_LIMIT)
    return replace(_parse(data, info.st_mtime), ident=_ident_of(info))


def _ident_of(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_dev, info.st_ino, info.st_mtime_ns)


def _ident(path: Path) -> tuple[int, int, int] | None:
    try:
        return _ident_of(os.lstat(path))
    except FileNotFoundError:
        return None


def _not_a_lock(path: Path) -> Holder | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return Holder(info.st_mtime, regular=False, ident=_ident_of(info))


def _parse(data: bytes, renewed: float) -> Holder:
    """A lock's fields; unreadable content (a lock of an older bulkshare caught half-written,
    or anything else) is judged by its lease alone, with the default length."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return Holder(renewed)
    if not isinstance(doc, dict):
        return Holder(renewed)
    return Holder(
        renewed,
        lease_s=_lease_of(doc.get("lease_s")),
        run_id=_str_or_none(doc.get("run_id")),
        pid=doc["pid"] if isinstance(doc.get("pid"), int) else None,
        host=_str_or_none(doc.get("host")) or "?",
        since=_str_or_none(doc.get("since")) or "?",
        pid_ns=_str_or_none(doc.get("pid_ns")),
        legacy=doc.get("format") != FORMAT,
    )


def _lease_of(value: Any) -> float:
    """A lock's own lease length, within bounds (JSON has no nan); the default if it has none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return DEFAULT_LEASE_S
    return min(_LEASE_MAX, max(_LEASE_MIN, float(value)))


def _str_or_none(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def new_file(path: Path, body: bytes) -> tuple[Path, int]:
    """A complete, fsync'd file of `body` beside `path`, under a fresh name; its descriptor."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as exc:
        raise safefile.FileRefused(path, f"cannot create: {exc.strerror}") from None
    try:
        safefile.write_all(fd, body)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        os.unlink(tmp)
        raise safefile.FileRefused(path, f"cannot write: {exc.strerror}") from None
    return tmp, fd


def create_linked(path: Path, body: bytes) -> int | None:
    """Make `path` a complete lock file at once (a link to a written file); None if it exists.

    A reader never sees it empty or half-written: the name appears with its content.
    """
    tmp, fd = new_file(path, body)
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise safefile.FileRefused(path, f"cannot create the lock: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return fd


def remove_lock(path: Path, judged: Holder) -> bool:
    """Remove the lock file `judged` was read from, if it is still that file; True if removed.

    Two processes that judged the same stale lock must not both take it over, and none may
    remove a fresh lock that replaced the one it judged. So only the process that creates the
    break ticket of that very file (its device, inode and modification time) may remove it, and
    it does so only if the name still holds that file, unrenewed. The check and the removal are
    two steps, but nobody else removes the file between them: they hold no ticket.
    """
    ticket = _break_ticket(path, judged)
    if ticket is None:
        return False
    try:
        if _ident(path) != judged.ident:
            return False  # gone, renewed or replaced since it was judged
        _remove(path)
        return True
    finally:
        for generation in range(1, _TICKET_GENERATIONS + 1):
            _remove(_ticket_name(path, judged, generation))


def _ticket_name(path: Path, judged: Holder, generation: int) -> Path:
    dev, ino, mtime_ns = judged.ident
    return path.with_name(f".{path.name}.{dev}-{ino}-{mtime_ns}.break{generation}")


def _break_ticket(path: Path, judged: Holder) -> Path | None:
    """Our exclusive right to remove the file judged; None if another process is at it.

    A ticket left by a process that died holding it is passed over after a while (the next
    generation is taken), not removed: that could free a ticket someone holds. Tickets are
    removed once the file they are for is gone or changed, when no one can act on them.
    """
    for generation in range(1, _TICKET_GENERATIONS + 1):
        ticket = _ticket_name(path, judged, generation)
        fd = create_linked(ticket, b"")
        if fd is not None:
            os.close(fd)
            return ticket
        other = _ident(ticket)
        if other is not None and time.time() - other[2] / 1e9 < _TICKET_STALE_S:
            return None
    return None


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # a directory planted as the lock: removed if empty, else refused
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise safefile.FileRefused(path, f"cannot remove: {exc.strerror}") from None


def run_is_live(state_dir: Path, tenant: str, job: str, run_id: str) -> bool:
    """A live lease names this run: its process is still going."""
    holder = read_lock(lock_path(state_dir, tenant, job))
    return holder is not None and holder.names(run_id) and holder.stale_reason(time.time()) is None
