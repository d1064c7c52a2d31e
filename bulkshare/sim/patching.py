"""PATCH of a sharing task: the JSON array of {op, path, value} checked, then applied atomically
with the tenant's rules for a change of owner (see apply_patch and ownership.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulkshare.sim import checks
from bulkshare.sim.errors import SimError
from bulkshare.sim.ownership import Owners, change_owner, resolve_owner, set_enabled
from bulkshare.sim.rules import TaskRules, check_known_apps, check_start_age
from bulkshare.sim.vocab import PATCH_OPS, PatchOp, PatchPath

__all__ = ["PATH_RULES", "CheckedOp", "PatchContext", "apply_patch", "check_ops", "parse_patch"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PatchContext:
    """What a PATCH is applied with: the possible owners, who sends it, when, under which rules."""

    owners: Owners
    actor: str
    now: str
    rules: TaskRules


@dataclass(frozen=True, slots=True)
class CheckedOp:
    """One checked operation of a PATCH body."""

    op: PatchOp
    path: PatchPath
    value: Any


#: PATCH path -> (task field it sets, or None for no stored field; value check)
PATH_RULES: Mapping[PatchPath, tuple[str | None, checks.Check]] = {
    PatchPath.NAME: ("name", checks.non_empty_string),
    PatchPath.TAGS: ("tags", checks.string_list),
    PatchPath.OWNER_ID: ("owner", checks.non_empty_string),
    PatchPath.ENABLED: ("enabled", checks.boolean),
    PatchPath.DESCRIPTION: ("description", checks.max_string(255)),
    PatchPath.SCHEDULE_OPTIONS: ("scheduleOptions", checks.schedule),
    PatchPath.TEMPLATES: ("templates", checks.templates),
    PatchPath.RECIPIENTS: ("recipients", checks.recipients),
    PatchPath.RECIPIENT: (None, checks.json_object),  # accepted as documented; stores nothing
    PatchPath.SHARE_POINT_FOLDER: ("sharePointFolder", checks.string),
    PatchPath.DATA_CONNECTION_ID: ("dataConnectionID", checks.string),
    PatchPath.TRANSPORT_CHANNELS: ("transportChannels", checks.channels),
    PatchPath.BOOKMARK_ID: ("bookmarkId", checks.string),
}
_NOT_REMOVABLE = frozenset({PatchPath.NAME, PatchPath.OWNER_ID, PatchPath.ENABLED})
#: the fields apply_patch handles itself rather than storing the value as sent
_NOT_STORED = frozenset({PatchPath.OWNER_ID, PatchPath.RECIPIENT})
_OPS_TEXT = " or ".join(f'"{op}"' for op in PATCH_OPS)


def parse_patch(body: Any) -> list[CheckedOp]:
    """Check a PATCH body; raise a 400 SimError naming the first bad operation."""
    if not isinstance(body, list):
        raise SimError(400, "PATCH body must be a JSON array of {op, path, value}")
    if not body:
        raise SimError(400, "PATCH body must contain at least one operation")
    return [_parse_op(index, item) for index, item in enumerate(body)]


def _parse_op(index: int, item: Any) -> CheckedOp:
    where = f"operation {index}"
    if not isinstance(item, dict):
        raise SimError(400, f"{where}: expected an object with op, path, value")
    extra = set(item) - {"op", "path", "value"}
    if extra:
        raise SimError(400, f"{where}: unexpected keys {sorted(extra)}")
    op, path = _op_and_path(where, item.get("op"), item.get("path"))
    if op is PatchOp.REMOVE:
        if path in _NOT_REMOVABLE:
            raise SimError(400, f"{where}: {path} cannot be removed")
        return CheckedOp(op, path, None)
    if "value" not in item:
        raise SimError(400, f"{where}: replace needs a value")
    problem = PATH_RULES[path][1](item["value"])
    if problem:
        raise SimError(400, f"{where}: {path} {problem}")
    return CheckedOp(op, path, item["value"])


def _op_and_path(where: str, op: Any, path: Any) -> tuple[PatchOp, PatchPath]:
    if not isinstance(op, str) or op not in PATCH_OPS:
        raise SimError(400, f"{where}: op must be {_OPS_TEXT}, got {op!r}")
    if not isinstance(path, str) or path not in PATH_RULES:
        known = sorted(p.value for p in PATH_RULES)
        raise SimError(400, f"{where}: path {path!r} is not one of {known}")
    return PatchOp(op), PatchPath(path)


def check_ops(ops: list[CheckedOp], apps: Mapping[str, Json], rules: TaskRules) -> None:
    """400 SimError if an operation names an app the tenant lacks or starts a schedule too early."""
    for op in ops:
        if op.op is not PatchOp.REPLACE:
            continue
        if op.path is PatchPath.TEMPLATES:
            check_known_apps(op.value, apps, rules)
        elif op.path is PatchPath.SCHEDULE_OPTIONS:
            check_start_age(op.value, rules)


def apply_patch(task: Json, ops: list[CheckedOp], ctx: PatchContext) -> None:
    """Apply checked `ops` to `task` at once; a SimError leaves the task untouched."""
    # by default, as the simulator always has: an owner change disables the task unless the
    # same PATCH enables it, and a new active owner clears the ORPHAN / OWNER_DISABLED errors
    new_owner = _new_owner(ops, ctx)
    enable: bool | None = None
    for op in ops:
        if op.path is PatchPath.ENABLED:
            enable = bool(op.value)
        elif op.path not in _NOT_STORED:
            _set_field(task, op)
    owner_changed = new_owner is not None and new_owner["id"] != task.get("owner")
    if new_owner is not None and owner_changed:
        change_owner(task, new_owner, ctx.now, ctx.rules, ctx.owners)
        if ctx.rules.owner_change_disables:
            enable = enable is True
    if enable is not None:
        flag = owner_changed and ctx.rules.owner_change_disables
        set_enabled(task, enable, ctx.now, flag=flag)
    task["lastUpdated"] = ctx.now
    task["updatedBy"] = ctx.actor


def _new_owner(ops: list[CheckedOp], ctx: PatchContext) -> Json | None:
    owner_ops = [op for op in ops if op.path is PatchPath.OWNER_ID]
    if not owner_ops:
        return None
    return resolve_owner(owner_ops[-1].value, ctx.owners, ctx.rules)


def _set_field(task: Json, op: CheckedOp) -> None:
    field = PATH_RULES[op.path][0]
    assert field is not None
    if op.op is PatchOp.REMOVE:
        task.pop(field, None)
    else:
        task[field] = op.value
