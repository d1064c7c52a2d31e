"""The CSV inventory of an export: one row per task, the columns an admin looks at.

Tenant text is data: control characters shown escaped, formula-like cells defused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bulkshare.report.export import csv_cell as _defused  # the report CSV's formula guard

__all__ = ["INVENTORY_COLUMNS", "inventory_row"]

INVENTORY_COLUMNS = (
    "id",
    "name",
    "type",
    "app",
    "app_id",
    "owner",
    "owner_id",
    "enabled",
    "status",
    "task_errors",
    "last_viewed",
    "next_run",
    "recipients",
)
#: where the reference puts each kind of recipient: internal users, groups, external addresses
RECIPIENT_LISTS = ("userIds", "groupIds", "emailAddresses")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def inventory_row(task: Mapping[str, Any]) -> list[str]:
    """The task's cells in INVENTORY_COLUMNS order, each safe to open in a spreadsheet."""
    values = [
        task.get("id"),
        task.get("name"),
        task.get("type"),
        task.get("appName"),
        task.get("appId"),
        task.get("ownerName"),
        task.get("owner"),
        _flag(task.get("enabled")),
        task.get("statusCode"),
        "; ".join(_error_values(task.get("taskErrors"))),
        _timestamp(task.get("lastViewed")),
        _next_run(task),
        _recipient_count(task.get("recipients")),
    ]
    return [_safe(v) for v in values]


def _safe(value: object) -> str:
    # defused first, so a leading tab or CR still earns its apostrophe before it is escaped
    text = _defused(value)
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def _flag(value: object) -> str | None:
    return None if not isinstance(value, bool) else "true" if value else "false"


def _error_values(errors: object) -> list[str]:
    if not isinstance(errors, list):
        return []
    return [str(e["value"]) for e in errors if isinstance(e, dict) and e.get("value")]


def _timestamp(value: object) -> str | None:
    # Go services render "never" as the zero time rather than leaving the field out
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    return value


def _next_run(task: Mapping[str, Any]) -> str | None:
    """The task's nextScheduledRun, else its schedule's nextExecutionTime."""
    schedule = task.get("scheduleOptions")
    chronos = schedule.get("nextExecutionTime") if isinstance(schedule, dict) else None
    return _timestamp(task.get("nextScheduledRun")) or _timestamp(chronos)


def _recipient_count(recipients: object) -> int | None:
    if not isinstance(recipients, dict):
        return None
    lists = (recipients.get(key) for key in RECIPIENT_LISTS)
    return sum(len(items) for items in lists if isinstance(items, list))
