"""The users a plan would make owners, resolved through the users API before any write.

A new owner the tenant does not have, or one deleted, disabled or invited, refuses the plan
(the job's mistake, exit 2); the others' display names go into the changes for people to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bulkshare.errors import JobFileError
from bulkshare.job import ActionKind, Job, Operation
from bulkshare.plan.change import NEW_OWNER, NEW_OWNER_NAME, Change, Plan, quoted
from bulkshare.plan.owners import OwnerDirectory

__all__ = ["REFUSED_STATUSES", "check_targets", "owner_written"]

#: user statuses that cannot take over a task (`provisioned` can: the user exists, unsigned-in)
REFUSED_STATUSES = ("deleted", "disabled", "invited")
#: ids named in the one-line refusal before "and N more"
_SHOWN_IDS = 5
_OWNER_PATH = "/ownerId"


def owner_written(change: Change) -> str | None:
    """The user id a change's PATCH writes to /ownerId, if it writes one."""
    if change.method != "PATCH" or not isinstance(change.body, list):
        return None
    for op in change.body:
        if isinstance(op, dict) and op.get("path") == _OWNER_PATH and op.get("op") == "replace":
            value = op.get("value")
            return value if isinstance(value, str) else None
    return None


async def check_targets(plan: Plan, job: Job, users: OwnerDirectory, tenant: str) -> None:
    """Resolve every new owner the plan writes (100 per users-filter request, cached ones not
    again); JobFileError naming the operation and the ids if any cannot own a task, else give
    each change its new owner's display name."""
    targets = {owner for c in plan.changes if (owner := owner_written(c)) is not None}
    if not targets:
        return
    users.want(targets)
    await users.lookup_wanted()
    refused = {t: why for t in sorted(targets) if (why := _refusal(users.status_of(t)))}
    if refused:
        raise _refusal_error(job, refused, tenant)
    plan.changes[:] = list(_named(plan.changes, users))


def _refusal(status: str | None) -> str | None:
    if status is None:
        return "not a user of the tenant"
    return status if status in REFUSED_STATUSES else None


def _named(changes: Iterable[Change], users: OwnerDirectory) -> Iterator[Change]:
    for change in changes:
        owner = owner_written(change)
        if owner is None:
            yield change
            continue
        names = {NEW_OWNER: owner, NEW_OWNER_NAME: users.name_of(owner) or ""}
        yield replace(change, task={**change.task, **names})


def _refusal_error(job: Job, refused: Mapping[str, str], tenant: str) -> JobFileError:
    """One line: the first operation that writes a refused id, the ids, and the others."""
    ops = [(op, ids) for op in job.operations if (ids := _written_by(op, refused))]
    first, ids = ops[0] if ops else (job.operations[0], sorted(refused))
    shown = ", ".join(f"{quoted(i)} ({refused[i]})" for i in ids[:_SHOWN_IDS])
    more = f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else ""
    noun = "new owner" if len(ids) == 1 else "new owners"
    also = "".join(f"; also operations[{op.index}] at line {op.line}" for op, _ in ops[1:4])
    return JobFileError(
        job.path,
        first.line,
        f"operations[{first.index}].{_key(first)}",
        f"{noun} {shown}{more} cannot own tasks on tenant {tenant}{also}; nothing was changed",
    )


def _written_by(op: Operation, refused: Mapping[str, str]) -> list[str]:
    return sorted(set(_owners_of(op)) & set(refused))


def _owners_of(op: Operation) -> Sequence[str]:
    """The user ids an operation may write as owner."""
    if op.action is ActionKind.REASSIGN_OWNER:
        return [op.to] if op.to else list((op.mapping or {}).values())
    values: list[Any] = [p.value for p in op.ops if p.path == _OWNER_PATH and p.op == "replace"]
    return [v for v in values if isinstance(v, str)]


def _key(op: Operation) -> str:
    if op.action is not ActionKind.REASSIGN_OWNER:
        return "ops"
    return "to" if op.to else "mapping"
