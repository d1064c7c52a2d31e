"""PATCH of a sharing task: the JSON array of {op, path, value} checked, then applied atomically.

Domain rules of the real service live here: an owner change disables the task unless the same
PATCH enables it, and a new active owner clears the ORPHAN / OWNER_DISABLED errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulkshare.sim import checks
from bulkshare.sim.errors import SimError

__all__ = ["PATCH_PATHS", "PatchOp", "apply_patch", "parse_patch"]

Json = dict[str, Any]

_OWNER_ERRORS = frozenset({"ORPHAN", "OWNER_DISABLED"})
_OWNERSHIP_CHANGE = "DISABLED_DUE_TO_OWNERSHIP_CHANGE"


@dataclass(frozen=True, slots=True)
class PatchOp:
    """One checked operation of a PATCH body."""

    op: str  # "replace" or "remove"
    path: str  # one of PATCH_PATHS
    value: Any


#: PATCH path -> (task field it sets, or None for no stored field; value check)
PATCH_PATHS: Mapping[str, tuple[str | None, checks.Check]] = {
    "/name": ("name", checks.non_empty_string),
    "/tags": ("tags", checks.string_list),
    "/ownerId": ("owner", checks.non_empty_string),
    "/enabled": ("enabled", checks.boolean),
    "/description": ("description", checks.max_string(255)),
    "/scheduleOptions": ("scheduleOptions", checks.schedule),
    "/templates": ("templates", checks.templates),
    "/recipients": ("recipients", checks.recipients),
    "/recipient": (None, checks.json_object),  # accepted as documented; stores nothing
    "/sharePointFolder": ("sharePointFolder", checks.string),
    "/dataConnectionID": ("dataConnectionID", checks.string),
    "/transportChannels": ("transportChannels", checks.channels),
    "/bookmarkId": ("bookmarkId", checks.string),
}
_NOT_REMOVABLE = frozenset({"/name", "/ownerId", "/enabled"})


def parse_patch(body: Any) -> list[PatchOp]:
    """Check a PATCH body; raise a 400 SimError naming the first bad operation."""
    if not isinstance(body, list):
        raise SimError(400, "PATCH body must be a JSON array of {op, path, value}")
    if not body:
        raise SimError(400, "PATCH body must contain at least one operation")
    return [_parse_op(index, item) for index, item in enumerate(body)]


def _parse_op(index: int, item: Any) -> PatchOp:
    where = f"operation {index}"
    if not isinstance(item, dict):
        raise SimError(400, f"{where}: expected an object with op, path, value")
    extra = set(item) - {"op", "path", "value"}
    if extra:
        raise SimError(400, f"{where}: unexpected keys {sorted(extra)}")
    op, path = item.get("op"), item.get("path")
    if op not in ("replace", "remove"):
        raise SimError(400, f'{where}: op must be "replace" or "remove", got {op!r}')
    if not isinstance(path, str) or path not in PATCH_PATHS:
        raise SimError(400, f"{where}: path {path!r} is not one of {sorted(PATCH_PATHS)}")
    if op == "remove":
        if path in _NOT_REMOVABLE:
            raise SimError(400, f"{where}: {path} cannot be removed")
        return PatchOp(op, path, None)
    if "value" not in item:
        raise SimError(400, f"{where}: replace needs a value")
    problem = PATCH_PATHS[path][1](item["value"])
    if problem:
        raise SimError(400, f"{where}: {path} {problem}")
    return PatchOp(op, path, item["value"])


def apply_patch(
    task: Json, ops: list[PatchOp], users: Mapping[str, Json], actor: str, now: str
) -> None:
    """Apply checked `ops` to `task` at once; a 400 SimError leaves the task untouched."""
    new_owner = _new_owner(ops, users)
    enable: bool | None = None
    for op in ops:
        if op.path == "/enabled":
            enable = bool(op.value)
        elif op.path not in ("/ownerId", "/recipient"):
            _set_field(task, op)
    owner_changed = new_owner is not None and new_owner["id"] != task.get("owner")
    if new_owner is not None and owner_changed:
        _change_owner(task, new_owner, now)
        enable = enable is True
    if enable is not None:
        _set_enabled(task, enable, now, owner_changed=owner_changed)
    task["lastUpdated"] = now
    task["updatedBy"] = actor


def _new_owner(ops: list[PatchOp], users: Mapping[str, Json]) -> Json | None:
    owner_ops = [op for op in ops if op.path == "/ownerId"]
    if not owner_ops:
        return None
    user_id = owner_ops[-1].value
    user = users.get(user_id)
    if user is None:
        raise SimError(400, f"/ownerId: user {user_id!r} does not exist")
    if user.get("status") == "deleted":
        raise SimError(400, f"/ownerId: user {user_id!r} is deleted")
    return user


def _set_field(task: Json, op: PatchOp) -> None:
    field = PATCH_PATHS[op.path][0]
    assert field is not None
    if op.op == "remove":
        task.pop(field, None)
    else:
        task[field] = op.value


def _change_owner(task: Json, user: Json, now: str) -> None:
    task["owner"] = user["id"]
    task["ownerName"] = user.get("name", "")
    errors = [e for e in task.get("taskErrors", []) if e.get("value") not in _OWNER_ERRORS]
    disabled = user.get("status") == "disabled"
    if disabled:
        errors.append({"value": "OWNER_DISABLED", "timestamp": now})
    task["taskErrors"] = errors
    task["enabledBySystem"] = not disabled


def _set_enabled(task: Json, enabled: bool, now: str, *, owner_changed: bool) -> None:
    task["enabled"] = enabled
    task["enabledByUser"] = enabled
    errors = list(task.get("taskErrors", []))
    flagged = any(e.get("value") == _OWNERSHIP_CHANGE for e in errors)
    if enabled:
        errors = [e for e in errors if e.get("value") != _OWNERSHIP_CHANGE]
    elif owner_changed and not flagged:
        errors.append({"value": _OWNERSHIP_CHANGE, "timestamp": now})
    task["taskErrors"] = errors
