"""Stream a tenant's tasks through a job's operations -> a Plan: one merged change per task.

Only the changes are kept, never the tenant: memory grows with the plan, not with the tasks.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bulkshare.actions import Effect, EffectKind, apply_effect, effect_of, field_for_path
from bulkshare.audit import utc_now
from bulkshare.client import ApiClient, RequestFailed
from bulkshare.errors import PlanFileError
from bulkshare.jobfile import ActionKind, Job, Operation
from bulkshare.owners import OwnerDirectory
from bulkshare.where import OwnerStatusOf, common_list_params

__all__ = [
    "PLAN_FORMAT",
    "TASKS_PATH",
    "Change",
    "Plan",
    "build_plan",
    "plan_task",
    "task_path",
]

PLAN_FORMAT = "bulkshare-plan/1"
TASKS_PATH = "/v1/sharing-tasks"
PAGE_LIMIT = 100
#: offset pages requested at once after the first page (tier 1 has room; the server is busy)
PARALLEL_PAGES = 3
#: tasks that may wait for their owners' statuses while a users-filter batch fills up
_OWNER_WAIT_TASKS = 5_000
#: task fields shown with every change, for people reading a plan or an audit record
IDENTITY_FIELDS = ("name", "owner", "ownerName", "appId", "appName", "type", "statusCode")
#: fields a planned delete expects unchanged when it is re-read before sending
DELETE_GUARD_FIELDS = ("owner", "enabled", "statusCode")


def task_path(task_id: str) -> str:
    """Path of one task, relative to /api."""
    return f"{TASKS_PATH}/{task_id}"


@dataclass(frozen=True)
class Change:
    """One request to send for one task, with the state it expects and the state it leaves."""

    task_id: str
    actions: tuple[str, ...]  #: action kinds merged into this request, in file order
    method: str
    path: str
    body: Any
    before: Mapping[str, Any]  #: the fields this change writes, as planned from
    after: Mapping[str, Any]  #: the same fields after the change ({} for a delete)
    task: Mapping[str, Any] = field(default_factory=dict)  #: identity fields, for people

    @property
    def kind(self) -> EffectKind:
        """Whether this is a PATCH, a DELETE, an execute or a cancel."""
        if self.method == "DELETE":
            return EffectKind.DELETE
        if self.method == "PATCH":
            return EffectKind.PATCH
        return EffectKind.EXECUTE if self.path.endswith("/actions/execute") else EffectKind.CANCEL

    @property
    def action(self) -> str:
        """The actions, joined, as one label."""
        return "+".join(self.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "actions": list(self.actions),
            "request": {"method": self.method, "path": self.path, "body": self.body},
            "before": dict(self.before),
            "after": dict(self.after),
            "task": dict(self.task),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Change:
        req = doc["request"]
        return cls(
            str(doc["task_id"]),
            tuple(doc["actions"]),
            str(req["method"]),
            str(req["path"]),
            req.get("body"),
            _mapping(doc["before"]),
            _mapping(doc["after"]),
            _mapping(doc.get("task") or {}),
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


@dataclass
class Plan:
    """Every change a job makes on one tenant, with what was skipped as already done."""

    tenant: str
    job_name: str
    job_path: str
    job_sha256: str
    created_at: str
    changes: list[Change] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  #: action -> tasks already done
    scanned: int = 0  #: tasks read from the tenant
    max_changes: int | None = None

    def counts(self) -> dict[str, int]:
        """Changes per action label."""
        return dict(Counter(c.action for c in self.changes))

    def writes(self) -> int:
        """Write requests the plan will send."""
        return len(self.changes)

    def to_json(self) -> dict[str, Any]:
        body = {
            "format": PLAN_FORMAT,
            "created_at": self.created_at,
            "tenant": self.tenant,
            "job": {
                "name": self.job_name,
                "path": self.job_path,
                "sha256": self.job_sha256,
                "max_changes": self.max_changes,
            },
            "scanned": self.scanned,
            "skipped": dict(self.skipped),
            "counts": self.counts(),
            "changes": [c.to_json() for c in self.changes],
        }
        body["content_hash"] = _content_hash(body)
        return body

    def write(self, path: Path) -> None:
        """Write the plan as JSON (atomically)."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(orjson.dumps(self.to_json()) + b"\n")  # compact: resume reads it fast
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Plan:
        """Load a plan file; PlanFileError if it is unreadable or was changed after writing."""
        # loading builds millions of small objects and no cycles: with the collector paused it
        # takes a quarter of the time, and frozen afterwards the plan is never scanned again by
        # the collections the run's own allocations trigger
        collecting = gc.isenabled()
        gc.disable()
        try:
            doc = orjson.loads(path.read_bytes())
            return cls.from_json(doc, path)
        except FileNotFoundError:
            raise PlanFileError(f"{path}: plan file not found") from None
        except orjson.JSONDecodeError as exc:
            raise PlanFileError(f"{path}: not a plan file (malformed JSON: {exc})") from None
        finally:
            gc.freeze()
            if collecting:
                gc.enable()

    @classmethod
    def from_json(cls, doc: Any, path: Path) -> Plan:
        if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
            raise PlanFileError(f"{path}: not a bulkshare plan (format {PLAN_FORMAT} expected)")
        claimed = doc.get("content_hash")
        if claimed != _content_hash({k: v for k, v in doc.items() if k != "content_hash"}):
            raise PlanFileError(
                f"{path}: content_hash does not match: the plan was changed "
                "after it was written; plan again"
            )
        try:
            job = doc["job"]
            return cls(
                str(doc["tenant"]),
                str(job["name"]),
                str(job["path"]),
                str(job["sha256"]),
                str(doc["created_at"]),
                [Change.from_json(c) for c in doc["changes"]],
                Counter(doc.get("skipped") or {}),
                int(doc.get("scanned", 0)),
                job.get("max_changes"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanFileError(f"{path}: malformed plan: {exc!r}") from None


def _content_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def build_plan(client: ApiClient, job: Job, tenant: str, now: datetime | None = None) -> Plan:
    """Read the tenant page by page and plan every operation of `job` against it."""
    params: dict[str, Any] = {
        "limit": PAGE_LIMIT,
        **common_list_params([op.where for op in job.operations]),
    }
    if not any(_may_touch_deleting(op) for op in job.operations):
        params["excludeDeleting"] = ["true"]  # what _leaves_alone would drop, the server drops
    try:
        return await _plan_from(_offset_pages(client, params), client, job, tenant, now)
    except _ListingChanged:
        # the tenant changed while offset pages were read: a cursor walk cannot skip or repeat
        return await _plan_from(
            client.pages(TASKS_PATH, params, "sharingTasks"), client, job, tenant, now
        )


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
        plan.scanned += 1
        changes, skipped = plan_task(task, job.operations, now, status_of)
        plan.changes.extend(changes)
        plan.skipped.update(skipped)


class _ListingChanged(Exception):
    """totalCount moved while offset pages were read, or the server ignored `offset`."""


async def _offset_pages(
    client: ApiClient, params: Mapping[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The first page, then the rest by offset, a few at a time, in order.

    Offset pages can skip or repeat tasks if the tenant changes meanwhile, so totalCount is
    checked on every page and any change sends the caller back to cursor paging.
    """
    first = await _list_page(client, params)
    total = first.get("totalCount")
    yield first["sharingTasks"]
    if not isinstance(total, int) or len(first["sharingTasks"]) >= total:
        return
    offsets = iter(range(PAGE_LIMIT, total, PAGE_LIMIT))
    window: deque[asyncio.Task[dict[str, Any]]] = deque()
    try:
        for offset in itertools.islice(offsets, PARALLEL_PAGES):
            window.append(asyncio.create_task(_list_page(client, {**params, "offset": offset})))
        while window:
            doc = await window.popleft()
            if doc.get("totalCount") != total:
                raise _ListingChanged
            if _first_id(doc) == _first_id(first):
                raise _ListingChanged  # a server that ignores offset: use the cursor
            following = next(offsets, None)
            if following is not None:
                page = _list_page(client, {**params, "offset": following})
                window.append(asyncio.create_task(page))
            yield doc["sharingTasks"]
    finally:
        for task in window:
            task.cancel()


def _first_id(doc: Mapping[str, Any]) -> Any:
    tasks = doc["sharingTasks"]
    return tasks[0].get("id") if tasks and isinstance(tasks[0], dict) else None


async def _list_page(client: ApiClient, params: Mapping[str, Any]) -> dict[str, Any]:
    doc = await client.get_json(TASKS_PATH, params)
    if not isinstance(doc, dict) or not isinstance(doc.get("sharingTasks", []), list):
        raise RequestFailed(200, "list answer without a 'sharingTasks' list", 1)
    doc.setdefault("sharingTasks", [])
    return doc


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
