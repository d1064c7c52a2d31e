"""Action kinds -> their effect on one task: the PATCH fields, a delete, or a POST action.

An effect is computed against the task as earlier operations left it; None means the task is
already in the target state (skipped, no request).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from bulkshare.job import ActionKind, Operation
from bulkshare.vocab import field_for_path

__all__ = [
    "DELETE_GUARD_FIELDS",
    "Effect",
    "EffectKind",
    "apply_effect",
    "effect_of",
    "error_values",
    "fields_read",
    "new_owner_for",
]

_REMOVED = None  # a `remove` op leaves the field empty


class EffectKind(StrEnum):
    """What an operation does to a task."""

    PATCH = "patch"  # PATCH /{id} with replace/remove ops
    DELETE = "delete"  # DELETE /{id}
    EXECUTE = "execute"  # POST /actions/execute
    CANCEL = "cancel"  # POST /{id}/actions/cancel
    CREATE = "create"  # POST / of a copy (bulkshare.copy): create, then owner/enabled, verify


@dataclass(frozen=True)
class Effect:
    """One operation's effect on one task."""

    kind: EffectKind
    #: PATCH path -> new value (None for remove), in the order written
    fields: Mapping[str, Any] = field(default_factory=dict)
    #: reassign-owner `keep_enabled`: a task the service disables for its new owner is
    #: enabled again (nothing in the plan relies on what the service does)
    keep_enabled: bool = False


#: fields a planned delete expects unchanged when it is re-read before sending
DELETE_GUARD_FIELDS = ("owner", "enabled", "statusCode")
#: fields every operation reads: the id, and statusCode (a DELETING task is left alone)
_ALWAYS_READ = frozenset({"id", "statusCode"})
#: action -> the task fields its effect is computed from (a patch writes whole values: none)
_ACTION_READS: Mapping[ActionKind, frozenset[str]] = {
    ActionKind.DELETE: frozenset(DELETE_GUARD_FIELDS),
    ActionKind.DISABLE: frozenset({"enabled"}),
    ActionKind.ENABLE: frozenset({"enabled"}),
    ActionKind.REASSIGN_OWNER: frozenset({"owner", "enabled"}),
    ActionKind.TAG: frozenset({"tags"}),
    ActionKind.UNTAG: frozenset({"tags"}),
}


@lru_cache(maxsize=64)
def fields_read(operations: tuple[Operation, ...]) -> frozenset[str]:
    """The task fields a job's operations read to match a task or to compute its writes."""
    read = set(_ALWAYS_READ)
    for op in operations:
        read |= op.where.fields_read | _ACTION_READS.get(op.action, frozenset())
    return frozenset(read)


def effect_of(op: Operation, task: Mapping[str, Any]) -> Effect | None:
    """The effect of `op` on `task`, or None if the task is already as `op` wants it."""
    kind = op.action
    if kind is ActionKind.DELETE:
        return Effect(EffectKind.DELETE)
    if kind is ActionKind.EXECUTE:
        return Effect(EffectKind.EXECUTE)
    if kind is ActionKind.CANCEL:
        return Effect(EffectKind.CANCEL)
    if kind in (ActionKind.DISABLE, ActionKind.ENABLE):
        wanted = kind is ActionKind.ENABLE
        return None if task.get("enabled") is wanted else _patch({"/enabled": wanted})
    if kind is ActionKind.REASSIGN_OWNER:
        return _reassign(op, task)
    if kind in (ActionKind.TAG, ActionKind.UNTAG):
        return _retag(op, task)
    return _generic_patch(op, task)


def _patch(fields: dict[str, Any], keep_enabled: bool = False) -> Effect:
    return Effect(EffectKind.PATCH, fields, keep_enabled)


def new_owner_for(op: Operation, owner: Any) -> str | None:
    """The owner `op` assigns to a task owned by `owner` (None: this op has no say)."""
    if op.to is not None:
        return str(op.to)
    if op.mapping is not None and isinstance(owner, str):
        return str(op.mapping[owner]) if owner in op.mapping else None
    return None


def _reassign(op: Operation, task: Mapping[str, Any]) -> Effect | None:
    new = new_owner_for(op, task.get("owner"))
    if new is None:
        return None
    if new == task.get("owner"):
        if op.enable and task.get("enabled") is not True:
            return _patch({"/enabled": True})
        return None
    if op.enable:
        return _patch({"/ownerId": new, "/enabled": True})
    # whether the service disables a task whose owner changes is not established: the plan
    # expects it may (Change.expect), and the view is left as it is, so nothing relies on it
    return _patch({"/ownerId": new}, op.keep_enabled)


def _retag(op: Operation, task: Mapping[str, Any]) -> Effect | None:
    current = [t for t in task.get("tags") or [] if isinstance(t, str)]
    if op.action is ActionKind.TAG:
        wanted = current + [t for t in op.tags if t not in current]
    else:
        wanted = [t for t in current if t not in op.tags]
    return None if wanted == current else _patch({"/tags": wanted})


def _generic_patch(op: Operation, task: Mapping[str, Any]) -> Effect | None:
    fields: dict[str, Any] = {}
    for p in op.ops:
        fields[p.path] = p.value if p.op == "replace" else _REMOVED
    changed = {p: v for p, v in fields.items() if task.get(field_for_path(p)) != v}
    return _patch(changed) if changed else None


def apply_effect(task: dict[str, Any], effect: Effect) -> None:
    """Change the planner's view of `task` by what the request writes (and nothing more: what
    the service may do besides is not established, so later operations never rely on it)."""
    for path, value in effect.fields.items():
        task[field_for_path(path)] = value


def error_values(task: Mapping[str, Any]) -> list[str]:
    """The distinct `taskErrors[].value` strings of a task, sorted."""
    errors = task.get("taskErrors")
    if not isinstance(errors, list):
        return []
    found = {e.get("value") for e in errors if isinstance(e, Mapping)}
    return sorted(v for v in found if isinstance(v, str))
