"""What a report shows, whatever its format: one row per change, and plan or run documents.

A run is read back from its files, so finished, interrupted and running runs all report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkshare.audit import read_records
from bulkshare.errors import UsageError
from bulkshare.plan import Change, Plan, Rejected
from bulkshare.plan.change import NEW_OWNER, NEW_OWNER_NAME
from bulkshare.report.side_effects import side_effect_texts
from bulkshare.report.terminal import printable
from bulkshare.run import ChangeRecord, RunDir, RunMeta, RunState, Summary
from bulkshare.run.files import run_names
from bulkshare.run.lockfile import run_is_live
from bulkshare.run.records import is_failure

__all__ = [
    "DEAD",
    "PENDING",
    "PROBLEM_OUTCOMES",
    "CountTable",
    "RejectedRow",
    "ReportDoc",
    "Row",
    "RunListing",
    "RunReport",
    "describe_change",
    "list_runs",
    "owner_names",
    "plan_rows",
    "printable",
    "rejected_rows",
    "scope_text",
    "shown_state",
    "side_effect_texts",
]

#: the outcome shown for a planned change of a run that has no audit record yet
PENDING = "pending"
#: the state shown for a run that run.json says is running, but no live lock lease names
DEAD = "dead"
#: outcomes a reader of a run must look at (and `absent`, for a change other than a delete)
PROBLEM_OUTCOMES = ("failed", "conflict")


def scope_text(scope: str) -> str:
    """What a plan of this scope covers, in words."""
    return "the caller's own tasks only" if scope == "own" else "every task of the tenant"


def owner_names(task: Mapping[str, Any]) -> dict[str, str]:
    """Owner id -> display name, of the task's owner and of the new owner a change writes."""
    pairs = (
        (task.get("owner"), task.get("ownerName")),
        (task.get(NEW_OWNER), task.get(NEW_OWNER_NAME)),
    )
    return {i: n for i, n in pairs if isinstance(i, str) and isinstance(n, str) and n}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _short(value: Any, width: int | None) -> str:
    text = "-" if value is None else _text(value)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


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
    if method == "DELETE":
        return "task → deleted"
    if method == "POST":
        return f"{action} requested"

    def shown(key: str, value: Any) -> str:
        if key == "owner" and names and isinstance(value, str) and value in names:
            value = names[value]
        return _short(value, width)

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

    @classmethod
    def of(cls, index: int, change: Change, record: ChangeRecord | None = None) -> Row:
        task = change.task
        effects = () if record is None else record.side_effects
        again = None if record is None else record.reenable
        new_owner = change.after.get("owner") if change.method == "PATCH" else None
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
            }
        return doc


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


def shown_state(run_dir: RunDir, meta: RunMeta) -> str:
    """The run's state as people should read it: `dead` for a running run no live lease holds.

    run.json keeps `running` (its process died without a word); the lock's lease tells.
    """
    if meta.state is not RunState.RUNNING:
        return meta.state.value
    state_dir = run_dir.root.parent.parent
    return meta.state.value if run_is_live(state_dir, meta.tenant, meta.job, meta.run_id) else DEAD


def rejected_rows(plan: Plan) -> tuple[RejectedRow, ...]:
    """Every task the plan rejected."""
    return tuple(RejectedRow.of(r) for r in plan.rejected)


def plan_rows(plan: Plan) -> tuple[Row, ...]:
    """Every change of a plan, as rows without outcomes."""
    return tuple(Row.of(i, c) for i, c in enumerate(plan.changes))


@dataclass(frozen=True)
class CountTable:
    """A small table of counts: a label per row, one number per column."""

    title: str
    columns: tuple[str, ...]  #: the label column's header, then one header per number
    rows: tuple[tuple[str, tuple[int, ...]], ...]


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


@dataclass(frozen=True)
class RunReport:
    """One run read back from its directory: meta, summary and every change with its outcome."""

    run_id: str
    tenant: str
    job: str
    #: planned, running, interrupted or finished, as run.json says; `dead` for a running run
    #: whose lease has lapsed
    state: str
    meta: RunMeta
    summary: Summary | None  #: summary.json, once the run has finished
    rows: tuple[Row, ...]
    #: audit records of failures, conflicts and non-delete changes that found no task
    problem_records: tuple[ChangeRecord, ...]
    plan: Plan | None = None  #: the run's plan.json: who planned it, for which tenant URL

    @classmethod
    def load(cls, run_dir: RunDir) -> RunReport:
        """Read a run; a planned change with no audit record yet shows as PENDING.

        The audit chain is checked as it is read: RunFileError if it is broken or cut short.
        """
        meta = run_dir.meta()
        records = {r.index: r for r in run_dir.changes()}
        plan = Plan.read(run_dir.plan)
        rows = tuple(Row.of(i, c, records.get(i)) for i, c in enumerate(plan.changes))
        return cls(
            run_dir.run_id,
            meta.tenant,
            meta.job,
            shown_state(run_dir, meta),
            meta,
            Summary.read(run_dir.summary),
            rows,
            tuple(r for r in records.values() if is_failure(r.outcome.value, r.method)),
            plan,
        )

    def by_outcome(self) -> dict[str, int]:
        """Changes per outcome, pending included."""
        return dict(Counter(str(r.outcome) for r in self.rows))

    def by_action(self) -> dict[str, dict[str, int]]:
        """Changes per action, then per outcome."""
        table: dict[str, Counter[str]] = {}
        for r in self.rows:
            table.setdefault(r.action, Counter())[str(r.outcome)] += 1
        return {action: dict(c) for action, c in table.items()}

    @property
    def problems(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.is_problem)

    def to_json(self) -> dict[str, Any]:
        """What `show --format json` prints: meta, summary, problems, then every change."""
        return {
            "run": self.meta.to_json(),
            "state": self.state,
            "summary": None if self.summary is None else self.summary.to_json(),
            "problems": [r.to_json() for r in self.problem_records],
            "side_effects": [_side_effect_json(r) for r in self.rows if r.side_effects],
            "counts": self.by_outcome(),
            "by_action": self.by_action(),
            "changes": [r.to_json() for r in self.rows],
        }


def _side_effect_json(row: Row) -> dict[str, Any]:
    return {
        "index": row.index,
        "task_id": row.task_id,
        "name": row.name,
        "action": row.action,
        "side_effects": list(row.side_effects),
        "observed": None if row.observed is None else dict(row.observed),
    }


@dataclass(frozen=True)
class RunListing:
    """One line of `runs`: which run, where, when, how it stands."""

    run_id: str
    job: str
    tenant: str
    started: str
    state: str
    exit_code: int | None
    planned: int | None  #: changes in the plan, when known without reading it
    counts: Mapping[str, int]  #: outcomes so far; PENDING for what is left of an unfinished run

    @classmethod
    def load(cls, run_dir: RunDir) -> RunListing:
        meta = run_dir.meta()
        summary = Summary.read(run_dir.summary)
        planned, counts = (
            _progress(run_dir) if summary is None else (summary.planned, dict(summary.counts))
        )
        return cls(
            run_dir.run_id,
            meta.job,
            meta.tenant,
            meta.started,
            shown_state(run_dir, meta),
            meta.exit_code,
            planned,
            counts,
        )

    def counts_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "tenant": self.tenant,
            "started": self.started,
            "state": self.state,
            "exit_code": self.exit_code,
            "planned": self.planned,
            "counts": dict(self.counts),
        }


def _progress(run_dir: RunDir) -> tuple[int | None, dict[str, int]]:
    """Counts of an unfinished run from its audit log; the run-start record says what is planned."""
    planned: int | None = None
    counts: Counter[str] = Counter()
    for r in read_records(run_dir.audit) if run_dir.audit.exists() else ():
        if r.get("event") == "run-start" and isinstance(r.get("planned"), int):
            planned = r["planned"]
    for change in run_dir.changes():
        counts[change.outcome.value] += 1
    if planned is not None and planned > counts.total():
        counts[PENDING] = planned - counts.total()
    return planned, dict(counts)


def list_runs(state_dir: Path, warn: Callable[[str], None] | None = None) -> list[RunListing]:
    """Every run under `<state_dir>/runs`, oldest first (run ids start with their UTC time).

    A run whose files cannot be read (a corrupt run.json or summary.json, a broken audit
    chain) is left out, with one `warn` line naming it; the others are still listed.
    """
    root = state_dir / "runs"
    found: list[RunListing] = []
    for name in run_names(root):
        try:
            found.append(RunListing.load(RunDir(root / name)))
        except UsageError as exc:
            if warn is not None:
                warn(f"warning: run {name} skipped: {exc}")
    return found
