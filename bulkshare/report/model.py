"""What a report shows, whatever its format: one row per change, and plan or run documents.

The runs themselves are read back from their files in `report.runs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bulkshare.plan import Change, Plan, Rejected
from bulkshare.plan.change import NEW_OWNER, NEW_OWNER_NAME
from bulkshare.report.side_effects import side_effect_texts
from bulkshare.report.terminal import printable
from bulkshare.run import ChangeRecord
from bulkshare.run.records import is_failure

#: identity keys of a copy's create: the owner and app the new task gets (copy.planner)
TARGET_OWNER, TARGET_OWNER_NAME = "targetOwner", "targetOwnerName"

__all__ = [
    "PENDING",
    "PROBLEM_OUTCOMES",
    "CountTable",
    "RejectedRow",
    "ReportDoc",
    "Row",
    "TextTable",
    "describe_change",
    "matched_text",
    "new_owner_rows",
    "owner_names",
    "plan_rows",
    "printable",
    "rejected_rows",
    "scope_text",
    "short_value",
    "side_effect_texts",
]

#: the outcome shown for a planned change of a run that has no audit record yet
PENDING = "pending"
#: outcomes a reader of a run must look at (and `absent`, for a change other than a delete)
PROBLEM_OUTCOMES = ("failed", "conflict")


def scope_text(scope: str) -> str:
    """What a plan of this scope covers, in words."""
    return "the caller's own tasks only" if scope == "own" else "every task of the tenant"


def owner_names(task: Mapping[str, Any]) -> dict[str, str]:
    """Owner id -> display name, of the task's owner and of the new owner a change writes
    (a copy's: the target owner)."""
    pairs = (
        (task.get("owner"), task.get("ownerName")),
        (task.get(NEW_OWNER), task.get(NEW_OWNER_NAME)),
        (task.get(TARGET_OWNER), task.get(TARGET_OWNER_NAME)),
    )
    return {i: n for i, n in pairs if isinstance(i, str) and isinstance(n, str) and n}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def short_value(value: Any, width: int | None) -> str:
    """A value as text (JSON unless a string; `-` for none), cut to `width` with an ellipsis."""
    text = "-" if value is None else _text(value)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def matched_text(selects: Mapping[str, Any], width: int | None = 40) -> str:
    """The fields that made a task match, as planned: `enabled: true; taskErrors: ORPHAN`.

    Task errors are shown by their values; the always-recorded statusCode only when it is
    not the everyday VALID (then it is what a reader needs to see)."""
    parts = []
    for name, value in selects.items():
        if name == "statusCode" and value == "VALID":
            continue
        if name == "taskErrors" and isinstance(value, list):
            value = ", ".join(_error_value(e) for e in value) or "none"
        parts.append(f"{name}: {short_value(value, width)}")
    return "; ".join(parts)


def _error_value(error: Any) -> str:
    return _text(error.get("value")) if isinstance(error, dict) else _text(error)


def describe_change(
    method: str,
    action: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    width: int | None = None,
    ending: str | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """`field: before → after` for each written field; `width` shortens each value. An owner
    is shown by its display name where `names` (id -> name) has one, else by its id; then how
    an owner change is expected to leave the task (`Change.ending`)."""

    def shown(key: str, value: Any) -> str:
        if key == "owner" and names and isinstance(value, str) and value in names:
            value = names[value]
        return short_value(value, width)

    if method == "DELETE":
        return "task → deleted"
    if method == "POST" and "owner" in after:  # a copy's create: what the new task gets
        return "created with " + "; ".join(f"{k}: {shown(k, v)}" for k, v in after.items())
    if method == "POST":
        return f"{action} requested"
    text = "; ".join(f"{k}: {shown(k, before.get(k))} → {shown(k, v)}" for k, v in after.items())
    return text if ending is None else f"{text}; expected: {ending}"


@dataclass(frozen=True)
class Row:
    """One planned change as people read it, and, in a run, what became of it."""

    index: int  #: position in the plan
    task_id: str
    name: str
    owner: str  #: the owner's name, else their id
    owner_id: str
    new_owner: str  #: the name of the owner the change writes, else its id; "" if none
    new_owner_id: str
    app: str  #: the app's name, else its id
    app_id: str
    type: str
    action: str
    method: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    outcome: str | None = None  #: None in a plan; PENDING for a run change not yet recorded
    http_status: int | None = None
    attempts: int | None = None
    error: str | None = None
    #: how an owner change is expected to leave the task (plans and runs)
    ending: str | None = None
    #: what the run's record says besides: why it was skipped or not read back, what the
    #: read-back found and how it differs from the plan (side effects), a re-enable
    note: str | None = None
    observed: Mapping[str, Any] | None = None
    side_effects: tuple[str, ...] = ()
    #: owner id -> display name, for the before → after text
    names: Mapping[str, str] = field(default_factory=dict)
    #: the fields that made the task match, as planned (the change's `selects`)
    matched: Mapping[str, Any] = field(default_factory=dict)
    #: a conflict's written fields as the run found them (the record's `after`)
    found: Mapping[str, Any] | None = None
    #: a copy's: the id of the task it created
    target_id: str | None = None

    @classmethod
    def of(cls, index: int, change: Change, record: ChangeRecord | None = None) -> Row:
        task = change.task
        effects = () if record is None else record.side_effects
        again = None if record is None else record.reenable
        # a PATCH of /ownerId, or a copy's create (its owner is set right after)
        new_owner = change.after.get("owner") if change.method in ("PATCH", "POST") else None
        names = owner_names(task)
        return cls(
            index,
            change.task_id,
            _text(task.get("name")),
            _text(task.get("ownerName") or task.get("owner")),
            _text(task.get("owner")),
            _text(names.get(new_owner, new_owner) if isinstance(new_owner, str) else None),
            _text(new_owner if isinstance(new_owner, str) else None),
            _text(task.get("appName") or task.get("appId")),
            _text(task.get("appId")),
            _text(task.get("type")),
            change.action,
            change.method,
            change.before,
            change.after,
            *_record_fields(record),
            change.ending(),
            None if record is None else record.note,
            None if record is None else record.observed,
            tuple(side_effect_texts(effects, again)),
            names,
            change.selects,
            _found(record),
            None if record is None else record.target_id,
        )

    @property
    def is_problem(self) -> bool:
        """A change a reader of the run must look at: it failed, conflicted or found no task."""
        return self.outcome is not None and is_failure(self.outcome, self.method)

    def change_text(self, width: int | None = None) -> str:
        """Before → after, in words; owners by name."""
        return describe_change(
            self.method, self.action, self.before, self.after, width, self.ending, self.names
        )

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "index": self.index,
            "task_id": self.task_id,
            "name": self.name,
            "owner": self.owner,
            "owner_id": self.owner_id,
            "new_owner": self.new_owner,
            "new_owner_id": self.new_owner_id,
            "app": self.app,
            "app_id": self.app_id,
            "type": self.type,
            "action": self.action,
            "method": self.method,
            "before": dict(self.before),
            "after": dict(self.after),
            "matched": dict(self.matched.items()),  # a Selected decodes once
        }
        if self.ending is not None:
            doc["expected"] = self.ending
        if self.outcome is not None:
            doc |= {
                "outcome": self.outcome,
                "http_status": self.http_status,
                "attempts": self.attempts,
                "error": self.error,
                "note": self.note,
                "observed": None if self.observed is None else dict(self.observed),
                "side_effects": list(self.side_effects),
                "found": None if self.found is None else dict(self.found),
                "target_id": self.target_id,
            }
        return doc


def _found(record: ChangeRecord | None) -> Mapping[str, Any] | None:
    if record is None or record.outcome.value != "conflict":
        return None
    return record.after


def _record_fields(record: ChangeRecord | None) -> tuple[str, int | None, int | None, Any]:
    if record is None:
        return PENDING, None, None, None
    return record.outcome.value, record.http_status, record.attempts, record.error


@dataclass(frozen=True)
class RejectedRow:
    """A task the plan rejected, as people read it."""

    task_id: str
    name: str
    owner: str
    reason: str

    @classmethod
    def of(cls, rejected: Rejected) -> RejectedRow:
        task = rejected.task
        owner = task.get("ownerName") or task.get("owner")
        return cls(rejected.task_id, _text(task.get("name")), _text(owner), rejected.reason)


def rejected_rows(plan: Plan) -> tuple[RejectedRow, ...]:
    """Every task the plan rejected."""
    return tuple(RejectedRow.of(r) for r in plan.rejected)


def plan_rows(plan: Plan) -> tuple[Row, ...]:
    """Every change of a plan, as rows without outcomes."""
    return tuple(Row.of(i, c) for i, c in enumerate(plan.changes))


def new_owner_rows(plan: Plan) -> tuple[Row, ...]:
    """The rows of `plan_rows` that give a task a new owner (`Row.new_owner_id`)."""
    # the same test as Row.of's, made first so that the other changes build no row
    maybe = (
        (i, c)
        for i, c in enumerate(plan.changes)
        if c.method in ("PATCH", "POST") and isinstance(c.after.get("owner"), str)
    )
    return tuple(row for row in (Row.of(i, c) for i, c in maybe) if row.new_owner_id)


@dataclass(frozen=True)
class CountTable:
    """A small table of counts: a label per row, one number per column."""

    title: str
    columns: tuple[str, ...]  #: the label column's header, then one header per number
    rows: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class TextTable:
    """A titled table of text cells that every format shows (criteria, owners, id maps...)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""  #: a sentence under the title
    numeric: int = 0  #: the last `numeric` columns hold numbers (right-aligned)
    #: drawn as a bar chart besides (HTML): label column 0, value the last column
    chart: bool = False


@dataclass(frozen=True)
class ReportDoc:
    """A plan or a run, ready for any format."""

    kind: str  #: "plan" or "run"
    title: str
    facts: tuple[tuple[str, str], ...]  #: label, value; shown as the summary
    counts: tuple[CountTable, ...]
    rows: tuple[Row, ...]
    #: a plan's tasks left alone for values of the wrong type, each with its reason
    rejected: tuple[RejectedRow, ...] = ()
    #: what an approver reads before the changes: criteria, new owners, failures by error,
    #: conflicts, copies and id maps
    tables: tuple[TextTable, ...] = ()
    #: the tenant is the built-in simulator: every format says SIMULATED
    simulated: bool = False

    @property
    def has_outcomes(self) -> bool:
        return self.kind == "run"

    @property
    def problems(self) -> tuple[Row, ...]:
        """Changes that failed, conflicted, or (other than deletes) found their task gone."""
        return tuple(r for r in self.rows if r.is_problem)

    @property
    def side_effects(self) -> tuple[Row, ...]:
        """Changes whose read-back differs from what the plan expected (not failures)."""
        return tuple(r for r in self.rows if r.side_effects)
