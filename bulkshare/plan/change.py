"""A plan and its changes: what one job will do to one tenant, as data that can be saved,
reloaded and checked for tampering (`content_hash`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.client.caller import Caller, MalformedCaller
from bulkshare.errors import PlanFileError
from bulkshare.heap import collector_paused
from bulkshare.plan.digest import content_hash, content_hash_by_part, sign
from bulkshare.plan.effects import DELETE_GUARD_FIELDS, EffectKind
from bulkshare.plan.filevalues import json_list as _list
from bulkshare.plan.filevalues import mapping as _mapping
from bulkshare.plan.filevalues import max_changes_value as _max_changes
from bulkshare.plan.filevalues import optional_mapping as _optional_mapping
from bulkshare.plan.filevalues import optional_text as _optional_str
from bulkshare.plan.filevalues import text as _str
from bulkshare.plan.filevalues import texts as _strings
from bulkshare.vocab import TASKS_PATH

__all__ = [
    "DELETE_GUARD_FIELDS",
    "IDENTITY_FIELDS",
    "NEW_OWNER",
    "NEW_OWNER_NAME",
    "PLAN_FORMAT",
    "PLAN_SCOPES",
    "Change",
    "DuplicateChange",
    "Plan",
    "Rejected",
    "quoted",
    "sign",
]

PLAN_FORMAT = "bulkshare-plan/1"
#: the largest plan file read (a million changes take well under a gigabyte)
PLAN_MAX_BYTES = 4 * 1024**3
#: task fields shown with every change, for people reading a plan or an audit record
IDENTITY_FIELDS = ("name", "owner", "ownerName", "appId", "appName", "type", "statusCode")
#: identity keys a change that writes /ownerId adds: the new owner's id and display name, as
#: the users API resolved them when planning
NEW_OWNER, NEW_OWNER_NAME = "newOwner", "newOwnerName"
#: the scopes a plan may cover: every task, or only its caller's own (`scope` of the tenant)
PLAN_SCOPES = ("all", "own")


@dataclass(frozen=True, slots=True)
class Change:
    """One request to send for one task, with the state it expects and the state it leaves.

    Its guard is what the drift check before the write compares (`run.judge`): the fields it
    writes (`before` -> `after`) and the fields its operations selected on (`selects`, with
    the `selection` that chose the task). Anything else about the task may change freely.
    """

    task_id: str
    actions: tuple[str, ...]  #: action kinds merged into this request, in file order
    method: str
    path: str
    body: Any
    #: the fields this change writes, as planned from (a delete: owner, enabled and
    #: statusCode as they were, for people; a delete writes no field)
    before: Mapping[str, Any]
    after: Mapping[str, Any]  #: the fields it writes, after the change ({} for a delete)
    task: Mapping[str, Any] = field(default_factory=dict)  #: identity fields, for people
    #: task field -> its planned value, for every field its operations selected on
    #: (statusCode always: a task on its way out, DELETING, is only touched by a delete)
    selects: Mapping[str, Any] = field(default_factory=dict)
    #: per operation, the part of its `where` the task could stop matching (a where table,
    #: `job.selection_of`): re-checked when a selected field moved
    selection: tuple[Mapping[str, Any], ...] = ()
    #: what the plan expects besides its writes and relies on for nothing, set for an owner
    #: change: `enabled` (only for an enabled task whose PATCH leaves /enabled alone): False,
    #: it may be disabled by the service, or True, it is enabled again if it is (keep_enabled);
    #: `taskErrors`: the error values the task had, so new ones are reported
    expect: Mapping[str, Any] = field(default_factory=dict)

    def with_request(self, method: str, path: str, body: Any) -> Change:
        """This change sending the given request (`dataclasses.replace`, spelled out: resume
        rebuilds every change of a run, and replace looks the fields up each time)."""
        return Change(
            self.task_id,
            self.actions,
            method,
            path,
            body,
            self.before,
            self.after,
            self.task,
            self.selects,
            self.selection,
            self.expect,
        )

    @property
    def kind(self) -> EffectKind:
        """Whether this is a PATCH, a DELETE, an execute or a cancel."""
        if self.method == "DELETE":
            return EffectKind.DELETE
        if self.method == "PATCH":
            return EffectKind.PATCH
        if self.path == TASKS_PATH:
            return EffectKind.CREATE
        return EffectKind.EXECUTE if self.path.endswith("/actions/execute") else EffectKind.CANCEL

    @property
    def write_requests(self) -> int:
        """Writes this change sends: a copy creates, sets owner and enabled, and may delete
        its source; every other change is one request."""
        if self.kind is not EffectKind.CREATE:
            return 1
        return 3 if "delete-source" in self.actions else 2

    @property
    def action(self) -> str:
        """The actions, joined, as one label."""
        return "+".join(self.actions)

    @property
    def writes(self) -> dict[str, tuple[Any, Any]]:
        """Each field the request writes: (planned before-value, after-value)."""
        return {name: (self.before.get(name), value) for name, value in self.after.items()}

    @property
    def reenables(self) -> bool:
        """Whether a task the service disabled after this owner change is enabled again."""
        return self.expect.get("enabled") is True

    def ending(self) -> str | None:
        """How an owner change is expected to leave `enabled`, in words (None: no owner change)."""
        if self.method != "PATCH" or "owner" not in self.after:
            return None
        if "enabled" in self.after:
            return "enabled" if self.after["enabled"] is True else "disabled"
        if "enabled" not in self.expect:
            return "stays disabled"
        if self.reenables:
            return "enabled (re-enabled if the service disables it)"
        return "may be disabled by the service"

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "actions": list(self.actions),
            "request": {"method": self.method, "path": self.path, "body": self.body},
            "before": dict(self.before),
            "after": dict(self.after),
            "task": dict(self.task),
            "selects": dict(self.selects.items()),  # a Selected: decoded once
            "selection": [dict(s) for s in self.selection],
            "expect": dict(self.expect),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Change:
        """A change as saved; its request is taken as written (see plan.requests.rebuild)."""
        req = _mapping(doc["request"])
        return cls(
            _str(doc["task_id"]),
            _strings(doc["actions"]),
            _str(req["method"]),
            _str(req["path"]),
            req.get("body"),
            _mapping(doc["before"]),
            _mapping(doc["after"]),
            _mapping(doc.get("task") or {}),
            _mapping(doc.get("selects") or {}),
            tuple(_mapping(s) for s in _list(doc.get("selection") or [])),
            _mapping(doc.get("expect") or {}),
        )


@dataclass(frozen=True)
class Rejected:
    """A listed task left alone because a field the job reads has a value of the wrong type."""

    task_id: str
    reason: str  #: e.g. "tags is a string, expected a list"
    task: Mapping[str, Any] = field(default_factory=dict)  #: identity fields, for people

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "reason": self.reason, "task": dict(self.task)}

    @classmethod
    def from_json(cls, doc: Any) -> Rejected:
        doc = _mapping(doc)
        return cls(_str(doc["task_id"]), _str(doc["reason"]), _mapping(doc.get("task") or {}))


def quoted(text: object) -> str:
    """File or tenant text in a one-line message: JSON-quoted (escapes visible), shortened."""
    shown = json.dumps(text, default=str)
    return shown if len(shown) <= 80 else shown[:76] + '..."'


class DuplicateChange(ValueError):
    """Two requests of one kind for one task in one plan: the plan cannot be trusted."""


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
    rejected: list[Rejected] = field(default_factory=list)  #: tasks with wrongly typed values
    #: as read from a file: its verified content hash and its signature, if it had one
    content_hash: str | None = None
    signature: str | None = None
    #: set when the listing did not add up to totalCount and the user accepted it
    #: (--accept-incomplete): {"listed", "total_count", "duplicates"}
    accepted_incomplete: Mapping[str, Any] | None = None
    #: the tenant's URL as configured (BUILTIN_SIM_URL for the built-in simulator): `apply
    #: PLAN.json` refuses a tenant of the same name at another URL
    tenant_url: str | None = None
    #: who made the plan (`/users/me` when it was made); None only in plans made in code
    caller: Caller | None = None
    #: "all": every task of the tenant; "own": the caller's own tasks only
    scope: str = "all"
    #: a copy plan's source, target and the tasks already copied (bulkshare.copy.CopyInfo)
    copy: Mapping[str, Any] | None = None
    #: the job's description and its criteria in words (plan.criteria), for approvers
    description: str = ""
    criteria: tuple[str, ...] = ()
    #: request kind -> the tasks planned one, as the keys of a dict (no key tuple per change;
    #: and a dict, not a set, which grows four times over at a time: 21,760 ids took 2.1 MB
    #: in a set and 0.4 MB as a dict's keys)
    _planned: dict[EffectKind, dict[str, None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def add(self, changes: Iterable[Change]) -> None:
        """Append a task's changes; DuplicateChange if one repeats a request kind for its task."""
        for change in changes:
            planned = self._planned.setdefault(change.kind, {})
            if change.task_id in planned:
                raise DuplicateChange(
                    f"task {quoted(change.task_id)} would get a second {change.kind.value} request"
                )
            planned[change.task_id] = None
            self.changes.append(change)

    def counts(self) -> dict[str, int]:
        """Changes per action label."""
        return dict(Counter(c.action for c in self.changes))

    def writes(self) -> int:
        """Write requests the plan will send (a copy sends 2, or 3 when it deletes its source)."""
        return sum(c.write_requests for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        body = self._body([c.to_json() for c in self.changes])
        body["content_hash"] = content_hash(body)
        return body

    def hash_of_content(self) -> str:
        """The content_hash `to_json` records, hashed one change at a time: a report of a large
        plan need not build the whole document (twice the plan's memory) to show its hash."""
        return content_hash_by_part(self._body, (c.to_json() for c in self.changes))

    def _body(self, changes: Any) -> dict[str, Any]:
        """The plan document without its hash, with `changes` as the changes' value."""
        body = {
            "format": PLAN_FORMAT,
            "created_at": self.created_at,
            "tenant": self.tenant,
            "tenant_url": self.tenant_url,
            "caller": None if self.caller is None else self.caller.to_json(),
            "scope": self.scope,
            "job": {
                "name": self.job_name,
                "path": self.job_path,
                "sha256": self.job_sha256,
                "max_changes": self.max_changes,
                # only when set: plans made in code keep their shape and hash
                **({"description": self.description} if self.description else {}),
                **({"criteria": list(self.criteria)} if self.criteria else {}),
            },
            "scanned": self.scanned,
            "skipped": dict(self.skipped),
            "counts": self.counts(),
            "rejected": [r.to_json() for r in self.rejected],
            "changes": changes,
        }
        if self.accepted_incomplete is not None:  # only then: other plans keep their shape
            body["accepted_incomplete"] = dict(self.accepted_incomplete)
        if self.copy is not None:
            body["copy"] = dict(self.copy)
        return body

    def write(self, path: Path, key: bytes | None = None) -> None:
        """Write the plan as JSON (atomically; a symlink there is replaced, a device refused);
        with a key, signed (HMAC-SHA256 of its hash)."""
        doc = self.to_json()
        if key is not None:
            doc["signature"] = sign(doc["content_hash"], key)
        # compact: resume reads it fast
        safefile.write_atomic(path, orjson.dumps(doc) + b"\n")

    @classmethod
    def read(cls, path: Path) -> Plan:
        """Load a plan file; PlanFileError if it is unreadable or was changed after writing."""
        # loading builds millions of small objects and no cycles: with the collector paused it
        # takes a quarter of the time, and frozen afterwards the plan is never scanned again by
        # the collections the run's own allocations trigger
        try:
            with collector_paused():
                # a regular file only: a FIFO named PLAN.json must not hang the command
                doc = orjson.loads(safefile.read_regular(path, PLAN_MAX_BYTES))
                return cls.from_json(doc, path)
        except safefile.FileRefused as exc:
            raise PlanFileError(f"{path}: plan file {exc.reason}") from None
        except orjson.JSONDecodeError as exc:
            raise PlanFileError(f"{path}: not a plan file (malformed JSON: {exc})") from None

    @classmethod
    def from_json(cls, doc: Any, path: Path) -> Plan:
        if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
            raise PlanFileError(f"{path}: not a bulkshare plan (format {PLAN_FORMAT} expected)")
        claimed = doc.get("content_hash")
        if claimed != content_hash({k: v for k, v in doc.items() if k not in _UNHASHED}):
            raise PlanFileError(
                f"{path}: content_hash does not match: the plan was changed "
                "after it was written; plan again"
            )
        try:
            return cls._from_checked(doc)
        except MalformedCaller as exc:
            raise PlanFileError(f"{path}: malformed plan: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanFileError(f"{path}: malformed plan: {exc!r}") from None

    @classmethod
    def _from_checked(cls, doc: dict[str, Any]) -> Plan:
        job = _mapping(doc["job"])
        signature = doc.get("signature")
        return cls(
            _str(doc["tenant"]),
            _str(job["name"]),
            _str(job["path"]),
            _str(job["sha256"]),
            _str(doc["created_at"]),
            [Change.from_json(c) for c in doc["changes"]],
            Counter(doc.get("skipped") or {}),
            int(doc.get("scanned", 0)),
            _max_changes(job.get("max_changes")),
            [Rejected.from_json(r) for r in doc.get("rejected") or []],
            _str(doc["content_hash"]),
            None if signature is None else _str(signature),
            _optional_mapping(doc.get("accepted_incomplete")),
            _optional_str(doc.get("tenant_url")),
            None if doc.get("caller") is None else Caller.from_json(doc["caller"]),
            _scope(doc.get("scope", "all")),
            copy=_optional_mapping(doc.get("copy")),
            description=_str(job.get("description", "")),
            criteria=_strings(job.get("criteria", [])),
        )


#: keys of a plan file its content hash does not cover: the hash itself, and what signs it
_UNHASHED = ("content_hash", "signature")


def _scope(value: Any) -> str:
    if value not in PLAN_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(PLAN_SCOPES)}")
    return _str(value)
