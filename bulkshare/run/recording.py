"""What became of each change, written down: its audit record (fsync'd in groups), the
checkpoint's audit mark after each fsync, and the copies' id map beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bulkshare.audit import AuditLog
from bulkshare.copy.progress import CopyProgress
from bulkshare.plan import Change
from bulkshare.run import judge
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.run.readback import ReadBack
from bulkshare.run.records import CHANGE_EVENT, ChangeRecord, Outcome

__all__ = ["Done", "Recorder", "failed"]

log = structlog.get_logger("bulkshare.run")

#: audit records are fsync'd in groups: at this many (or every flush period of the runner)
_FLUSH_AT = 256


@dataclass(frozen=True, slots=True)
class Done:
    """What became of one change, as its record says (the change itself says what was asked)."""

    outcome: Outcome
    after: Mapping[str, Any] | None = None
    status: int | None = None
    attempts: int = 0
    error: str | None = None
    settled: bool = False  #: an in-doubt write found applied by reading
    note: str | None = None
    found: ReadBack | None = None  #: what the read-back after a PATCH found
    target_id: str | None = None  #: the task a copy created
    document: Mapping[str, Any] | None = None  #: the whole task, kept before its delete


def failed(status: int | None, attempts: int, error: str) -> Done:
    """A change that failed: nothing known of what it became."""
    return Done(Outcome.FAILED, None, status, attempts, error)


class Recorder:
    """Buffers change records into the audit log and flushes them with the checkpoint mark."""

    def __init__(
        self,
        audit: AuditLog,
        ckpt: Checkpoint,
        progress: CopyProgress | None,
        on_record: Callable[[dict[str, Any]], None] | None,
        *,
        recorded: int,
    ) -> None:
        #: changes recorded, by earlier processes of the run and by this one
        self.recorded = recorded
        self._audit = audit
        self._ckpt = ckpt
        self._progress = progress
        self._on_record = on_record  #: told of each record once it is buffered

    def __repr__(self) -> str:
        return f"<Recorder recorded={self.recorded} pending={self._audit.pending}>"

    def record(self, idx: int, change: Change, done: Done) -> None:
        """Buffer the change's record (flushed at `_FLUSH_AT` pending) and tell of it."""
        record = self._audit.buffer_fields(CHANGE_EVENT, _entry(idx, change, done).to_fields())
        self.recorded += 1
        if self._audit.pending >= _FLUSH_AT:
            self.flush()
        if done.outcome is Outcome.FAILED:
            log.warning(
                "change-failed",
                task_id=change.task_id,
                action=change.action,
                status=done.status,
                error=done.error,
            )
        if self._on_record is not None:
            self._on_record(record)

    def flush(self) -> None:
        """fsync the buffered records, then mark them in the checkpoint; write the id map."""
        if self._audit.pending:
            self._audit.flush()
            # after the fsync, never before: the log is never shorter than this mark says
            self._ckpt.mark_audit(self._audit.seq, self._audit.last_hash)
        if self._progress is not None:
            self._progress.write_id_map()  # rows of copies whose records are not yet written too


def _entry(idx: int, change: Change, done: Done) -> ChangeRecord:
    after, found = done.after, done.found
    if after and change.after and after is not change.after and done.target_id is None:
        after = judge.fields_of(after, change.after)
    # the plan's own dicts go straight to the serializer: the record is written, not kept
    return ChangeRecord(
        idx,
        change.task_id,
        change.action,
        change.method,
        change.path,
        change.body,
        change.before,
        after,
        done.outcome,
        done.status,
        done.attempts,
        done.error,
        change.task,
        done.settled,
        observed=None if found is None else found.observed,
        side_effects=() if found is None else found.side_effects,
        note=done.note if found is None else found.note,
        reenable=None if found is None else found.reenable,
        target_id=done.target_id,
        document=done.document,
    )
