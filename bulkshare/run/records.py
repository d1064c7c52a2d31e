"""What a run writes about each change and about itself: the audit `change` record and
`summary.json`, each a dataclass with one writer (`to_fields`/`to_json`) and one reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.audit import verify
from bulkshare.errors import RunFileError, UsageError
from bulkshare.run.checkpoint import AuditMark

__all__ = [
    "CHANGE_EVENT",
    "NOT_READ_BACK",
    "ChangeRecord",
    "Outcome",
    "Summary",
    "change_records",
    "is_failure",
    "is_gone",
    "read_changes",
]

#: the audit event of one change's outcome
CHANGE_EVENT = "change"
#: how the note of an applied write that could not be read back begins
NOT_READ_BACK = "not read back"


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
    #: the record as read back, for its chain fields (ts, seq, hash, ...); empty when writing
    envelope: Mapping[str, Any] = field(default_factory=dict)
    #: an applied PATCH's task as read back after it (its written fields, enabled, owner,
    #: taskErrors); None when it was not read back (then `note` says why)
    observed: Mapping[str, Any] | None = None
    #: how the read-back differs from the plan's expectation (judge.SideEffect.to_json)
    side_effects: tuple[Mapping[str, Any], ...] = ()
    #: why a change was skipped (no longer selected) or not read back, in words
    note: str | None = None
    #: the follow-up PATCH /enabled true of a keep_enabled owner change the service disabled:
    #: {outcome, http_status, attempts, error}
    reenable: Mapping[str, Any] | None = None
    #: a copy's: the id of the task it created
    target_id: str | None = None
    #: a delete's: the whole task as read just before it was sent (what undo recreates)
    document: Mapping[str, Any] | None = None

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
        # only when there is something to say: most records stay as short as they were
        if self.observed is not None:
            fields["observed"] = _plain(self.observed)
        if self.side_effects:
            fields["side_effects"] = [_plain(s) for s in self.side_effects]
        if self.note is not None:
            fields["note"] = self.note
        if self.reenable is not None:
            fields["reenable"] = _plain(self.reenable)
        if self.target_id is not None:
            fields["target_id"] = self.target_id
        if self.document is not None:
            fields["document"] = _plain(self.document)
        return fields

    @property
    def read_back(self) -> bool:
        """False for an applied write that could not be read back."""
        return not (self.note or "").startswith(NOT_READ_BACK)

    def to_json(self) -> dict[str, Any]:
        """The whole record as read, chain fields included."""
        chain = {k: self.envelope[k] for k in _ENVELOPE if k in self.envelope}
        return {**chain, "event": CHANGE_EVENT, **self.to_fields()}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ChangeRecord:
        """Read one `change` record; ValueError if it is not one.

        This runs for every record when a run is resumed or shown: the shapes are checked in
        one test, the reason worked out only when it fails, and the record itself is kept as
        the envelope rather than copied.
        """
        request, index, after = rec.get("request"), rec.get("index"), rec.get("after")
        before, task, status = (
            rec.get("before") or {},
            rec.get("task") or {},
            rec.get("http_status"),
        )
        raw = rec.get("outcome")
        outcome = _OUTCOMES.get(raw) if type(raw) is str else None
        if (
            type(request) is not dict
            or type(index) is not int
            or type(before) is not dict
            or type(task) is not dict
            or (after is not None and type(after) is not dict)
            or outcome is None
        ):
            raise ValueError(_malformed(rec))
        try:
            return cls(
                index,
                str(rec["task_id"]),
                str(rec["action"]),
                str(request["method"]),
                str(request["path"]),
                request.get("body"),
                before,
                after,
                outcome,
                status if type(status) is int else None,
                _attempts(rec.get("attempts")),
                None if rec.get("error") is None else str(rec["error"]),
                task,
                rec.get("settled_by_read") is True,
                rec,
                **_read_back_fields(rec),
                **_created_or_deleted(rec),
            )
        except KeyError as exc:
            raise ValueError(f"change record without {exc}") from None


def _read_back_fields(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The optional fields of a change record, where they have their shapes (else left out:
    they are reported, never acted on)."""
    observed, effects, note, again = (
        rec.get("observed"),
        rec.get("side_effects"),
        rec.get("note"),
        rec.get("reenable"),
    )
    found: dict[str, Any] = {}
    if observed is not None or effects is not None or note is not None or again is not None:
        found["observed"] = observed if type(observed) is dict else None
        if type(effects) is list:
            found["side_effects"] = tuple(e for e in effects if type(e) is dict)
        found["note"] = note if type(note) is str else None
        found["reenable"] = again if type(again) is dict else None
    return found


def _created_or_deleted(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy's target id and a delete's document, where the record has them in shape."""
    found: dict[str, Any] = {}
    target, document = rec.get("target_id"), rec.get("document")
    if type(target) is str:
        found["target_id"] = target
    if type(document) is dict:
        found["document"] = document
    return found


def _malformed(rec: Mapping[str, Any]) -> str:
    """Why a change record is not one (the slow path of from_record)."""
    if type(rec.get("request")) is not dict:
        return "change record without a request"
    if type(rec.get("index")) is not int:
        return "change record without an integer index"
    for key in ("before", "after", "task"):
        value = rec.get(key)
        if value and type(value) is not dict:
            return f"{key}: expected an object, got {type(value).__name__}"
    return f"change record with an unknown outcome {rec.get('outcome')!r}"


#: the fields every audit record carries besides its own
_ENVELOPE = ("ts", "run_id", "seq", "tenant", "job", "prev_hash", "hash")
_OUTCOMES: dict[str, Outcome] = {o.value: o for o in Outcome}


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A dict the serializer takes: the mapping itself when it is one already."""
    return fields if type(fields) is dict else dict(fields)


def _attempts(value: Any) -> int:
    return value if type(value) is int else 0


def read_changes(
    audit: Path,
    on_change: Callable[[ChangeRecord], None],
    *,
    finished: bool = False,
    mark: AuditMark | None = None,
) -> None:
    """Hand every change record of a run's audit log to `on_change`, in order, while its chain
    is checked (one pass: each record is read once, and kept only if `on_change` keeps it).

    RunFileError if the chain is broken, or (`finished`) the log does not end with its
    run-end, or the log is shorter than `mark` (the last record its checkpoint saw on disk)
    or differs at it; a last line torn by a kill is no break (`resume` seals it).
    """

    def collect(rec: dict[str, Any]) -> None:
        if mark is not None and rec.get("seq") == mark.seq and rec.get("hash") != mark.hash:
            raise RunFileError(
                f"{audit}: record {mark.seq} is not the one the checkpoint saw written"
            )
        if rec.get("event") == CHANGE_EVENT:
            try:
                on_change(ChangeRecord.from_record(rec))
            except ValueError as exc:
                raise RunFileError(f"{audit}: record {rec.get('seq')}: {exc}") from None

    if not audit.exists() and not audit.is_symlink():
        return
    result = verify(audit, finished=finished, on_record=collect)
    if not result.intact:
        raise RunFileError(
            f"audit log failed verification: {result.error}; refusing to trust this run "
            "(see `bulkshare audit verify`)"
        )
    if mark is not None and result.records < mark.seq:
        raise RunFileError(
            f"{audit}: cut short: it holds {result.records} records, but {mark.seq} were "
            "written before the run stopped; refusing to trust this run"
        )


def change_records(audit: Path) -> list[ChangeRecord]:
    """Every change record of an audit log, in order, its chain checked (`read_changes`)."""
    found: list[ChangeRecord] = []
    read_changes(audit, found.append)
    return found


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
    #: changes whose read-back differs from the plan's expectation (not failures)
    side_effects: int = 0
    #: applied writes that could not be read back (not failures)
    not_read_back: int = 0
    #: keep_enabled tasks enabled again after the service disabled them, and those it failed for
    reenabled: int = 0
    reenable_failed: int = 0
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
            "side_effects": self.side_effects,
            "not_read_back": self.not_read_back,
            "reenabled": self.reenabled,
            "reenable_failed": self.reenable_failed,
            "exit_code": self.exit_code,
            "task_gone": self.gone,
        }

    def write(self, path: Path) -> None:
        """Replace summary.json whole (atomically, never through a planted symlink)."""
        safefile.write_atomic(path, orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2))

    @classmethod
    def read(cls, path: Path) -> Summary | None:
        """summary.json, or None before the run has finished."""
        if not path.exists() and not path.is_symlink():
            return None
        try:
            doc = orjson.loads(safefile.read_regular(path, _SUMMARY_LIMIT, follow=False))
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
                # absent from the summaries of older runs
                **{k: int(doc.get(k, 0)) for k in _READ_BACK_COUNTS},
                gone=int(doc.get("task_gone", 0)),
            )
        except UsageError as exc:
            raise RunFileError(str(exc)) from None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunFileError(f"{path}: malformed summary: {exc!r}") from None


#: summary.json's counts of what read-backs found, in Summary's order
_READ_BACK_COUNTS = ("side_effects", "not_read_back", "reenabled", "reenable_failed")
#: the most summary.json may hold (a few hundred bytes, one count per action and outcome)
_SUMMARY_LIMIT = 1 << 20
