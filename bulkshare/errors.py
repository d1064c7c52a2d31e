"""The one exception tree of bulkshare; every error a user can cause maps to an exit code.

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
└── InterruptedRun                  130 stopped by a signal or a stop request; resumable
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BulkshareError",
    "ConfigError",
    "DryRunViolation",
    "ExportFileError",
    "InterruptedRun",
    "JobFileError",
    "PlanFileError",
    "RefusedError",
    "RunFileError",
    "TenantError",
    "UsageError",
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


class InterruptedRun(BulkshareError):
    """The run stopped early on request or signal; `bulkshare resume` continues it."""

    exit_code = 130
