"""Where a change's outcome is decided: before a write (send it, or why not), after an
unanswered one (did it land?) and after any (what else happened?). Pure functions; no I/O.

A change is judged by its guard only (`Change.writes`, `Change.selects`/`selection`), never by
what the plan guessed the service would do: that is `Change.expect`, compared with the task as
read back after the write, and a difference is a side effect to report, not a failure.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bulkshare.job import where_of_selection
from bulkshare.plan import Change, EffectKind
from bulkshare.plan.change import quoted
from bulkshare.plan.effects import error_values
from bulkshare.run.records import Outcome

__all__ = [
    "ACTIVE_EXECUTION",
    "CLOCK_SKEW_S",
    "OWNER_CHANGE_ERRORS",
    "SideEffect",
    "Verdict",
    "before_write",
    "delete_landed",
    "needs_reenable",
    "no_longer_selected",
    "observed_state",
    "patch_landed",
    "settle_post",
    "side_effects",
]

#: how far the service's clock may lag ours when matching an execution to our request
CLOCK_SKEW_S = 5.0
#: execution statuses of a run still going (the reference's enum)
ACTIVE_EXECUTION = frozenset({"initialized", "in-progress", "presuccessful"})
#: task errors an owner change may bring, reported when a read-back shows one new
OWNER_CHANGE_ERRORS = frozenset(
    {
        "OWNER_ACCESS",
        "OWNER_LICENSE",
        "OWNER_INSUFFICIENT_PERMISSIONS",
        "DISABLED_DUE_TO_OWNERSHIP_CHANGE",
    }
)
#: the task fields a read-back records besides the written ones
OBSERVED_FIELDS = ("enabled", "owner", "taskErrors")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a change is not sent (or is recorded without sending): its outcome, and in words
    what made it so (a conflict's moved field, the selection a task left)."""

    outcome: Outcome
    reason: str | None = None


def fields_of(task: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named fields of a task (None where absent)."""
    return {k: task.get(k) for k in names}


def before_write(
    change: Change, current: Mapping[str, Any] | None, in_doubt: bool, now: datetime
) -> Verdict | None:
    """Before a write: None to send it, or the verdict that makes sending needless or wrong.

    Only the change's guard counts, in this order: its written fields (all at their planned
    after-values: done; one at neither its before- nor its after-value: conflict), then its
    selection (a selected field moved so the task no longer matches: skipped, not selected,
    for another job fixing the task is no failure of this one). Nothing else is compared.
    """
    if current is None:
        return Verdict(Outcome.ABSENT)
    if change.method == "PATCH":
        written = _written(change, current)
        if written is not None and in_doubt and written.outcome is Outcome.SKIPPED:
            return Verdict(Outcome.APPLIED)  # an unanswered write of ours, found made
        if written is not None:
            return written
    elif change.method == "DELETE" and in_doubt and delete_landed(change, current):
        return Verdict(Outcome.APPLIED)
    reason = no_longer_selected(change, current, now)
    return None if reason is None else Verdict(Outcome.SKIPPED, reason)


def _written(change: Change, current: Mapping[str, Any]) -> Verdict | None:
    """SKIPPED if every written field is at its after-value, CONFLICT if one moved elsewhere."""
    done = True
    for name, (planned, wanted) in change.writes.items():
        now = current.get(name)
        if now == wanted:
            continue
        done = False
        if now != planned:
            return Verdict(
                Outcome.CONFLICT,
                f"{name} is {_shown(name, now)}: planned {_shown(name, planned)} -> "
                f"{_shown(name, wanted)}",
            )
    return Verdict(Outcome.SKIPPED) if done else None


def no_longer_selected(change: Change, current: Mapping[str, Any], now: datetime) -> str | None:
    """Why `current` is no longer a task the change's operations select (None: it still is)."""
    planned_status = change.selects.get("statusCode", _UNSET)
    status = current.get("statusCode")
    if (
        change.method != "DELETE"
        and planned_status is not _UNSET
        and status == "DELETING" != planned_status
    ):
        return f"no longer selected: statusCode moved from {quoted(planned_status)} to DELETING"
    moved = [name for name, value in change.selects.items() if current.get(name) != value]
    if not moved:
        return None  # what the selection read is as planned: it still selects the task
    if all(where_of_selection(s).matches(current, now) for s in change.selection):
        return None  # moved, but still within every selection
    return "no longer selected: " + "; ".join(
        f"{name} moved from {_shown(name, change.selects[name])} to "
        f"{_shown(name, current.get(name))}"
        for name in moved
    )


_UNSET = object()


def _shown(name: str, value: Any) -> str:
    if name == "taskErrors" and isinstance(value, list):
        return quoted(error_values({"taskErrors": value}))
    return quoted(value)


def delete_landed(change: Change, current: Mapping[str, Any] | None) -> bool:
    """An unanswered DELETE landed if the task is gone, or went DELETING because of it."""
    if current is None:
        return True
    # DELETING only shows our delete landed if the task was not DELETING before
    return current.get("statusCode") == "DELETING" and change.before.get("statusCode") != "DELETING"


def patch_landed(change: Change, current: Mapping[str, Any] | None) -> bool:
    """An unanswered PATCH landed if the task holds what it wrote (the written fields only:
    what the service may do besides is no evidence either way)."""
    return current is not None and fields_of(current, change.after) == dict(change.after)


@dataclass(frozen=True, slots=True)
class SideEffect:
    """A field a read-back found other than the plan expected after the write."""

    field: str
    expected: Any  #: the written value, the plan's expectation, or (taskErrors) the old values
    observed: Any  #: as read back (taskErrors: the new owner errors only)

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "expected": self.expected, "observed": self.observed}


def observed_state(change: Change, task: Mapping[str, Any]) -> dict[str, Any]:
    """What a read-back records: the written fields, then enabled, owner and taskErrors."""
    return fields_of(task, (*change.after, *(f for f in OBSERVED_FIELDS if f not in change.after)))


def side_effects(change: Change, observed: Mapping[str, Any]) -> list[SideEffect]:
    """How a read-back differs from what the plan expected: a written field not holding what
    was written, `enabled` other than an owner change's expectation, and new owner errors."""
    found = [
        SideEffect(name, value, observed.get(name))
        for name, value in change.after.items()
        if observed.get(name) != value
    ]
    expected = change.expect.get("enabled")
    if isinstance(expected, bool) and observed.get("enabled") is not expected:
        found.append(SideEffect("enabled", expected, observed.get("enabled")))
    if "taskErrors" in change.expect:
        old = set(change.expect["taskErrors"])
        new = sorted(set(error_values(observed)) & OWNER_CHANGE_ERRORS - old)
        if new:
            found.append(SideEffect("taskErrors", sorted(old), new))
    return found


def needs_reenable(
    change: Change, observed: Mapping[str, Any], enabled_before: bool | None
) -> bool:
    """A keep_enabled owner change whose task reads back disabled, and was enabled before the
    write (as read just before it, when it was; else as planned)."""
    return change.reenables and observed.get("enabled") is False and enabled_before is not False


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
