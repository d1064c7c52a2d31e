"""`unlock TENANT JOB`: say who holds a job's lock, and remove it if its holder is gone (or, with
`--force`, whatever the holder); a live holder that loses its lock stops (exit 130, resumable).
"""

from __future__ import annotations

import re
import time

from bulkshare.commands.output import Output
from bulkshare.config import BUILTIN_SIM, Config
from bulkshare.errors import ConfigError, RefusedError, UsageError
from bulkshare.run.lockfile import lock_path, read_lock, remove_lock

__all__ = ["unlock"]

#: the names a lock file is made of (a config's tenant names, a job file's job names)
_TENANT = re.compile(r"[A-Za-z0-9_-]+")
_JOB = re.compile(r"[a-z0-9-]+")


def unlock(config: Config, tenant: str, job: str, force: bool, output: Output) -> int:
    """Remove the lock of `job` on `tenant` if stale (or forced); RefusedError if it is live."""
    _check_names(config, tenant, job)
    path = lock_path(config.state_dir, tenant, job)
    what = f"job {job} on tenant {tenant}"
    holder = read_lock(path)
    if holder is None:
        output.result(f"no lock for {what} ({path})")
        return 0
    now = time.time()
    reason = holder.stale_reason(now)
    if reason is None and not force:
        raise RefusedError(
            f"the lock of {what} is live: {holder.describe(now)} ({path}); "
            "pass --force only if that run is gone (if it is not, it stops when it sees its lock "
            "removed)"
        )
    if not remove_lock(path, holder):
        raise RefusedError(
            f"the lock of {what} changed hands while it was judged: run unlock again"
        )
    why = reason or "forced, though its lease was live"
    output.result(f"removed the lock of {what}: {holder.describe(now)}; {why}")
    return 0


def _check_names(config: Config, tenant: str, job: str) -> None:
    """UsageError for names that are not a configured tenant and a job name (never a path)."""
    if not _TENANT.fullmatch(tenant) or (tenant not in config.tenants and tenant != BUILTIN_SIM):
        known = ", ".join(sorted(config.tenants)) or "none"
        raise ConfigError(
            f"{config.path or 'built-in defaults'}: unknown tenant {tenant!r} (configured: {known})"
        )
    if not _JOB.fullmatch(job):
        raise UsageError(f"{job!r} is not a job name (lowercase letters, digits and '-')")
