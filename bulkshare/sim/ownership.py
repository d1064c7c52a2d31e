"""What a change of owner does to a task, by the tenant's rules: the new owner's name and errors,
whether the service disables the task, and whether the old owner's errors go at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkshare.sim.errors import SimError
from bulkshare.sim.rules import Answer, TaskRules
from bulkshare.sim.vocab import TaskError, UserStatus, values

__all__ = ["OWNER_ACCESS_ERRORS", "Owners", "change_owner", "resolve_owner", "set_enabled"]

Json = dict[str, Any]

#: task errors a new owner without access to the app may bring to a task
OWNER_ACCESS_ERRORS = values(
    [TaskError.OWNER_ACCESS, TaskError.OWNER_LICENSE, TaskError.OWNER_INSUFFICIENT_PERMISSIONS]
)
#: the errors of a task whose owner is gone or disabled
_OWNER_ERRORS = frozenset({TaskError.ORPHAN.value, TaskError.OWNER_DISABLED.value})
_OWNERSHIP_CHANGE = TaskError.DISABLED_DUE_TO_OWNERSHIP_CHANGE.value
_UNKNOWN = object()  # marks an accepted owner id no user has


@dataclass(frozen=True, slots=True)
class Owners:
    """The users a task may be given to, and the errors some of them bring along."""

    users: Mapping[str, Json]
    #: user id -> task errors (OWNER_ACCESS, OWNER_LICENSE, OWNER_INSUFFICIENT_PERMISSIONS) a
    #: task gets when that user becomes its owner: a user without access to the app
    errors: Mapping[str, Sequence[str]] = field(default_factory=dict)


def resolve_owner(user_id: str, owners: Owners, rules: TaskRules) -> Json:
    """The user `/ownerId` names; an unknown id answers as the rules say, a deleted one 400."""
    user = owners.users.get(user_id)
    if user is None:
        if rules.unknown_owner is Answer.ACCEPTED:
            return {"id": user_id, "name": "", "status": _UNKNOWN}
        status = 404 if rules.unknown_owner is Answer.NOT_FOUND else 400
        raise SimError(status, f"/ownerId: user {user_id!r} does not exist")
    if user.get("status") == UserStatus.DELETED:
        raise SimError(400, f"/ownerId: user {user_id!r} is deleted")
    return user


def change_owner(task: Json, user: Json, now: str, rules: TaskRules, owners: Owners) -> None:
    """Give `task` to `user`: the owner's name, and the errors the new owner brings or clears."""
    task["owner"] = user["id"]
    task["ownerName"] = user.get("name", "")
    errors = list(task.get("taskErrors", []))
    if rules.owner_change_clears_errors:
        errors = [e for e in errors if e.get("value") not in _OWNER_ERRORS]
    problem = _problem_of(user)
    brought = [problem] if problem else []
    brought += owners.errors.get(user["id"], ())
    present = {e.get("value") for e in errors}
    errors += [{"value": value, "timestamp": now} for value in brought if value not in present]
    task["taskErrors"] = errors
    if problem is not None:
        task["enabledBySystem"] = False
    elif rules.owner_change_clears_errors:
        task["enabledBySystem"] = True


def _problem_of(user: Json) -> str | None:
    if user.get("status") is _UNKNOWN:
        return TaskError.ORPHAN.value
    if user.get("status") == UserStatus.DISABLED:
        return TaskError.OWNER_DISABLED.value
    return None


def set_enabled(task: Json, enabled: bool, now: str, *, flag: bool) -> None:
    """Set `enabled`; enabling clears DISABLED_DUE_TO_OWNERSHIP_CHANGE, and a disable the owner
    change caused (`flag`) sets it."""
    task["enabled"] = enabled
    task["enabledByUser"] = enabled
    errors = list(task.get("taskErrors", []))
    flagged = any(e.get("value") == _OWNERSHIP_CHANGE for e in errors)
    if enabled:
        errors = [e for e in errors if e.get("value") != _OWNERSHIP_CHANGE]
    elif flag and not flagged:
        errors.append({"value": _OWNERSHIP_CHANGE, "timestamp": now})
    task["taskErrors"] = errors
