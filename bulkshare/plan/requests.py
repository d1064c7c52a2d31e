"""The one place a change becomes an HTTP request, when planning and when a saved plan is loaded.

A saved plan's stored request is never sent: it is rebuilt from the change's meaning and refused
unless the two agree and the rebuilt one is an operation of the sharing-tasks API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import orjson

from bulkshare.job.extras import patch_value_problem
from bulkshare.job.model import ActionKind
from bulkshare.job.where import where_of_selection
from bulkshare.plan.change import Change, quoted
from bulkshare.plan.effects import EffectKind
from bulkshare.vocab import PATH_FIELDS, TASKS_PATH, task_path

__all__ = [
    "EXECUTE_PATH",
    "FIELD_PATHS",
    "Request",
    "RequestProblem",
    "kind_of_actions",
    "rebuild",
    "request_for",
]

EXECUTE_PATH = f"{TASKS_PATH}/actions/execute"
#: task field -> the PATCH path that writes it
FIELD_PATHS: Mapping[str, str] = {name: path for path, name in PATH_FIELDS.items()}
#: what a change may expect besides its writes (Change.expect), and the type of each
_EXPECTED: Mapping[str, type] = {"enabled": bool, "taskErrors": list}
_UNDO = "undo-"
_POST_KINDS = {ActionKind.EXECUTE: EffectKind.EXECUTE, ActionKind.CANCEL: EffectKind.CANCEL}


class RequestProblem(ValueError):
    """A change that no request of the API can carry, or whose stored request is not its own."""


@dataclass(frozen=True)
class Request:
    """What is sent for one change."""

    method: str
    path: str  #: relative to /api
    body: Any

    @property
    def parts(self) -> tuple[str, str, Any]:
        return self.method, self.path, self.body


def request_for(kind: EffectKind, task_id: str, writes: Mapping[str, Any]) -> Request:
    """The request of a change of `kind` to `task_id`; `writes` is PATCH path -> value (None
    removes), for a PATCH only."""
    if kind is EffectKind.PATCH:
        return Request("PATCH", task_path(task_id), patch_body(writes))
    if kind is EffectKind.DELETE:
        return Request("DELETE", task_path(task_id), None)
    if kind is EffectKind.EXECUTE:
        return Request("POST", EXECUTE_PATH, {"sharingTaskID": task_id})
    return Request("POST", f"{task_path(task_id)}/actions/cancel", None)


def patch_body(writes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON-Patch ops, the owner first: an owner change disables a task unless /enabled follows."""
    ordered = sorted(writes.items(), key=lambda item: item[0] != "/ownerId")
    return [
        {"op": "remove", "path": p} if v is None else {"op": "replace", "path": p, "value": v}
        for p, v in ordered
    ]


@lru_cache(maxsize=256)
def kind_of_actions(actions: tuple[str, ...]) -> EffectKind:
    """The request kind a change's actions make; RequestProblem for any other combination.

    Earlier PATCH actions may be merged into a delete (the delete wins); executes and cancels
    stand alone; `undo-` actions invert PATCHes only. Cached: a plan repeats a few tuples.
    """
    kinds = [_kind_of(action) for action in actions]
    if not kinds:
        raise RequestProblem("the change names no action")
    if kinds[-1] is EffectKind.DELETE and all(k is EffectKind.PATCH for k in kinds[:-1]):
        return EffectKind.DELETE
    if len(set(kinds)) != 1 or EffectKind.DELETE in kinds:
        raise RequestProblem(f"actions {'+'.join(actions)} cannot go out as one request")
    return kinds[0]


def _kind_of(action: str) -> EffectKind:
    base = action
    while base.startswith(_UNDO):  # an undo of an undo is undo-undo-...
        base = base.removeprefix(_UNDO)
    if base not in _ACTION_KINDS:
        raise RequestProblem(f"unknown action {quoted(action)}")
    kind = _ACTION_KINDS[base]
    if action.startswith(_UNDO) and kind is not EffectKind.PATCH:
        raise RequestProblem(f"{quoted(action)}: only PATCH actions are undone")
    return kind


#: action name -> the kind of request it makes
_ACTION_KINDS: Mapping[str, EffectKind] = {
    action.value: EffectKind.DELETE
    if action is ActionKind.DELETE
    else _POST_KINDS.get(action, EffectKind.PATCH)
    for action in ActionKind
}


def writes_of(after: Mapping[str, Any]) -> dict[str, Any]:
    """The PATCH writes that leave a task as `after`."""
    writes: dict[str, Any] = {}
    for name, value in after.items():
        if name not in FIELD_PATHS:
            raise RequestProblem(f"after-state field {quoted(name)} is not a PATCH field")
        problem = None if value is None else patch_value_problem(FIELD_PATHS[name], value)
        if problem:
            raise RequestProblem(f"{name}: {problem}")
        writes[FIELD_PATHS[name]] = value
    if not writes:
        raise RequestProblem("a PATCH that writes nothing")
    return writes


def check_expect(change: Change) -> None:
    """An expectation belongs to an owner change only, and `enabled` only when not written:
    expect.enabled = true makes the run enable the task again, so it is checked like a write."""
    expect = change.expect
    if not expect:
        return
    if change.method != "PATCH" or "owner" not in change.after:
        raise RequestProblem("only an owner change has expectations (expect)")
    for name, value in expect.items():
        wanted = _EXPECTED.get(name)
        if wanted is None or type(value) is not wanted:
            raise RequestProblem(f"expect {quoted(name)} is no expectation the plan makes")
    if "enabled" in expect and "enabled" in change.after:
        raise RequestProblem("expect.enabled beside a write of enabled")
    if not all(isinstance(v, str) for v in expect.get("taskErrors", [])):
        raise RequestProblem("expect.taskErrors: expected a list of error values")


def check_selection(change: Change) -> None:
    """Each selection must be a where filter (it decides whether the change is still due)."""
    for selection in change.selection:
        try:
            where_of_selection(selection)
        except (ValueError, TypeError) as exc:
            raise RequestProblem(str(exc)) from None


def check_path(request: Request, task_id: str) -> None:
    """The path must be its operation's template with the task id as exactly one segment."""
    if not task_id or _CONTROL.search(task_id):
        raise RequestProblem(f"task id {quoted(task_id)} is not a task id")
    if request.path == EXECUTE_PATH:
        return
    rest = request.path.removeprefix(f"{TASKS_PATH}/").removesuffix("/actions/cancel")
    if rest == request.path or not _one_segment(rest):
        raise RequestProblem(f"path {quoted(request.path)} leaves the task's own endpoint")


def _one_segment(segment: str) -> bool:
    # checked as sent and as the server may decode it: no separator, no dot segment, either way
    decoded = unquote(segment) if "%" in segment else segment
    if decoded in ("", ".", ".."):
        return False
    return not _UNSAFE.search(segment) and not _UNSAFE.search(decoded)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSAFE = re.compile(r"[/?#\\]")


def rebuild(change: Change) -> Change:
    """`change` with the request its meaning makes; RequestProblem if the stored one differs.

    The meaning is the task id, the actions and, for a PATCH, the after-state it writes (and
    what it expects: `expect.enabled = true` sends a re-enable of its own, so it is checked).
    """
    if change.kind is EffectKind.CREATE:
        return _rebuilt_create(change)
    try:
        request, canonical_body = _request_of(kind_of_actions(change.actions), change)
    except RequestProblem:
        raise
    except ValueError as exc:  # an id the path builder refuses
        raise RequestProblem(str(exc)) from None
    check_path(request, change.task_id)
    # bytes, not ==: in Python True == 1 == 1.0, and a stored 1 must not pass for true
    if (change.method, change.path) != (request.method, request.path) or _canonical_body(
        change.body
    ) != canonical_body:
        raise RequestProblem(_difference(Request(change.method, change.path, change.body), request))
    # sent from here on: the rebuilt request, never the objects the file held
    rebuilt = change.with_request(request.method, request.path, request.body)
    check_expect(rebuilt)
    check_selection(rebuilt)
    return rebuilt


def _rebuilt_create(change: Change) -> Change:
    """A copy's create: its body is its meaning, checked whole (bulkshare.copy.checks)."""
    from bulkshare.copy.checks import create_problem  # the copy package builds on this one

    problem = create_problem(
        change.task_id, change.actions, change.method, change.path, change.body, change.after
    )
    if problem is not None:
        raise RequestProblem(problem)
    return change


def _request_of(kind: EffectKind, change: Change) -> tuple[Request, bytes]:
    """The request a change of `kind` makes, with its body's canonical bytes."""
    if kind is EffectKind.PATCH:
        body, canonical_body = _patch_of(orjson.dumps(change.after))
        return Request("PATCH", task_path(change.task_id), body), canonical_body
    if change.after:
        raise RequestProblem(f"a {kind.value} has no after-state to write")
    request = request_for(kind, change.task_id, {})
    return request, _canonical_body(request.body)


@lru_cache(maxsize=256)
def _patch_of(after: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """The PATCH body that writes `after` (its JSON), with its canonical form: built once for
    the changes that write the same (a plan's changes mostly do), shared by them and never
    changed (a body is sent, not edited)."""
    body = patch_body(writes_of(orjson.loads(after)))
    return body, _canonical_body(body)


def _canonical_body(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _canonical(method: str, path: str, body: Any) -> bytes:
    # bytes, not ==: in Python True == 1 == 1.0, and a stored 1 must not pass for true
    return orjson.dumps([method, path, body], option=orjson.OPT_SORT_KEYS)


def _difference(stored: Request, rebuilt: Request) -> str:
    if stored.method != rebuilt.method or stored.path != rebuilt.path:
        return (
            f"the stored request {quoted(stored.method)} {quoted(stored.path)} is not the one its "
            f"change makes ({rebuilt.method} {quoted(rebuilt.path)})"
        )
    if isinstance(stored.body, list) and isinstance(rebuilt.body, list):
        return _patch_difference(stored.body, rebuilt.body)
    return f"the stored body of its {rebuilt.method} is not the one its change makes"


def _patch_difference(stored: list[Any], rebuilt: list[dict[str, Any]]) -> str:
    wanted = {op["path"]: op for op in rebuilt}
    for index, op in enumerate(stored):
        path = op.get("path") if isinstance(op, dict) else None
        if path not in wanted:
            return f"PATCH op {index} writes {quoted(path)}, which its after-state does not name"
        if _canonical("", "", op) != _canonical("", "", wanted[path]):
            return f"PATCH op {index} on {path} does not write what its after-state says"
    return "the stored PATCH body is not the one its after-state makes (ops missing or reordered)"
