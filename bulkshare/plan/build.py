"""Stream a tenant's tasks through a job's operations -> a Plan: one merged change per task.

Only the changes are kept, never the tenant: memory grows with the plan, not with the tasks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bulkshare.audit import utc_now
from bulkshare.client import ApiClient, RequestFailed
from bulkshare.job import ActionKind, Job, Operation, OwnerStatusOf, common_list_params
from bulkshare.plan.change import DELETE_GUARD_FIELDS, IDENTITY_FIELDS, Change, Plan
from bulkshare.plan.effects import Effect, EffectKind, apply_effect, effect_of
from bulkshare.plan.listing import (
    PAGE_LIMIT,
    Listing,
    ListingChanged,
    check_complete,
    cursor_pages,
    offset_pages,
)
from bulkshare.plan.owners import OwnerDirectory
from bulkshare.vocab import TASKS_PATH, UnsafeId, check_id, field_for_path, task_path

__all__ = ["build_plan", "plan_task"]

#: tasks that may wait for their owners' statuses while a users-filter batch fills up
_OWNER_WAIT_TASKS = 5_000


async def build_plan(
    client: ApiClient,
    job: Job,
    tenant: str,
    now: datetime | None = None,
    *,
    accept_incomplete: bool = False,
) -> Plan:
    """Read the tenant page by page and plan every operation of `job` against it.

    A listing that does not add up to the tenant's totalCount is a TenantError, unless
    `accept_incomplete`: then the plan records what was listed against what was said.
    """
    params: dict[str, Any] = {
        "limit": PAGE_LIMIT,
        **common_list_params([op.where for op in job.operations]),
    }
    if not any(_may_touch_deleting(op) for op in job.operations):
        params["excludeDeleting"] = ["true"]  # what _leaves_alone would drop, the server drops
    listing = Listing(offset_pages(client, params), by_offset=True)
    try:
        plan = await _plan_from(listing.tasks(), client, job, tenant, now)
    except ListingChanged:
        # the tenant changed while offset pages were read: a cursor walk cannot skip or repeat
        listing = Listing(cursor_pages(client, params))
        plan = await _plan_from(listing.tasks(), client, job, tenant, now)
    verdict = listing.verdict()
    check_complete(verdict, tenant, accept_incomplete)
    if not verdict.complete:
        plan.accepted_incomplete = verdict.to_json()
    return plan


async def _plan_from(
    pages: AsyncIterator[list[dict[str, Any]]],
    client: ApiClient,
    job: Job,
    tenant: str,
    now: datetime | None,
) -> Plan:
    now = now or datetime.now(UTC)
    plan = Plan(
        tenant, job.name, str(job.path), job.source_sha256, utc_now(), max_changes=job.max_changes
    )
    if not _needs_owners(job.operations):
        async for page in pages:
            _plan_page(plan, page, job, now, None)
        return plan
    # pages wait until their owners are known, so that each users-filter request carries a
    # full batch of 100 owners; at most _OWNER_WAIT_TASKS tasks wait at a time
    owners = OwnerDirectory(client)
    waiting: deque[tuple[list[dict[str, Any]], set[str]]] = deque()
    waiting_tasks = 0
    async for page in pages:
        ids = _owner_ids(page, job.operations)
        owners.want(ids)
        waiting.append((page, ids))
        waiting_tasks += len(page)
        await owners.lookup_wanted(full_batches_only=waiting_tasks < _OWNER_WAIT_TASKS)
        while waiting and owners.knows(waiting[0][1]):
            page, _ = waiting.popleft()
            waiting_tasks -= len(page)
            _plan_page(plan, page, job, now, owners.status_of)
    await owners.lookup_wanted()
    for page, _ in waiting:
        _plan_page(plan, page, job, now, owners.status_of)
    return plan


def _plan_page(
    plan: Plan,
    page: list[dict[str, Any]],
    job: Job,
    now: datetime,
    status_of: OwnerStatusOf | None,
) -> None:
    for task in page:
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            raise RequestFailed(200, f"list item {plan.scanned + 1} is not a task with an id", 1)
        _check_task_id(task["id"], plan.scanned + 1)
        plan.scanned += 1
        changes, skipped = plan_task(task, job.operations, now, status_of)
        plan.changes.extend(changes)
        plan.skipped.update(skipped)


def _check_task_id(task_id: str, item: int) -> None:
    try:
        check_id(task_id)
    except UnsafeId as exc:
        # it would go into request paths: refuse the listing rather than guess
        raise RequestFailed(200, f"list item {item}: {exc}", 1) from None


def _needs_owners(operations: Sequence[Operation]) -> bool:
    return any(op.where.needs_owner_status for op in operations)


def _owner_ids(page: Iterable[Mapping[str, Any]], operations: Sequence[Operation]) -> set[str]:
    """Owners a page can be matched against: its owners and any owner a job may assign."""
    ids = {str(t["owner"]) for t in page if t.get("owner")}
    for op in operations:
        ids.update([op.to] if op.to else [])
        ids.update(op.mapping.values() if op.mapping else [])
    return ids


def plan_task(
    task: Mapping[str, Any],
    operations: Sequence[Operation],
    now: datetime,
    owner_status_of: OwnerStatusOf | None = None,
) -> tuple[list[Change], list[str]]:
    """The changes `operations` make to one task (merged), and the actions skipped as done."""
    view = dict(task)
    effects: list[tuple[str, Effect]] = []
    skipped: list[str] = []
    for op in operations:
        if _leaves_alone(op, view) or not op.where.matches(view, now, owner_status_of):
            continue
        if op.mapping is not None and view.get("owner") not in op.mapping:
            continue  # a mapping selects the owners it names: the others are not "done"
        effect = effect_of(op, view)
        if effect is None:
            skipped.append(op.action.value)
            continue
        effects.append((op.action.value, effect))
        if effect.kind is EffectKind.DELETE:
            break  # later operations see the task gone
        apply_effect(view, effect)
    return _merge(task, effects), skipped


def _may_touch_deleting(op: Operation) -> bool:
    return op.action is ActionKind.DELETE or (
        op.where.status is not None and "DELETING" in op.where.status
    )


def _leaves_alone(op: Operation, task: Mapping[str, Any]) -> bool:
    """A task on its way out (DELETING) is only touched by a delete, or when asked for by name."""
    if task.get("statusCode") != "DELETING" or op.action is ActionKind.DELETE:
        return False
    return op.where.status is None or "DELETING" not in op.where.status


def _merge(task: Mapping[str, Any], effects: Iterable[tuple[str, Effect]]) -> list[Change]:
    task_id = str(task.get("id"))
    ident = {k: task.get(k) for k in IDENTITY_FIELDS if k in task}
    patch_actions: list[str] = []
    fields: dict[str, Any] = {}
    posts: list[Change] = []
    for action, effect in effects:
        if effect.kind is EffectKind.DELETE:
            before = {k: task.get(k) for k in DELETE_GUARD_FIELDS}
            return [
                Change(
                    task_id,
                    (*patch_actions, action),
                    "DELETE",
                    task_path(task_id),
                    None,
                    before,
                    {},
                    ident,
                )
            ]
        if effect.kind is EffectKind.PATCH:
            patch_actions.append(action)
            fields.update(effect.fields)
        else:
            posts.append(_post_change(task_id, action, effect.kind, ident))
    patch = _patch_change(task, patch_actions, fields, ident)
    return ([patch] if patch else []) + posts


def _fields(task: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    return {field_for_path(p): task.get(field_for_path(p)) for p in fields}


def _patch_change(
    task: Mapping[str, Any], actions: list[str], fields: dict[str, Any], ident: Mapping[str, Any]
) -> Change | None:
    keep = {p: v for p, v in fields.items() if task.get(field_for_path(p)) != v}
    if "/ownerId" in keep and fields.get("/enabled") is True:
        keep["/enabled"] = True  # the owner change would disable it otherwise
    if not keep:
        return None
    task_id = str(task.get("id"))
    body = [
        {"op": "remove", "path": p} if v is None else {"op": "replace", "path": p, "value": v}
        for p, v in keep.items()
    ]
    after = {field_for_path(p): v for p, v in keep.items()}
    before = _fields(task, keep)
    if "/ownerId" in keep and "enabled" not in after:
        # the service disables a task whose owner changes: record it, so verify and undo know
        before["enabled"], after["enabled"] = task.get("enabled"), False
    return Change(
        task_id,
        tuple(dict.fromkeys(actions)),
        "PATCH",
        task_path(task_id),
        body,
        before,
        after,
        ident,
    )


def _post_change(task_id: str, action: str, kind: EffectKind, ident: Mapping[str, Any]) -> Change:
    if kind is EffectKind.EXECUTE:
        return Change(
            task_id,
            (action,),
            "POST",
            f"{TASKS_PATH}/actions/execute",
            {"sharingTaskID": task_id},
            {},
            {},
            ident,
        )
    return Change(
        task_id, (action,), "POST", f"{task_path(task_id)}/actions/cancel", None, {}, {}, ident
    )
