"""The simulator's answers where the public sources are silent, as switchable rules, and the
checks a write gets against the tenant's own data: its apps, and how old a schedule may start.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bulkshare.sim.errors import SimError

__all__ = [
    "MAX_START_AGE_DAYS",
    "Answer",
    "LinkStyle",
    "TaskRules",
    "check_known_apps",
    "check_start_age",
    "template_app_ids",
]

Json = dict[str, Any]

#: sharing-tasks.md: "StartDateTime should not be older than 1 year from current date"
MAX_START_AGE_DAYS = 365
#: the template members that name an app, and where in them
_APP_HOLDERS = ("chartData", "sheetData", "storyData")


class Answer(enum.StrEnum):
    """How the simulator answers a request the sources do not say the answer of."""

    NOT_FOUND = "404"  # as for a task that does not exist
    BAD_REQUEST = "400"  # refused as invalid
    ACCEPTED = "accept"  # done as for any other request


class LinkStyle(enum.StrEnum):
    """How list answers write their `links.*.href`."""

    ABSOLUTE = "absolute"  # http://host:port/api/v1/sharing-tasks?...&page=...
    RELATIVE = "relative"  # /api/v1/sharing-tasks?...&page=...
    QUERY = "query"  # ?...&page=... (relative to the request's own path)


@dataclass(frozen=True, slots=True)
class TaskRules:
    """The behaviours of task writes that no public source establishes, as the tenant applies them.

    The defaults are the simulator's long-standing choices (see docs/simulator.md).
    """

    #: a PATCH that changes the owner disables the task (unless it also sets /enabled true)
    owner_change_disables: bool = True
    #: a new active owner clears ORPHAN / OWNER_DISABLED at once (else they stay until later)
    owner_change_clears_errors: bool = True
    #: PATCH /ownerId naming a user the tenant does not have
    unknown_owner: Answer = Answer.BAD_REQUEST
    #: PATCH of a task in DELETING
    deleting_patch: Answer = Answer.NOT_FOUND
    #: execute of a task in DELETING (sharing-tasks.md: 404 "... or otherwise unable to be
    #: executed")
    deleting_execute: Answer = Answer.NOT_FOUND
    #: templates may only name apps the tenant has
    known_apps_only: bool = True
    #: scheduleOptions.startDateTime may be at most this many days in the past; None: any
    max_start_age_days: int | None = MAX_START_AGE_DAYS

    def __post_init__(self) -> None:
        if self.max_start_age_days is not None and self.max_start_age_days < 0:
            raise ValueError("max_start_age_days must be >= 0")


def template_app_ids(templates: Any) -> list[tuple[str, str]]:
    """(where, app id) of every app a template list names, in order."""
    found: list[tuple[str, str]] = []
    if not isinstance(templates, list):
        return found
    for index, template in enumerate(templates):
        if not isinstance(template, dict):
            continue
        for key in _APP_HOLDERS:
            data = template.get(key)
            if isinstance(data, dict) and isinstance(data.get("appId"), str):
                found.append((f"templates[{index}].{key}.appId", data["appId"]))
        sheets = template.get("multiSheetData")
        for n, sheet in enumerate(sheets if isinstance(sheets, list) else []):
            if isinstance(sheet, dict) and isinstance(sheet.get("appId"), str):
                found.append((f"templates[{index}].multiSheetData[{n}].appId", sheet["appId"]))
    return found


def check_known_apps(templates: Any, apps: Mapping[str, Json], rules: TaskRules) -> None:
    """400 SimError naming the first app id of `templates` the tenant does not have."""
    if not rules.known_apps_only:
        return
    for where, app_id in template_app_ids(templates):
        if app_id not in apps:
            raise SimError(400, f"{where}: app {app_id!r} does not exist in this tenant")


def check_start_age(schedule: Any, rules: TaskRules, now: float | None = None) -> None:
    """400 SimError if scheduleOptions.startDateTime lies further back than the rules allow."""
    if rules.max_start_age_days is None or not isinstance(schedule, dict):
        return
    start = schedule.get("startDateTime")
    if not isinstance(start, str) or not start:
        return
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC).replace(tzinfo=None)
    # a local time in the task's timezone: a day's slack covers every offset there is
    oldest = moment - timedelta(days=rules.max_start_age_days + 1)
    if datetime.fromisoformat(start) < oldest:
        raise SimError(
            400,
            f"scheduleOptions.startDateTime {start!r} is older than "
            f"{rules.max_start_age_days} days from the current date",
        )
