"""A copy job (or a restore) -> a Plan of create changes: each source task's mapped create
request, its target owner by name, and what is already in the target (skipped as done).

Every id no map names is collected by kind; with `unmapped = "refuse"` any of them refuses the
plan (exit 2) before a write, and so does a target owner the target tenant cannot give a task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkshare.client import ApiClient
from bulkshare.copy.body import MappedTask, app_of, map_task
from bulkshare.copy.marker import MAX_MARKER, is_marker, marker_for, source_of_marker
from bulkshare.copy.source import SourceTasks
from bulkshare.copy.step import DELETE_SOURCE
from bulkshare.copy.target import TargetIndex, read_target
from bulkshare.copy.users import UserInfo, owner_problem, resolve_users
from bulkshare.errors import JobFileError
from bulkshare.job.copy_keys import MAP_KINDS, EnabledRule, IdMaps, Unmapped
from bulkshare.plan.change import DELETE_GUARD_FIELDS, IDENTITY_FIELDS, Change, Plan, quoted
from bulkshare.vocab import TASKS_PATH, UnsafeId, check_id, task_path

__all__ = [
    "COPY_ACTION",
    "RESTORE_ACTION",
    "CopyRules",
    "TargetIndex",
    "build_copy_plan",
    "read_target",
]

COPY_ACTION = "copy"
RESTORE_ACTION = "restore"
#: ids named in one refusal line, per kind, before "and N more"
_SHOWN = 5


@dataclass(frozen=True)
class CopyRules:
    """How a copy treats what it reads (a job's [copy] table, or undo's fixed rules)."""

    maps: IdMaps
    unmapped: Unmapped = Unmapped.REFUSE
    enabled: EnabledRule = EnabledRule.AS_SOURCE
    delete_source: bool = False
    action: str = COPY_ACTION
    #: where a refusal points: the job file, its [copy] line (None: no file, e.g. undo)
    job_path: Path | None = None
    line: int | None = None
    #: a target owner that cannot own tasks: refuse the plan (a job), or leave the task out
    #: and list it (undo)
    refuse_owners: bool = True


@dataclass
class _Draft:
    """A plan being built: the creates, and what each source task came to."""

    creates: list[tuple[Mapping[str, Any], MappedTask, str]] = field(default_factory=list)
    deletes: list[Change] = field(default_factory=list)
    present: dict[str, str] = field(default_factory=dict)  #: source id -> target id
    not_copied: dict[str, list[str]] = field(default_factory=dict)  #: reason -> source ids
    unmapped: dict[str, dict[str, list[str]]] = field(default_factory=dict)  #: kind->id->tasks
    rebased: int = 0

    def leave(self, reason: str, task_id: str) -> None:
        self.not_copied.setdefault(reason, []).append(task_id)


async def build_copy_plan(
    target: ApiClient,
    tenant: str,
    source: SourceTasks,
    rules: CopyRules,
    plan: Plan,
    now: datetime,
) -> Plan:
    """Fill `plan` (made by the caller, for the job or the undo) with the copy of `source`."""
    index = await read_target(target)
    same_tenant = not source.from_file and source.tenant == tenant
    draft = _Draft()
    for listed in source.tasks:
        _draft_task(draft, listed, source, rules, index, same_tenant, now)
    _refuse_unmapped(draft, rules)
    users = await resolve_users(target, (m.owner for _, m, _ in draft.creates))
    for doc, mapped, marker in draft.creates:
        problem = owner_problem(users.get(mapped.owner))
        if problem is None:
            plan.add([_create_change(doc, mapped, marker, rules, users)])
        elif rules.refuse_owners:
            raise _owner_refusal(draft, users, rules, tenant)
        else:
            draft.leave(f"owner {quoted(mapped.owner)}: {problem}", str(doc["id"]))
    plan.add(draft.deletes)
    plan.scanned = len(source.tasks)
    plan.skipped.update({rules.action: len(draft.present)} if draft.present else {})
    plan.copy = _info(draft, source, tenant, rules)
    return plan


def _draft_task(
    draft: _Draft,
    doc: Mapping[str, Any],
    source: SourceTasks,
    rules: CopyRules,
    index: TargetIndex,
    same_tenant: bool,
    now: datetime,
) -> None:
    task_id = str(doc.get("id"))
    try:
        check_id(task_id)
    except UnsafeId as exc:
        draft.leave(f"unusable id: {exc}", task_id)
        return
    marker = marker_for(source.marker_source, task_id)
    if marker in index.markers:
        draft.present[task_id] = index.markers[marker]
        if rules.delete_source and same_tenant:
            draft.deletes.append(_source_delete(doc))  # copied before; its source is still here
        return
    if source.from_file and task_id in index.ids:
        draft.present[task_id] = task_id  # still there: a restore leaves it alone
        return
    if doc.get("statusCode") == "DELETING":
        draft.leave("DELETING in the source", task_id)
        return
    if same_tenant and _copy_of_this_source(doc, source.marker_source):
        draft.leave("a copy bulkshare made from this tenant", task_id)
        return
    if len(marker) > MAX_MARKER:
        draft.leave(f"its marker would be longer than {MAX_MARKER} characters", task_id)
        return
    _draft_create(draft, doc, marker, rules, now)


def _draft_create(
    draft: _Draft, doc: Mapping[str, Any], marker: str, rules: CopyRules, now: datetime
) -> None:
    enabled = rules.enabled is EnabledRule.AS_SOURCE and doc.get("enabled") is True
    mapped = map_task(doc, _lookup(rules.maps), marker=marker, enabled=enabled, now=now)
    task_id = str(doc["id"])
    for kind, old in mapped.unmapped:
        draft.unmapped.setdefault(kind, {}).setdefault(old, []).append(task_id)
    if mapped.unmapped and rules.unmapped is Unmapped.SKIP:
        draft.leave("ids no map names (unmapped = skip)", task_id)
        return
    if rules.delete_source and app_of(doc) and not mapped.app_id:
        # its app is named by no template (a report task): the create request cannot name it,
        # so the copy would report on no app, and deleting the source would lose the task
        draft.leave("its app is in no template: a copy cannot be re-pointed (source kept)", task_id)
        return
    if mapped.rebased is not None:
        draft.rebased += 1
    draft.creates.append((doc, mapped, marker))


def _lookup(maps: IdMaps) -> Any:
    def lookup(kind: str, old: str) -> str | None:
        return maps.get(kind).get(old)

    return lookup


def _copy_of_this_source(doc: Mapping[str, Any], source: str) -> bool:
    tags = doc.get("tags") or ()
    prefix = f"{source}:"
    return any(is_marker(t) and source_of_marker(t).startswith(prefix) for t in tags)


def _create_change(
    doc: Mapping[str, Any],
    mapped: MappedTask,
    marker: str,
    rules: CopyRules,
    users: Mapping[str, UserInfo],
) -> Change:
    actions = (rules.action, DELETE_SOURCE) if rules.delete_source else (rules.action,)
    ident = {k: doc.get(k) for k in IDENTITY_FIELDS if k in doc}
    ident["appId"] = app_of(doc)
    info = users.get(mapped.owner)
    ident |= {
        "targetOwner": mapped.owner,
        "targetOwnerName": info.name if info else "",
        "targetAppId": mapped.app_id,
        "marker": marker,
    }
    if mapped.rebased is not None:
        ident["rebasedStart"] = mapped.rebased
    before = {k: doc.get(k) for k in DELETE_GUARD_FIELDS} if rules.delete_source else {}
    after = {"owner": mapped.owner, "enabled": mapped.enabled, "appId": mapped.app_id}
    return Change(
        task_id=str(doc["id"]),
        actions=actions,
        method="POST",
        path=TASKS_PATH,
        body=mapped.body,
        before=before,
        after=after,
        task=ident,
    )


def _source_delete(doc: Mapping[str, Any]) -> Change:
    task_id = str(doc["id"])
    ident = {k: doc.get(k) for k in IDENTITY_FIELDS if k in doc}
    before = {k: doc.get(k) for k in DELETE_GUARD_FIELDS}
    return Change(task_id, ("delete",), "DELETE", task_path(task_id), None, before, {}, ident)


def _refuse_unmapped(draft: _Draft, rules: CopyRules) -> None:
    if rules.unmapped is not Unmapped.REFUSE or not draft.unmapped:
        return
    kinds = [k for k in MAP_KINDS.values() if k in draft.unmapped]
    parts = [_named(kind, draft.unmapped[kind]) for kind in kinds]
    key = next(k for k, v in MAP_KINDS.items() if v == kinds[0])
    total = sum(len(v) for v in draft.unmapped.values())
    raise JobFileError(
        rules.job_path or Path("-"),
        rules.line,
        f"copy.{key}",
        f"{total} {'id' if total == 1 else 'ids'} no map names: {'; '.join(parts)} "
        '(map them, or set unmapped = "keep" or "skip"); nothing was written',
    )


def _named(kind: str, ids: Mapping[str, Sequence[str]]) -> str:
    shown = ", ".join(quoted(i) for i in sorted(ids)[:_SHOWN])
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return f"{kind} {shown}{more}"


def _owner_refusal(
    draft: _Draft, users: Mapping[str, UserInfo], rules: CopyRules, tenant: str
) -> JobFileError:
    owners = sorted({m.owner for _, m, _ in draft.creates if owner_problem(users.get(m.owner))})
    shown = ", ".join(f"{quoted(o)} ({owner_problem(users.get(o))})" for o in owners[:_SHOWN])
    more = f" and {len(owners) - _SHOWN} more" if len(owners) > _SHOWN else ""
    return JobFileError(
        rules.job_path or Path("-"),
        rules.line,
        "copy.user_map",
        f"target {'owner' if len(owners) == 1 else 'owners'} {shown}{more} cannot own tasks "
        f"on tenant {tenant}; map them in user_map; nothing was written",
    )


def _info(draft: _Draft, source: SourceTasks, tenant: str, rules: CopyRules) -> dict[str, Any]:
    return {
        "source": source.label,
        "source_tenant": source.tenant,
        "marker_source": source.marker_source,
        "target": tenant,
        "delete_source": rules.delete_source,
        "unmapped_rule": rules.unmapped.value,
        "present": dict(draft.present),
        "not_copied": {k: list(v) for k, v in draft.not_copied.items()},
        "unmapped": {k: sorted(v) for k, v in draft.unmapped.items()},
        "rebased": draft.rebased,
    }


def describe_unmapped(unmapped: Mapping[str, Iterable[str]]) -> str:
    """`app "a", "b"; user "u"` for a plan's unmapped ids (kept or skipped)."""
    return "; ".join(
        f"{kind} {', '.join(quoted(i) for i in ids)}" for kind, ids in unmapped.items()
    )
