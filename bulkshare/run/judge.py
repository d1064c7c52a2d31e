"""Where a change's outcome is decided: before a write (send it, or why not) and after an
unanswered one (did it land?). Pure functions over what was read back; no I/O here.

The settle rule for the POST actions, which cannot be compared with a before-state:
- execute landed if the task has an execution that started at or after the time the request
  was armed (less `CLOCK_SKEW_S`, for a service clock behind ours), or its `lastRun` says so;
  then it is recorded applied (settled by read) and never sent again.
- cancel landed if an execution of the task is `cancelling`, or was `cancelled` at or after
  the arm time (less the skew), or the task itself is CANCELLING: recorded applied. If none
  landed and an execution is still running, the cancel is sent (its first one to take
  effect). If nothing is running, there is nothing to cancel: skipped, nothing sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bulkshare.plan import Change, EffectKind
from bulkshare.run.records import Outcome

__all__ = [
    "ACTIVE_EXECUTION",
    "CLOCK_SKEW_S",
    "before_write",
    "delete_landed",
    "patch_landed",
    "settle_post",
]

#: how far the service's clock may lag ours when matching an execution to our request
CLOCK_SKEW_S = 5.0
#: execution statuses of a run still going (the reference's enum)
ACTIVE_EXECUTION = frozenset({"initialized", "in-progress", "presuccessful"})


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


def settle_post(
    change: Change,
    task: Mapping[str, Any],
    executions: Sequence[Any],
    armed_at: float,
) -> Outcome | None:
    """For an execute or cancel that may have been sent at `armed_at` (epoch seconds, our
    clock): APPLIED if it landed, SKIPPED if a cancel has nothing to act on, None to send it.
    """
    since = armed_at - CLOCK_SKEW_S
    if change.kind is EffectKind.EXECUTE:
        started = [_when(e, "startTime") for e in executions] + [_when(task, "lastRun")]
        return Outcome.APPLIED if any(t is not None and t >= since for t in started) else None
    return _cancel_verdict(task, executions, since)


def _cancel_verdict(
    task: Mapping[str, Any], executions: Sequence[Any], since: float
) -> Outcome | None:
    runs = [e for e in executions if isinstance(e, dict)]
    if task.get("statusCode") == "CANCELLING" or any(_cancelled_since(e, since) for e in runs):
        return Outcome.APPLIED
    if any(e.get("status") in ACTIVE_EXECUTION for e in runs):
        return None
    return Outcome.SKIPPED


def _cancelled_since(execution: Mapping[str, Any], since: float) -> bool:
    status = execution.get("status")
    if status == "cancelling":
        return True
    when = _when(execution, "cancelledTime")
    return status == "cancelled" and when is not None and when >= since


def _when(doc: Any, key: str) -> float | None:
    """A timestamp field of a service document as epoch seconds; None if absent or unreadable."""
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # the service writes UTC; a time without an offset is read as UTC too, never as local
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
