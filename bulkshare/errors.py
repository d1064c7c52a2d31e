"""The one exception tree of bulkshare; every error a user can cause maps to an exit code, and
`failure_of` gives the line and exit code of any exception at all (ours, a file's, a bug).

BulkshareError                      exit_code
├── UsageError                      2   bad flags or arguments; nothing was sent
│   ├── ConfigError                 2   config file or environment
│   ├── JobFileError                2   job file: names file, line and key
│   └── ExportFileError             2   an export file that is truncated, changed or not one
├── PlanFileError                   2   a saved plan that cannot be applied
├── RunFileError                    2   a run's own files are unreadable or were changed
├── RefusedError                    3   a guard tripped, no confirmation, lock held
├── TenantError                     4   tenant unreachable or authentication failed
├── DryRunViolation                 70  a write attempted by a read-only client (a bug)
├── InternalError                   70  anything else that escaped: a bug, shown in one line
└── InterruptedRun                  130 stopped by a signal, a stop request, or a failure that
                                        stopped a started run mid-way; resumable
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BulkshareError",
    "ConfigError",
    "DryRunViolation",
    "ExportFileError",
    "Failure",
    "InternalError",
    "InterruptedRun",
    "JobFileError",
    "PlanFileError",
    "RefusedError",
    "RunFileError",
    "TenantError",
    "UsageError",
    "failure_of",
    "internal_error",
    "os_error_text",
]


class BulkshareError(Exception):
    """Base of every error bulkshare raises on purpose."""

    exit_code: int = 1


class UsageError(BulkshareError):
    """Bad flags or arguments."""

    exit_code = 2


class ConfigError(UsageError):
    """The config file or the environment it points at is wrong."""


class JobFileError(UsageError):
    """A job file is wrong; the message names file, line and key."""

    def __init__(self, path: Path | str, line: int | None, key: str | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.key = key
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        keypart = f" {key}:" if key else ""
        super().__init__(f"{where}:{keypart} {message}")


class ExportFileError(UsageError):
    """An export file is unreadable, truncated or changed; refused wherever it is read."""


class PlanFileError(UsageError):
    """A saved plan file is unreadable, tampered with or stale."""


class RunFileError(UsageError):
    """A file a run left behind (run.json, audit.jsonl, summary.json) is unreadable or changed."""


class RefusedError(BulkshareError):
    """A guard refused the run: max_changes, missing confirmation, a held lock."""

    exit_code = 3


class TenantError(BulkshareError):
    """The tenant could not be reached or refused our credentials before any change."""

    exit_code = 4


class DryRunViolation(BulkshareError):
    """A read-only (dry-run) client was asked to send a write; always a bug."""

    exit_code = 70


class InternalError(BulkshareError):
    """An exception no code path expected (a bug): one line for the admin, the traceback only
    with -v."""

    exit_code = 70


class InterruptedRun(BulkshareError):
    """The run stopped early on request, signal, or a failure mid-way (the tenant refused our
    credentials, a run file could not be written); `bulkshare resume` continues it."""

    exit_code = 130


#: the exit code of a usage, config or local-file error (INTERFACE.md: nothing was sent)
_LOCAL = 2


@dataclass(frozen=True)
class Failure:
    """What an exception that ended a command says: one line, and the exit code."""

    message: str
    exit_code: int


def failure_of(exc: BaseException) -> Failure:
    """The line and exit code for `exc`, whatever it is; an ExceptionGroup speaks through the
    error that matters most in it (an interruption, else the first of ours, else the first)."""
    if isinstance(exc, BaseExceptionGroup):
        return failure_of(_leading(exc))
    if isinstance(exc, BulkshareError):
        return Failure(str(exc), exc.exit_code)
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return Failure("interrupted", InterruptedRun.exit_code)
    if isinstance(exc, OSError):
        return Failure(os_error_text(exc), _LOCAL)
    if isinstance(exc, sqlite3.Error):
        return Failure(f"SQLite: {exc}", _LOCAL)
    return Failure(str(internal_error(exc)), InternalError.exit_code)


def internal_error(exc: BaseException) -> InternalError:
    """An unexpected exception (a bug) as one line for the admin."""
    text = str(exc).replace("\n", " ")
    if len(text) > 300:
        text = text[:297] + "..."
    detail = f": {text}" if text else ""
    return InternalError(
        f"internal error: {type(exc).__name__}{detail} (a bug; please report it, "
        "with the output of -v)"
    )


def os_error_text(exc: OSError) -> str:
    """`file: reason` for a failed file operation (ENOSPC, EACCES, EROFS, EFBIG...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc.filename, str | bytes) and exc.filename:  # not a descriptor's number
        return f"{os.fsdecode(exc.filename)}: {reason}"
    return reason


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _leading(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves = list(_leaves(group)) or [group]
    for kind in (KeyboardInterrupt, InterruptedRun, BulkshareError):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return leaves[0]
