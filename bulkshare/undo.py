"""The inverse of a finished run, built from its audit log: owners, enabled flags, tags and
patched fields back as they were; deleted tasks recreated, copies deleted (bulkshare.copy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bulkshare.audit import utc_now
from bulkshare.copy.undo import NotRestorable, creates_or_deletes, undo_create_or_delete
from bulkshare.errors import RunFileError, UsageError
from bulkshare.plan import Change, Plan
from bulkshare.plan.change import NEW_OWNER, NEW_OWNER_NAME
from bulkshare.plan.effects import error_values
from bulkshare.run import ChangeRecord, Outcome, RunDir, RunState
from bulkshare.vocab import PATH_FIELDS, task_path

__all__ = ["UndoPlan", "build_undo"]

#: task field -> the PATCH path that writes it
FIELD_PATHS = {field_name: path for path, field_name in PATH_FIELDS.items()}
# fields the service refuses to `remove`: an empty value is written back instead
_NOT_REMOVABLE = {"name", "owner", "enabled"}


@dataclass
class UndoPlan:
    """The inverse plan and what cannot be reversed."""

    plan: Plan
    irreversible: list[ChangeRecord] = field(default_factory=list)
    #: deletes and copies that cannot be reversed, with why (bulkshare.copy.undo)
    not_restorable: list[NotRestorable] = field(default_factory=list)


def build_undo(run_dir: RunDir, marker_source: Callable[[str], str] | None = None) -> UndoPlan:
    """The inverse of every applied change of a finished run, newest first.

    The audit chain is checked first (RunFileError if broken or cut short), and each record
    must match the plan's change it records: a changed log must never choose what undo writes.
    """
    meta = run_dir.meta()
    if meta.state is not RunState.FINISHED:
        raise UsageError(
            f"run {run_dir.run_id} is {meta.state.value}, not finished: "
            f"resume it first (bulkshare resume {run_dir.run_id})"
        )
    records = run_dir.changes()
    original = Plan.read(run_dir.plan)
    undo = UndoPlan(
        Plan(
            original.tenant,
            _undo_name(original.job_name),
            f"undo of run {run_dir.run_id}",
            original.job_sha256,
            utc_now(),
            # bound where the run was: undo goes to the same tenant URL, as its caller allows
            tenant_url=original.tenant_url,
            caller=original.caller,
            scope=original.scope,
        )
    )
    applied = [r for r in records if r.outcome is Outcome.APPLIED]
    for record in applied:
        _check_against_plan(run_dir, record, original)
    now = datetime.now(UTC)
    source = (marker_source or (lambda _tenant: "sim"))(original.tenant)
    for record in reversed(applied):
        if creates_or_deletes(record):
            # deletes are recreated from their documents, copies deleted by their target ids
            changes, refused = undo_create_or_delete(record, source, now)
            undo.plan.changes.extend(changes)
            undo.not_restorable.extend(refused)
            continue
        inverse = _inverse(record, original.changes[record.index])
        if inverse is None:
            undo.irreversible.append(record)
        else:
            undo.plan.changes.append(inverse)
    undo.plan.scanned = len(applied)
    return undo


def _check_against_plan(run_dir: RunDir, record: ChangeRecord, plan: Plan) -> None:
    """RunFileError unless the record is of the plan's change at its index, as planned.

    The chain proves the log whole, not who wrote it: a log rewritten and re-chained would
    pass, so what undo writes back (the before-state) must also be what the plan says.
    """
    change = plan.changes[record.index] if 0 <= record.index < len(plan.changes) else None
    if change is None or (record.task_id, record.method, record.path, dict(record.before)) != (
        change.task_id,
        change.method,
        change.path,
        dict(change.before),
    ):
        raise RunFileError(
            f"{run_dir.audit}: record of change {record.index} does not match the run's plan; "
            "refusing to undo from it"
        )


def _undo_name(job: str) -> str:
    # undoing an undo gives the original job's name back
    return job.removeprefix("undo-") if job.startswith("undo-") else f"undo-{job}"


def _inverse(record: ChangeRecord, change: Change) -> Change | None:
    """The PATCH writing back what `record` overwrote (`change`: its planned change, checked).

    A task enabled before an owner change is kept enabled by its undo too: written back with
    the owner when it reads disabled now, else expected so (enabled again if the service
    disables it for the owner given back), whatever the service does on an owner change.
    """
    if record.method != "PATCH":
        return None
    restore = dict(record.before)
    undo_before = dict(record.after or {})
    if not restore or set(restore) - set(FIELD_PATHS):
        return None
    expect: dict[str, Any] = {}
    if "owner" in restore and change.expect.get("enabled") is not None:
        enabled = _enabled_after(record)
        if enabled is False:
            restore["enabled"], undo_before["enabled"] = True, False
        else:
            expect = {"enabled": True, "taskErrors": error_values(record.observed or {})}
    ordered = _ordered(restore)
    body = [_op(name, value) for name, value in ordered]
    actions = tuple(f"undo-{a}" for a in record.action.split("+"))
    path = task_path(record.task_id)
    return Change(
        record.task_id,
        actions,
        "PATCH",
        path,
        body,
        undo_before,
        dict(ordered),
        _undo_identity(record.task),
        expect=expect,
    )


def _enabled_after(record: ChangeRecord) -> bool | None:
    """`enabled` as the run left it: read back, then enabled again if it was; None: unknown."""
    again = record.reenable
    if again is not None and again.get("outcome") == Outcome.APPLIED.value:
        return True
    observed = record.observed.get("enabled") if record.observed is not None else None
    return observed if isinstance(observed, bool) else None


def _undo_identity(task: Mapping[str, Any]) -> dict[str, Any]:
    """The task as the undo finds it: the run's new owner is its owner, the old one its next."""
    ident = dict(task)
    if NEW_OWNER in ident:
        ident[NEW_OWNER], ident["owner"] = ident.get("owner"), ident[NEW_OWNER]
        old_name, new_name = ident.get("ownerName"), ident.get(NEW_OWNER_NAME)
        ident[NEW_OWNER_NAME] = old_name if isinstance(old_name, str) else ""
        ident["ownerName"] = new_name
    return ident


def _ordered(fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
    # the owner first: an owner change disables the task unless /enabled follows it
    return sorted(fields.items(), key=lambda item: item[0] != "owner")


def _op(name: str, value: Any) -> dict[str, Any]:
    path = FIELD_PATHS[name]
    if value is None and name not in _NOT_REMOVABLE:
        return {"op": "remove", "path": path}
    return {"op": "replace", "path": path, "value": value}
