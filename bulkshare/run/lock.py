"""One run at a time per tenant and job: a lock file naming its run, held by a renewed lease.

The lease is the lock file's modification time, set from the holder's wall clock every third
of the lease by a thread, so any host sharing the state directory can judge it (`lockfile`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import structlog

from bulkshare import safefile
from bulkshare.audit import utc_now
from bulkshare.errors import RefusedError
from bulkshare.run.lockfile import (
    DEFAULT_LEASE_S,
    FORMAT,
    STALE_AFTER_LEASES,
    Holder,
    create_linked,
    lease_from_env,
    lock_path,
    new_file,
    pid_namespace,
    read_lock,
    remove_lock,
)

__all__ = ["OnLost", "RunLock", "run_lock"]

log = structlog.get_logger("bulkshare.run")

#: tries at taking a lock that others keep taking and dropping
_ATTEMPTS = 8

#: told, from the renewing thread, why the lock is no longer ours
OnLost = Callable[[str], None]


class RunLock:
    """A lock this process holds: renewed by a thread until released.

    `lost` says why, once the lock file is no longer ours (removed by `unlock --force`, or taken
    over while this process was stopped past its lease); `on_lost` is told from that thread.
    """

    def __init__(
        self,
        path: Path,
        *,
        run_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        on_lost: OnLost | None = None,
    ) -> None:
        self.path = path
        #: the run it is held for, once known (`apply` plans before its run has an id)
        self.run_id = run_id
        self.lease_s = lease_s
        #: why the lock is no longer ours, once it is not
        self.lost: str | None = None
        self._on_lost = on_lost
        self._since = utc_now()
        self._fd = -1
        self._ident = (0, 0)
        self._mutex = threading.Lock()  # the descriptor is swapped by bind, used by the renewer
        self._done = threading.Event()
        self._renewer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<RunLock {self.path} run={self.run_id} lease={self.lease_s:g}s lost={self.lost}>"

    def _body(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "run_id": self.run_id,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "pid_ns": pid_namespace(),
                "since": self._since,
                "lease_s": self.lease_s,
            }
        )

    def take(self, tenant: str, job: str) -> None:
        """Take the lock, or take over a stale one (said in one line); RefusedError if live."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        taken_over: tuple[Holder, str] | None = None
        for _ in range(_ATTEMPTS):
            fd = create_linked(self.path, self._body())
            if fd is not None:
                self._hold(fd)
                if taken_over is not None:
                    self._say_taken_over(*taken_over)
                return
            holder = read_lock(self.path)
            if holder is None:
                continue  # released between our try and our look: try again
            reason = holder.stale_reason(time.time())
            if reason is None:
                raise RefusedError(_held_message(holder, self.path, tenant, job))
            if remove_lock(self.path, holder):
                taken_over = (holder, reason)
        raise RefusedError(f"could not take the lock {self.path}: other processes keep taking it")

    def _say_taken_over(self, holder: Holder, reason: str) -> None:
        log.warning(
            "lock-taken-over",
            lock=str(self.path),
            holder=holder.describe(time.time()),
            reason=reason,
        )

    def _hold(self, fd: int) -> None:
        self._fd = fd
        os.utime(fd, (time.time(), time.time()))
        info = os.fstat(fd)
        self._ident = (info.st_dev, info.st_ino)
        self._renewer = threading.Thread(
            target=self._renew_until_released, name=f"lease {self.path.name}", daemon=True
        )
        self._renewer.start()

    def bind(self, run_id: str) -> None:
        """Name the run the lock is held for (a complete file swapped in whole)."""
        with self._mutex:
            if self.lost is not None or not self._still_ours():
                raise RefusedError(f"lost the lock {self.path} before the run started")
            self.run_id = run_id
            tmp, fd = new_file(self.path, self._body())
            try:
                # no one takes over a lock renewed a moment ago, so the name is still ours here
                os.utime(fd, (time.time(), time.time()))
                os.rename(tmp, self.path)
            except OSError as exc:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise safefile.FileRefused(self.path, f"cannot write: {exc.strerror}") from None
            os.close(self._fd)
            self._fd = fd
            info = os.fstat(fd)
            self._ident = (info.st_dev, info.st_ino)

    def _still_ours(self) -> bool:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return (info.st_dev, info.st_ino) == self._ident

    def _renew_until_released(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            with self._mutex:
                if not self._still_ours():
                    self.lost = f"the lock {self.path} was removed or taken over by another run"
                else:
                    self._touch()
            if self.lost is not None:
                log.error("lock-lost", lock=str(self.path), reason=self.lost)
                if self._on_lost is not None:
                    self._on_lost(self.lost)
                return

    def _touch(self) -> None:
        try:
            now = time.time()
            os.utime(self._fd, (now, now))
        except OSError as exc:  # a full or read-only disk: the next renewal tries again
            log.warning("lock-not-renewed", lock=str(self.path), reason=exc.strerror)

    def release(self) -> None:
        """Stop renewing, and remove the lock file if it is still ours."""
        self._done.set()
        if self._renewer is not None:
            self._renewer.join()
        with self._mutex:
            if self.lost is None and self._still_ours():
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


@contextlib.contextmanager
def run_lock(
    state_dir: Path,
    tenant: str,
    job: str,
    *,
    run_id: str | None = None,
    lease_s: float | None = None,
    on_lost: OnLost | None = None,
) -> Iterator[RunLock]:
    """Hold `<state_dir>/locks/<tenant>--<job>.lock`; RefusedError if a live run holds it.

    The lease is `lease_s`, else `BULKSHARE_LOCK_LEASE_S`, else 60 s.
    """
    lease = lease_from_env() if lease_s is None else lease_s
    lock = RunLock(lock_path(state_dir, tenant, job), run_id=run_id, lease_s=lease, on_lost=on_lost)
    lock.take(tenant, job)
    try:
        yield lock
    finally:
        lock.release()


def _held_message(holder: Holder, path: Path, tenant: str, job: str) -> str:
    now = time.time()
    lapses = holder.renewed + holder.lease_s * STALE_AFTER_LEASES - now
    return (
        f"another run of job {job} on tenant {tenant} holds the lock: {holder.describe(now)} "
        f"({path}); if that run is gone, its lease lapses in {max(lapses, 0):.0f} s, or "
        f"`bulkshare unlock {tenant} {job}` removes it"
    )
