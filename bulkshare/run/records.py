"""What a run writes about each change and about itself: the audit `change` record and
`summary.json`, each a dataclass with one writer (`to_fields`/`to_json`) and one reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from bulkshare.audit import read_records
from bulkshare.errors import RunFileError

__all__ = [
    "CHANGE_EVENT",
    "ChangeRecord",
    "Outcome",
    "Summary",
    "change_records",
    "is_failure",
    "is_gone",
]

#: the audit event of one change's outcome
CHANGE_EVENT = "change"


class Outcome(StrEnum):
    """What happened to one planned change."""

    APPLIED = "applied"  # the write was made (or an in-doubt write was found made)
    SKIPPED = "skipped"  # already in the target state when re-read; nothing sent
    ABSENT = "absent"  # the task no longer exists (for a delete: done)
    CONFLICT = "conflict"  # the task changed since planning; left untouched
    FAILED = "failed"  # the service refused or never answered


def is_gone(outcome: str, method: str) -> bool:
    """A change other than a delete that found its task gone: it could not do its work."""
    return outcome == Outcome.ABSENT.value and method != "DELETE"


def is_failure(outcome: str, method: str) -> bool:
    """Whether an outcome fails its change (and the run, exit 1): failed, conflict, or absent
    for anything but a delete (for a delete, a task gone is done)."""
    return outcome in (Outcome.FAILED.value, Outcome.CONFLICT.value) or is_gone(outcome, method)


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One change's outcome, as its audit record holds it (besides the chain's own fields)."""

    index: int  #: the change's position in the plan
    task_id: str
    action: str
    method: str
    path: str
    body: Any
    before: Mapping[str, Any]
    after: Mapping[str, Any] | None  #: what the task became, when known
    outcome: Outcome
    http_status: int | None
    attempts: int
    error: str | None
    task: Mapping[str, Any] = field(default_factory=dict)  #: identity fields, for people
    settled_by_read: bool = False  #: an in-doubt write found applied by reading the task
    #: the chain's fields (ts, seq, hash, ...) of a record read back; empty when writing
    envelope: Mapping[str, Any] = field(default_factory=dict)

    def to_fields(self) -> dict[str, Any]:
        """The record's own fields, for `AuditLog.buffer_fields`."""
        fields: dict[str, Any] = {
            "index": self.index,
            "task_id": self.task_id,
            "action": self.action,
            "request": {"method": self.method, "path": self.path, "body": self.body},
            "before": _plain(self.before),
            "after": None if self.after is None else _plain(self.after),
            "outcome": self.outcome.value,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "error": self.error,
            "task": _plain(self.task),
        }
        if self.settled_by_read:
            fields["settled_by_read"] = True
        return fields

    def to_json(self) -> dict[str, Any]:
        """The whole record as read, chain fields included."""
        return {**self.envelope, "event": CHANGE_EVENT, **self.to_fields()}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ChangeRecord:
        """Read one `change` record; ValueError if it is not one."""
        request = rec.get("request")
        if not isinstance(request, dict):
            raise ValueError("change record without a request")
        try:
            return cls(
                index=_int(rec.get("index")),
                task_id=str(rec["task_id"]),
                action=str(rec["action"]),
                method=str(request["method"]),
                path=str(request["path"]),
                body=request.get("body"),
                before=_mapping(rec.get("before") or {}),
                after=None if rec.get("after") is None else _mapping(rec["after"]),
                outcome=Outcome(rec["outcome"]),
                http_status=_optional_int(rec.get("http_status")),
                attempts=_optional_int(rec.get("attempts")) or 0,
                error=None if rec.get("error") is None else str(rec["error"]),
                task=_mapping(rec.get("task") or {}),
                settled_by_read=rec.get("settled_by_read") is True,
                envelope={k: v for k, v in rec.items() if k in _ENVELOPE},
            )
        except KeyError as exc:
            raise ValueError(f"change record without {exc}") from None


#: the fields every audit record carries besides its own
_ENVELOPE = ("ts", "run_id", "seq", "tenant", "job", "prev_hash", "hash")


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A dict the serializer takes: the mapping itself when it is one already."""
    return fields if type(fields) is dict else dict(fields)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("change record without an integer index")
    return value


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def change_records(audit: Path) -> Iterator[ChangeRecord]:
    """Every change record of a run's audit log, in order (none if there is no log yet)."""
    if not audit.exists():
        return
    for rec in read_records(audit):
        if rec.get("event") == CHANGE_EVENT:
            try:
                yield ChangeRecord.from_record(rec)
            except ValueError as exc:
                raise RunFileError(f"{audit}: record {rec.get('seq')}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of a run, as written to summary.json."""

    run_id: str
    tenant: str
    job: str
    started: str
    ended: str
    duration_s: float
    planned: int
    counts: Mapping[str, int]
    by_action: Mapping[str, Mapping[str, int]]
    throttled: int
    exit_code: int
    #: changes other than deletes that found their task gone (outcome absent, a failure)
    gone: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "tenant": self.tenant,
            "job": self.job,
            "started": self.started,
            "ended": self.ended,
            "duration_s": self.duration_s,
            "planned": self.planned,
            "counts": dict(self.counts),
            "by_action": {k: dict(v) for k, v in self.by_action.items()},
            "429s_seen": self.throttled,
            "exit_code": self.exit_code,
            "task_gone": self.gone,
        }

    def write(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2))

    @classmethod
    def read(cls, path: Path) -> Summary | None:
        """summary.json, or None before the run has finished."""
        if not path.exists():
            return None
        try:
            doc = orjson.loads(path.read_bytes())
            return cls(
                str(doc["run_id"]),
                str(doc["tenant"]),
                str(doc["job"]),
                str(doc["started"]),
                str(doc["ended"]),
                float(doc["duration_s"]),
                int(doc["planned"]),
                {str(k): int(v) for k, v in doc["counts"].items()},
                {
                    str(a): {str(k): int(v) for k, v in c.items()}
                    for a, c in doc["by_action"].items()
                },
                int(doc["429s_seen"]),
                int(doc["exit_code"]),
                int(doc.get("task_gone", 0)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunFileError(f"{path}: malformed summary: {exc!r}") from None
