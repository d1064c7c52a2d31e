"""Stream a tenant's tasks through a job's operations -> a Plan: one merged change per task.

Only the changes are kept, never the tenant: memory grows with the plan, not with the tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from bulkshare.audit import utc_now
from bulkshare.client import ApiClient, RequestFailed
from bulkshare.client.caller import Caller
from bulkshare.heap import settled
from bulkshare.job import (
    ActionKind,
    Job,
    Operation,
    OwnerStatusOf,
    common_list_params,
    selection_of,
)
from bulkshare.plan.change import (
    DELETE_GUARD_FIELDS,
    IDENTITY_FIELDS,
    Change,
    DuplicateChange,
    Plan,
    Rejected,
)
from bulkshare.plan.criteria import job_criteria
from bulkshare.plan.effects import (
    Effect,
    EffectKind,
    apply_effect,
    effect_of,
    error_values,
    fields_read,
)
from bulkshare.plan.guard import Guard, shared
from bulkshare.plan.listing import (
    PAGE_LIMIT,
    Listing,
    ListingChanged,
    check_complete,
    cursor_pages,
    offset_pages,
)
from bulkshare.plan.owners import OwnerDirectory, owners_known
from bulkshare.plan.requests import Request, request_for
from bulkshare.plan.shape import shape_problem
from bulkshare.plan.targets import check_targets
from bulkshare.vocab import UnsafeId, check_id, field_for_path

__all__ = ["Guard", "TaskPlan", "build_plan", "owner_change_expectation", "plan_task"]


async def build_plan(
    client: ApiClient,
    job: Job,
    tenant: str,
    now: datetime | None = None,
    *,
    accept_incomplete: bool = False,
    caller: Caller | None = None,
    tenant_url: str | None = None,
    scope: str = "all",
) -> Plan:
    """Read the tenant page by page and plan every operation of `job` against it.

    A listing that does not add up to the tenant's totalCount is a TenantError, unless
    `accept_incomplete`: then the plan records what was listed against what was said. With
    scope "own" only the caller's own tasks are planned (an admin caller lists them all).
    Every new owner the plan writes is resolved before it is returned (plan.targets).
    """
    params: dict[str, Any] = {
        "limit": PAGE_LIMIT,
        **common_list_params([op.where for op in job.operations]),
    }
    if not any(_may_touch_deleting(op) for op in job.operations):
        params["excludeDeleting"] = ["true"]  # what _leaves_alone would drop, the server drops
    owners = OwnerDirectory(client)
    own = caller.id if caller is not None and scope == "own" else None
    listing = Listing(offset_pages(client, params), by_offset=True)
    try:
        plan = await _plan_from(_owned_by(listing.tasks(), own), owners, job, tenant, now)
    except ListingChanged:
        # the tenant changed while offset pages were read: a cursor walk cannot skip or repeat
        listing = Listing(cursor_pages(client, params))
        plan = await _plan_from(_owned_by(listing.tasks(), own), owners, job, tenant, now)
    verdict = listing.verdict()
    check_complete(verdict, tenant, accept_incomplete)
    if not verdict.complete:
        plan.accepted_incomplete = verdict.to_json()
    plan.tenant_url, plan.caller, plan.scope = tenant_url, caller, scope
    await check_targets(plan, job, owners, tenant)
    return plan


async def _owned_by(
    pages: AsyncIterator[list[dict[str, Any]]], owner: str | None
) -> AsyncIterator[list[dict[str, Any]]]:
    """The pages, with only `owner`'s tasks if given (scope "own" with an admin caller)."""
    async for page in pages:
        # anything but a task is kept: _plan_page refuses the listing for it
        yield page if owner is None else [t for t in page if _kept(t, owner)]


def _kept(task: Any, owner: str) -> bool:
    return not isinstance(task, dict) or task.get("owner") == owner


async def _plan_from(
    pages: AsyncIterator[list[dict[str, Any]]],
    owners: OwnerDirectory,
    job: Job,
    tenant: str,
    now: datetime | None,
) -> Plan:
    now = now or datetime.now(UTC)
    plan = Plan(
        tenant, job.name, str(job.path), job.source_sha256, utc_now(), max_changes=job.max_changes
    )
    plan.description, plan.criteria = job.description, job_criteria(job)
    if not _needs_owners(job.operations):
        async for page in pages:
            _plan_page(plan, page, job, now, None)
        return plan
    async for page in owners_known(pages, owners, lambda p: _owner_ids(p, job.operations)):
        _plan_page(plan, page, job, now, owners.status_of)
    return plan


def _plan_page(
    plan: Plan,
    page: list[dict[str, Any]],
    job: Job,
    now: datetime,
    status_of: OwnerStatusOf | None,
) -> None:
    fields = fields_read(job.operations)
    for task in page:
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            raise RequestFailed(200, f"list item {plan.scanned + 1} is not a task with an id", 1)
        _check_task_id(task["id"], plan.scanned + 1)
        plan.scanned += 1
        planned = plan_task(task, job.operations, now, status_of, fields)
        if planned.rejected is not None:
            plan.rejected.append(Rejected(task["id"], planned.rejected, _identity(task)))
            continue
        try:
            plan.add(planned.changes)
        except DuplicateChange as exc:  # the listing layer hands each task over once: a bug
            raise RequestFailed(200, f"{exc}: refusing a plan that would repeat it", 1) from None
        plan.skipped.update(planned.skipped)
    settled()  # the plan so far is not scanned again by each page's collections


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
    # only string owners: anything else rejects its task, and str() would invent an id
    ids = {t["owner"] for t in page if isinstance(t.get("owner"), str) and t["owner"]}
    for op in operations:
        ids.update([op.to] if op.to else [])
        ids.update(op.mapping.values() if op.mapping else [])
    return ids


@dataclass(frozen=True)
class TaskPlan:
    """What a job does to one task: its changes (one per request kind), the actions skipped as
    already done, or why the task was rejected (and then nothing else)."""

    changes: tuple[Change, ...] = ()
    skipped: tuple[str, ...] = ()
    rejected: str | None = None


def plan_task(
    task: Mapping[str, Any],
    operations: Sequence[Operation],
    now: datetime,
    owner_status_of: OwnerStatusOf | None = None,
    fields: frozenset[str] | None = None,
) -> TaskPlan:
    """The changes `operations` make to one task (merged), and the actions skipped as done.

    A task with a value of the wrong type in a field the job reads (`fields`, by default
    worked out from `operations`) is rejected before any `where` or effect sees it: never
    matched, never changed.
    """
    if fields is None:
        fields = fields_read(tuple(operations))
    problem = shape_problem(task, fields, now)
    if problem is not None:
        return TaskPlan(rejected=problem)
    view = dict(task)
    effects: list[tuple[Operation, Effect]] = []
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
        effects.append((op, effect))
        if effect.kind is EffectKind.DELETE:
            break  # later operations see the task gone
        apply_effect(view, effect)
    return TaskPlan(tuple(_merge(task, effects)), tuple(skipped))


def _may_touch_deleting(op: Operation) -> bool:
    return op.action is ActionKind.DELETE or (
        op.where.status is not None and "DELETING" in op.where.status
    )


def _leaves_alone(op: Operation, task: Mapping[str, Any]) -> bool:
    """A task on its way out (DELETING) is only touched by a delete, or when asked for by name."""
    if task.get("statusCode") != "DELETING" or op.action is ActionKind.DELETE:
        return False
    return op.where.status is None or "DELETING" not in op.where.status


def _identity(task: Mapping[str, Any]) -> dict[str, Any]:
    # a name is the task's own: shared with no other change, it would only grow the table
    return {k: task[k] if k == "name" else shared(task[k]) for k in IDENTITY_FIELDS if k in task}


def _merge(task: Mapping[str, Any], effects: Sequence[tuple[Operation, Effect]]) -> list[Change]:
    """At most one change per request kind: the PATCH fields merged, each POST action once,
    and a delete that absorbs the PATCH actions before it. Each change is guarded by the
    selections of the operations it carries out (`Guard`)."""
    if not effects:
        return []  # most tasks of a large tenant: no identity copied for them
    ident = _identity(task)
    patch = _PatchParts()
    written: set[str] = set()  # task fields written by the operations so far
    posts: dict[EffectKind, list[tuple[str, dict[str, Any]]]] = {}  # kind -> (action, where)
    for op, effect in effects:
        action, selection = op.action.value, selection_of(op.where, task, written)
        if effect.kind is EffectKind.DELETE:
            guard = Guard.of(task, [selection])
            return [_delete_change(task, (*patch.actions, action), ident, guard)]
        if effect.kind is EffectKind.PATCH:
            patch.add(action, effect, selection)
            written.update(field_for_path(p) for p in effect.fields)
        else:
            posts.setdefault(effect.kind, []).append((action, selection))
    change = _patch_change(task, patch, ident)
    return ([change] if change else []) + [
        _post_change(task, kind, taken, ident) for kind, taken in posts.items()
    ]


@dataclass
class _PatchParts:
    """The PATCH operations of one task, merged as they come."""

    actions: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  #: PATCH path -> value
    selections: list[dict[str, Any]] = field(default_factory=list)
    keep_enabled: bool = False

    def add(self, action: str, effect: Effect, selection: dict[str, Any]) -> None:
        self.actions.append(action)
        self.fields.update(effect.fields)
        self.selections.append(selection)
        self.keep_enabled = self.keep_enabled or effect.keep_enabled


def _delete_change(
    task: Mapping[str, Any], actions: tuple[str, ...], ident: Mapping[str, Any], guard: Guard
) -> Change:
    task_id = str(task.get("id"))
    before = {k: task.get(k) for k in DELETE_GUARD_FIELDS}
    request = request_for(EffectKind.DELETE, task_id, {})
    return _change(task_id, actions, request, before, {}, ident, guard)


#: one empty, unchangeable expectation for the changes that have none (most): a large plan
#: would keep one empty dict per change
_NO_EXPECTATION: Mapping[str, Any] = MappingProxyType({})


def _change(
    task_id: str,
    actions: Iterable[str],
    request: Request,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    ident: Mapping[str, Any],
    guard: Guard,
    expect: Mapping[str, Any] | None = None,
) -> Change:
    return Change(
        task_id,
        tuple(dict.fromkeys(actions)),
        request.method,
        request.path,
        request.body,
        before,
        after,
        ident,
        guard.selects,
        guard.selection,
        expect or _NO_EXPECTATION,
    )


def _fields(task: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    return {field_for_path(p): task.get(field_for_path(p)) for p in fields}


def _patch_change(
    task: Mapping[str, Any], patch: _PatchParts, ident: Mapping[str, Any]
) -> Change | None:
    fields = patch.fields
    keep = {p: v for p, v in fields.items() if task.get(field_for_path(p)) != v}
    if "/ownerId" in keep and fields.get("/enabled") is True:
        keep["/enabled"] = True  # written with the owner, whatever the service does on its own
    if not keep:
        return None
    task_id = str(task.get("id"))
    after = {field_for_path(p): v for p, v in keep.items()}
    request = request_for(EffectKind.PATCH, task_id, keep)
    guard = Guard.of(task, patch.selections)
    expect = owner_change_expectation(task, keep, patch.keep_enabled)
    before = _fields(task, keep)
    return _change(task_id, patch.actions, request, before, after, ident, guard, expect)


def owner_change_expectation(
    task: Mapping[str, Any], writes: Mapping[str, Any], keep_enabled: bool
) -> dict[str, Any]:
    """What a PATCH `writes` (path -> value) is expected to do besides: for an owner change,
    the task's error values as they were, and, for an enabled task whose /enabled is not
    written, whether it may be disabled by the service (False) or is kept enabled (True)."""
    if "/ownerId" not in writes:
        return {}
    expect: dict[str, Any] = {"taskErrors": error_values(task)}
    if "/enabled" not in writes and task.get("enabled") is True:
        expect["enabled"] = keep_enabled
    return expect


def _post_change(
    task: Mapping[str, Any],
    kind: EffectKind,
    taken: Sequence[tuple[str, Mapping[str, Any]]],
    ident: Mapping[str, Any],
) -> Change:
    task_id = str(task.get("id"))
    guard = Guard.of(task, [selection for _, selection in taken])
    request = request_for(kind, task_id, {})
    return _change(task_id, [action for action, _ in taken], request, {}, {}, ident, guard)
