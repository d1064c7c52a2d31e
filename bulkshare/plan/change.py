"""A plan and its changes: what one job will do to one tenant, as data that can be saved,
reloaded and checked for tampering (`content_hash`).
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.errors import PlanFileError
from bulkshare.plan.effects import DELETE_GUARD_FIELDS, EffectKind
from bulkshare.vocab import TASKS_PATH

__all__ = [
    "DELETE_GUARD_FIELDS",
    "IDENTITY_FIELDS",
    "PLAN_FORMAT",
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
    #: fields of `after` the service is expected to change by itself, not written by the request
    side_effects: tuple[str, ...] = ()

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

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "actions": list(self.actions),
            "request": {"method": self.method, "path": self.path, "body": self.body},
            "before": dict(self.before),
            "after": dict(self.after),
            "task": dict(self.task),
            "side_effects": list(self.side_effects),
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
            _strings(doc.get("side_effects") or []),
        )


def _str(value: Any) -> str:
    # never str(): a number where an id is due is a broken file, not an id
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(_str(item) for item in value)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


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
    #: a copy plan's source, target and the tasks already copied (bulkshare.copy.CopyInfo)
    copy: Mapping[str, Any] | None = None
    _planned: set[tuple[str, EffectKind]] = field(
        default_factory=set, init=False, repr=False, compare=False
    )

    def add(self, changes: Iterable[Change]) -> None:
        """Append a task's changes; DuplicateChange if one repeats a request kind for its task."""
        for change in changes:
            key = (change.task_id, change.kind)
            if key in self._planned:
                raise DuplicateChange(
                    f"task {quoted(change.task_id)} would get a second {change.kind.value} request"
                )
            self._planned.add(key)
            self.changes.append(change)

    def counts(self) -> dict[str, int]:
        """Changes per action label."""
        return dict(Counter(c.action for c in self.changes))

    def writes(self) -> int:
        """Write requests the plan will send (a copy sends 2, or 3 when it deletes its source)."""
        return sum(c.write_requests for c in self.changes)

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
            "rejected": [r.to_json() for r in self.rejected],
            "changes": [c.to_json() for c in self.changes],
        }
        if self.accepted_incomplete is not None:  # only then: other plans keep their shape
            body["accepted_incomplete"] = dict(self.accepted_incomplete)
        if self.copy is not None:
            body["copy"] = dict(self.copy)
        body["content_hash"] = _content_hash(body)
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
        collecting = gc.isenabled()
        gc.disable()
        try:
            # a regular file only: a FIFO named PLAN.json must not hang the command
            doc = orjson.loads(safefile.read_regular(path, PLAN_MAX_BYTES))
            return cls.from_json(doc, path)
        except safefile.FileRefused as exc:
            raise PlanFileError(f"{path}: plan file {exc.reason}") from None
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
        if claimed != _content_hash({k: v for k, v in doc.items() if k not in _UNHASHED}):
            raise PlanFileError(
                f"{path}: content_hash does not match: the plan was changed "
                "after it was written; plan again"
            )
        try:
            return cls._from_checked(doc)
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
            copy=_optional_mapping(doc.get("copy")),
        )


def _max_changes(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"max_changes: expected an integer, got {type(value).__name__}")
    return value


#: keys of a plan file its content hash does not cover: the hash itself, and what signs it
_UNHASHED = ("content_hash", "signature")


def sign(content_hash: str, key: bytes) -> str:
    """The signature of a plan: hex HMAC-SHA256 of its content hash (ASCII hex) under `key`."""
    return hmac.new(key, content_hash.encode("ascii"), hashlib.sha256).hexdigest()


def _optional_mapping(value: Any) -> Mapping[str, Any] | None:
    return None if value is None else _mapping(value)


def _content_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
