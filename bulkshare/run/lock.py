"""One run at a time per tenant and job: an exclusive lock file naming its holder."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson

from bulkshare import safefile
from bulkshare.audit import utc_now
from bulkshare.errors import RefusedError, UsageError

__all__ = ["run_lock"]

#: a lock file holds a pid, a host name and a time
_LOCK_LIMIT = 64 * 1024


@contextlib.contextmanager
def run_lock(state_dir: Path, tenant: str, job: str) -> Iterator[Path]:
    """Hold `<state_dir>/locks/<tenant>--<job>.lock`; RefusedError if a live process holds it."""
    path = state_dir / "locks" / f"{tenant}--{job}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    _take(path, tenant, job)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _take(path: Path, tenant: str, job: str) -> None:
    me = orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now()})
    for _ in range(2):
        # O_EXCL|O_NOFOLLOW: a symlink planted as the lock is an existing entry, never a target
        if not safefile.create_new(path, me):
            holder = _holder(path)
            if holder is not None and _alive(holder):
                raise RefusedError(
                    f"another run of job {job} on tenant {tenant} holds the lock: pid "
                    f"{holder.get('pid')} on {holder.get('host')} since {holder.get('since')} "
                    f"({path})"
                ) from None
            # the holder died without cleaning up: take the lock over
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        return
    raise RefusedError(f"could not take the lock {path}; another process keeps taking it")


def _holder(path: Path) -> dict[str, object] | None:
    """Who holds the lock; None if the lock is no lock file of ours (gone, torn, a symlink)."""
    try:
        data = orjson.loads(safefile.read_regular(path, _LOCK_LIMIT, follow=False))
    except (UsageError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _alive(holder: dict[str, object]) -> bool:
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so respect it
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
