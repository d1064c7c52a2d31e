"""Where a change's outcome is decided: before a write (send it, or why not) and after an
unanswered one (did it land?). Pure functions over the task as read back; no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bulkshare.plan import Change
from bulkshare.run.records import Outcome

__all__ = ["CLOCK_SKEW_S", "before_write", "delete_landed", "execution_is_ours", "patch_landed"]

#: how far the service's clock may lag ours when matching an execution to our execute
CLOCK_SKEW_S = 5.0


def fields_of(task: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named fields of a task (None where absent)."""
    return {k: task.get(k) for k in names}


def before_write(
    change: Change, current: Mapping[str, Any] | None, in_doubt: bool
) -> Outcome | None:
    """Before a write: None to send it, or the outcome that makes sending needless or wrong."""
    if current is None:
        return Outcome.ABSENT
    if change.method == "PATCH":
        now = fields_of(current, change.after)
        if now == dict(change.after):
            return Outcome.APPLIED if in_doubt else Outcome.SKIPPED
        if now != dict(change.before):
            return Outcome.CONFLICT
        return None
    if change.method == "DELETE" and fields_of(current, change.before) != dict(change.before):
        return Outcome.CONFLICT
    return None


def delete_landed(change: Change, current: Mapping[str, Any] | None) -> bool:
    """An unanswered DELETE landed if the task is gone, or went DELETING because of it."""
    if current is None:
        return True
    # DELETING only shows our delete landed if the task was not DELETING before
    return current.get("statusCode") == "DELETING" and change.before.get("statusCode") != "DELETING"


def patch_landed(change: Change, current: Mapping[str, Any] | None) -> bool:
    """An unanswered PATCH landed if the task holds what it wrote."""
    return current is not None and fields_of(current, change.after) == dict(change.after)


def execution_is_ours(latest: Any, sent_at: float) -> bool:
    """True if the task's latest execution started after the in-doubt execute was sent."""
    started = latest.get("startTime") if isinstance(latest, dict) else None
    if not isinstance(started, str):
        return False
    try:
        when = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return when >= sent_at - CLOCK_SKEW_S
