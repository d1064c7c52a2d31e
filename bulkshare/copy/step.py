"""One copy, run: create quietly (disabled, not executed, marked), one PATCH for the owner and
the final `enabled`, a read-back that verifies them, and (re-pointing) the source's delete.

A create is sent at most once: in doubt (armed by a dead process, or sent and unanswered) it is
settled by looking its marker up in the target's list, never by a second POST. Each step's
result is noted in `CopyProgress` before the next is sent, so a resume starts where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from bulkshare.client import ApiClient, RequestFailed, Response
from bulkshare.copy.body import app_of
from bulkshare.copy.marker import is_marker
from bulkshare.copy.progress import CopyProgress, Step
from bulkshare.copy.target import TargetIndex, read_target
from bulkshare.copy.users import UserInfo, owner_problem, resolve_users
from bulkshare.plan import Change, EffectKind
from bulkshare.plan.change import quoted
from bulkshare.vocab import TASKS_PATH, UnsafeId, check_id, task_path

__all__ = ["DELETE_SOURCE", "CopyResult", "CopySteps", "marker_of", "patch_ops"]

#: the action a copy carries when it deletes its source once the copy is verified
DELETE_SOURCE = "delete-source"
#: list pages read to find a marker (100 tasks each)
_MARKER_PAGES = 100
#: the action of undo's recreation of a deleted task (bulkshare.copy.planner.RESTORE_ACTION)
_RESTORE = "restore"

log = structlog.get_logger("bulkshare.copy")


@dataclass(frozen=True)
class CopyResult:
    """How one copy ended: its audit record's outcome and fields."""

    outcome: str  #: an Outcome value
    target_id: str | None = None
    after: Mapping[str, Any] | None = field(default=None, hash=False)  #: as read back
    status: int | None = None
    attempts: int = 0
    error: str | None = None
    settled: bool = False  #: the create was found made by its marker, not by its answer
    document: Mapping[str, Any] | None = field(default=None, hash=False)  #: the deleted source
    note: str | None = None  #: why a copy was left out (a restore whose owner is gone)


def marker_of(change: Change) -> str:
    """The provenance marker a create change's body carries."""
    tags = change.body.get("tags") if isinstance(change.body, dict) else None
    for tag in tags if isinstance(tags, list) else ():
        if is_marker(tag):
            return str(tag)
    raise ValueError(f"create of {change.task_id} carries no provenance marker")


@dataclass(frozen=True)
class _Made:
    """A copy's target task, and how this process came to know it."""

    target: str
    settled: bool = False  #: found by its marker after an unanswered (or in-doubt) create
    status: int | None = None  #: the create's answer, when this process sent it
    attempts: int = 0
    #: the task as the create's answer gave it (its state before the owner PATCH)
    created: Mapping[str, Any] | None = field(default=None, hash=False)


class _Unowned(Exception):
    """The target owner cannot own a task (deleted, disabled, invited, unknown): no POST."""


class _Failed(Exception):
    def __init__(self, error: str, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(error)
        self.result = CopyResult("failed", None, None, status, attempts, error)


class CopySteps:
    """Runs the copies of one run against its target tenant."""

    __slots__ = (
        "_index",
        "_index_lock",
        "_owners",
        "_owners_ahead",
        "_owners_lock",
        "client",
        "progress",
        "verify",
    )

    def __init__(self, client: ApiClient, progress: CopyProgress, *, verify: bool) -> None:
        self.client = client
        self.progress = progress
        #: look the marker up before a create that is not in doubt too (a saved plan may be old)
        self.verify = verify
        #: the target's markers, read once before this process's first create (with verify)
        self._index: TargetIndex | None = None
        self._index_lock = asyncio.Lock()
        #: target owners as the users API has them, read once each before their first create
        self._owners: dict[str, UserInfo] = {}
        self._owners_lock = asyncio.Lock()
        #: owners of creates still to come, read with the first owner looked up
        self._owners_ahead: set[str] = set()

    def __repr__(self) -> str:
        return f"<CopySteps {self.progress!r}>"

    def owners_ahead(self, changes: Iterable[Change]) -> None:
        """The creates this process will run: their owners are read together, once."""
        owners = (c.after.get("owner") for c in changes if c.kind is EffectKind.CREATE)
        self._owners_ahead.update(o for o in owners if isinstance(o, str) and o)

    async def run(
        self, idx: int, change: Change, armed_at: float | None, arm: Callable[[], None]
    ) -> CopyResult:
        """Bring copy `idx` to its end, from wherever an earlier process left it."""
        try:
            made = await self._created(idx, change, armed_at, arm)
            if made.status is None and not made.settled and self._found_present(idx):
                return CopyResult("skipped", made.target)  # already in the target: nothing sent
            after = await self._finish(idx, change, made)
            document = await self._delete_source(idx, change)
        except _Unowned as unowned:
            return _left_out(change, str(unowned))
        except _Failed as failed:
            known = self.progress.copy_of(idx)
            return CopyResult(
                failed.result.outcome,
                None if known is None else known[0],
                None,
                failed.result.status,
                failed.result.attempts,
                failed.result.error,
            )
        return CopyResult(
            "applied", made.target, after, made.status, made.attempts, None, made.settled, document
        )

    def _found_present(self, idx: int) -> bool:
        known = self.progress.copy_of(idx)
        return known is not None and known[1] is Step.PRESENT

    # --- create ----------------------------------------------------------------------------

    async def _created(
        self, idx: int, change: Change, armed_at: float | None, arm: Callable[[], None]
    ) -> _Made:
        """The target task: from the progress, the marker (in doubt, or verifying), or one POST."""
        known = self.progress.copy_of(idx)
        if known is not None:
            return _Made(known[0])
        found = await self._present(change, in_doubt=armed_at is not None)
        if found is not None:
            self.progress.created(idx, change.task_id, found)
            if armed_at is None:
                self.progress.step(idx, Step.PRESENT)
            return _Made(found, settled=armed_at is not None)
        await self._check_owner(change)
        arm()  # re-armed just before sending: a crash from here on leaves it in doubt
        resp, found_by_marker = await self._post(change)
        doc = _created_doc(resp)
        target = found_by_marker if resp.settled else _checked_id(doc.get("id"))
        if target is None and 200 <= resp.status < 300:
            target = await self._find_marker(change)  # an answer without an id: look it up
        if target is None:
            raise _Failed(_answer_error("create", resp), resp.status, resp.attempts)
        self.progress.created(idx, change.task_id, target)
        created = doc if doc.get("id") == target and not resp.settled else None
        return _Made(target, resp.settled, resp.status, resp.attempts, created)

    async def _present(self, change: Change, *, in_doubt: bool) -> str | None:
        """The target task already carrying this copy's marker, if any: looked up afresh for a
        create in doubt, else (verifying) in the target's markers as this run first read them,
        one list walk per run rather than one per create."""
        if in_doubt:
            return await self._find_marker(change)
        if not self.verify:
            return None
        async with self._index_lock:
            if self._index is None:
                try:
                    self._index = await read_target(self.client)
                except RequestFailed as exc:
                    why = f"reading the target's copies: {exc.reason}"
                    raise _Failed(why, exc.status) from None
        return self._index.markers.get(marker_of(change))

    async def _check_owner(self, change: Change) -> None:
        """Refuse (before its POST) a copy whose owner the target cannot give it: created, it
        would be left half made, owned by the caller, when its owner PATCH is refused. The plan
        checked a copy job's owners; undo's restores and an old saved plan are checked here."""
        owner = change.after.get("owner")
        if not isinstance(owner, str):
            return
        async with self._owners_lock:
            if owner not in self._owners:
                # every owner the run's creates will need, in one batched read: one lookup per
                # owner as its first create comes would hold every worker behind this lock
                wanted = {owner, *self._owners_ahead}
                try:
                    self._owners.update(await resolve_users(self.client, wanted))
                except RequestFailed as exc:
                    raise _Failed(f"looking up owner {owner}: {exc.reason}", exc.status) from None
                self._owners_ahead.clear()
        problem = owner_problem(self._owners.get(owner))
        if problem is not None:
            raise _Unowned(f"its owner {quoted(owner)}: {problem}")

    async def _post(self, change: Change) -> tuple[Response, str | None]:
        found: list[str | None] = [None]

        async def settle() -> bool:
            try:
                found[0] = await self._find_marker(change)
            except _Failed:
                return False  # unreadable: the POST is not resent blindly (it fails below)
            return found[0] is not None

        try:
            resp = await self.client.request("POST", TASKS_PATH, json=change.body, settle=settle)
        except RequestFailed as exc:
            raise _Failed(f"create: {exc.reason}", exc.status, exc.attempts) from None
        return resp, found[0]

    async def _find_marker(self, change: Change) -> str | None:
        """The id of the target task carrying this copy's marker, if there is one."""
        marker = marker_of(change)
        params: dict[str, Any] = {"limit": 100, "excludeDeleting": "true"}
        app = change.after.get("appId")
        if isinstance(app, str) and app:
            params["appid"] = app  # a fresh copy reports on the mapped app: a short list
        try:
            pages = 0
            async for page in self.client.pages(TASKS_PATH, params, "sharingTasks"):
                for task in page.items:
                    if isinstance(task, dict) and marker in (task.get("tags") or ()):
                        return _checked_id(task.get("id"))
                pages += 1
                if pages >= _MARKER_PAGES:
                    break
        except RequestFailed as exc:
            raise _Failed(f"looking up the marker failed: {exc.reason}", exc.status) from None
        return None

    # --- owner, enabled, read-back ---------------------------------------------------------

    async def _finish(self, idx: int, change: Change, made: _Made) -> dict[str, Any]:
        known = self.progress.copy_of(idx)
        target = made.target
        current = made.created or await self._read(target)
        if current is None:
            raise _Failed(f"the copy {target} is gone before its owner was set")
        if known is None or known[1] is Step.CREATED:
            await self._patch(change, target, current)
            current = await self._read(target)
            if current is None:
                raise _Failed(f"the copy {target} is gone after its owner was set")
        problem = _verify(change, current)
        if problem is not None:
            raise _Failed(f"read back: {problem}")
        self.progress.step(idx, Step.FINISHED)
        return {"id": target, **{k: _field(current, k) for k in change.after}}

    async def _patch(self, change: Change, target: str, current: Mapping[str, Any]) -> None:
        body = patch_ops(change.after, current)
        if not body:
            return  # the caller is the owner and it stays disabled: nothing to write

        async def settle() -> bool:
            now = await self._read(target)
            return now is not None and _verify(change, now, app=False) is None

        try:
            resp = await self.client.request("PATCH", task_path(target), json=body, settle=settle)
        except RequestFailed as exc:
            raise _Failed(f"setting owner and enabled: {exc.reason}", exc.status) from None
        if not (resp.settled or 200 <= resp.status < 300):
            raise _Failed(_answer_error("setting owner and enabled", resp), resp.status)

    async def _read(self, task_id: str) -> dict[str, Any] | None:
        try:
            resp = await self.client.request("GET", task_path(task_id))
        except RequestFailed as exc:
            raise _Failed(f"reading {task_id} failed: {exc.reason}", exc.status) from None
        if resp.status == 404:
            return None
        doc = resp.json() if resp.status == 200 else None
        if not isinstance(doc, dict):
            raise _Failed(f"reading {task_id}: unexpected HTTP {resp.status}", resp.status)
        return doc

    # --- the source, when re-pointing ------------------------------------------------------

    async def _delete_source(self, idx: int, change: Change) -> Mapping[str, Any] | None:
        """Delete the source once its copy is verified; its document is kept first."""
        if DELETE_SOURCE not in change.actions:
            return None
        kept = self.progress.document(idx)
        current = await self._read(change.task_id)
        if current is None or current.get("statusCode") == "DELETING":
            return kept  # gone, or on its way: our delete landed (or another's did)
        if kept is None:
            self.progress.keep_document(idx, current)
            kept = current
        self.progress.step(idx, Step.DELETING)

        async def settle() -> bool:
            now = await self._read(change.task_id)
            return now is None or now.get("statusCode") == "DELETING"

        try:
            resp = await self.client.request("DELETE", task_path(change.task_id), settle=settle)
        except RequestFailed as exc:
            raise _Failed(f"deleting the source: {exc.reason}", exc.status) from None
        if not (resp.settled or 200 <= resp.status < 300 or resp.status == 404):
            raise _Failed(_answer_error("deleting the source", resp), resp.status)
        return kept


def _left_out(change: Change, why: str) -> CopyResult:
    """A copy not made for want of an owner: a restore is listed as not restorable (skipped,
    as DELETING tasks are), a copy fails; neither sent a request."""
    if change.actions[0] == _RESTORE:
        note = f"not restorable: {why}; nothing was created"
        log.warning("not-restorable", task_id=change.task_id, reason=note)
        return CopyResult("skipped", note=note)
    return CopyResult("failed", error=f"not created: {why}")


def patch_ops(want: Mapping[str, Any], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The one PATCH after a create: the owner (if it is not the caller), then the final
    `enabled` (always with a new owner: an owner change may disable a task by itself)."""
    ops: list[dict[str, Any]] = []
    if current.get("owner") != want.get("owner"):
        ops.append({"op": "replace", "path": "/ownerId", "value": want.get("owner")})
    if ops or current.get("enabled") != want.get("enabled"):
        ops.append({"op": "replace", "path": "/enabled", "value": want.get("enabled")})
    return ops


def _verify(change: Change, task: Mapping[str, Any], *, app: bool = True) -> str | None:
    """What the read-back copy gets wrong (owner, enabled, the mapped app), or None."""
    want = change.after
    for key in ("owner", "enabled"):
        if key in want and task.get(key) != want[key]:
            return f"{key} is {task.get(key)!r}, expected {want[key]!r}"
    if app and want.get("appId") and app_of(task) != want["appId"]:
        return f"app is {app_of(task)!r}, expected {want['appId']!r}"
    return None


def _field(task: Mapping[str, Any], key: str) -> Any:
    return app_of(task) if key == "appId" else task.get(key)


def _created_doc(resp: Response) -> Mapping[str, Any]:
    """The task a create's 2xx answer holds ({} for any other answer, or no task)."""
    if not 200 <= resp.status < 300:
        return {}
    try:
        doc = resp.json()
    except RequestFailed:
        return {}
    return doc if isinstance(doc, dict) else {}


def _checked_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        check_id(value)
    except UnsafeId:
        raise _Failed("the target answered with an id that cannot be used in a path") from None
    return value


def _answer_error(what: str, resp: Response) -> str:
    try:
        doc = resp.json()
        first = doc["errors"][0]
        detail = f"{first.get('title', '')} {first.get('detail', '')}".strip()
    except (RequestFailed, KeyError, IndexError, TypeError):
        detail = ""
    return f"{what}: HTTP {resp.status}{': ' + detail if detail else ''}"
