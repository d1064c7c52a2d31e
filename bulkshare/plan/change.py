"""A plan and its changes: what one job will do to one tenant, as data that can be saved,
reloaded and checked for tampering (`content_hash`).
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkshare.errors import PlanFileError
from bulkshare.plan.effects import EffectKind

__all__ = ["DELETE_GUARD_FIELDS", "IDENTITY_FIELDS", "PLAN_FORMAT", "Change", "Plan"]

PLAN_FORMAT = "bulkshare-plan/1"
#: task fields shown with every change, for people reading a plan or an audit record
IDENTITY_FIELDS = ("name", "owner", "ownerName", "appId", "appName", "type", "statusCode")
#: fields a planned delete expects unchanged when it is re-read before sending
DELETE_GUARD_FIELDS = ("owner", "enabled", "statusCode")


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
    #: set when the listing did not add up to totalCount and the user accepted it
    #: (--accept-incomplete): {"listed", "total_count", "duplicates"}
    accepted_incomplete: Mapping[str, Any] | None = None

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
        if self.accepted_incomplete is not None:  # only then: other plans keep their shape
            body["accepted_incomplete"] = dict(self.accepted_incomplete)
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
                _optional_mapping(doc.get("accepted_incomplete")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanFileError(f"{path}: malformed plan: {exc!r}") from None


def _optional_mapping(value: Any) -> Mapping[str, Any] | None:
    return None if value is None else _mapping(value)


def _content_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
