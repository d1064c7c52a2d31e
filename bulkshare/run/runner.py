"""Execute a Plan against a tenant: concurrency, verify-before-write, outcomes, checkpoint.

A change counts as recorded once its audit record is fsync'd; the audit log is the truth about
what was done, and the checkpoint marks which writes were sent so `resume` can settle them:
an armed change with no record is in doubt, re-read before anything is sent, and an execute
or cancel is settled by the task's executions (`judge.settle_post`), never sent blindly again.
A PATCH is read back once answered (`run.readback`) and its record says what the task became.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from bulkshare.audit import END_EVENT, AuditLog, utc_now
from bulkshare.client import ApiClient, RequestFailed
from bulkshare.client.budget import RequestDropped
from bulkshare.copy.progress import CopyProgress
from bulkshare.copy.step import CopyResult, CopySteps
from bulkshare.errors import (
    BulkshareError,
    InternalError,
    InterruptedRun,
    failure_of,
)
from bulkshare.plan import Change, EffectKind, Plan
from bulkshare.run import judge
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.run.files import RunDir, RunMeta, RunState
from bulkshare.run.readback import ReadBack, error_text, read_back
from bulkshare.run.reads import TenantReads
from bulkshare.run.records import CHANGE_EVENT, ChangeRecord, Outcome, Summary
from bulkshare.run.tally import Tally
from bulkshare.run.units import units_of

__all__ = ["OnRecord", "RunOptions", "Runner"]

log = structlog.get_logger("bulkshare.run")

#: changes armed (marked as maybe sent) per checkpoint transaction
_ARM_BLOCK = 64
#: audit records are fsync'd in groups: at this many, or this often, whichever comes first
_FLUSH_AT = 256
_FLUSH_EVERY_S = 0.05
#: the most of a service's error text a change record keeps
_ERROR_TEXT_MAX = 300


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan."""

    verify: bool = True  #: re-read each task before writing and skip it on drift
    concurrency: int = 16


OnRecord = Callable[[dict[str, Any]], None]


class Runner:
    """Runs one plan in one run directory; resumable after any stop."""

    def __init__(
        self,
        run_dir: RunDir,
        plan: Plan,
        client: ApiClient,
        options: RunOptions,
        *,
        stop: asyncio.Event | None = None,
        on_record: OnRecord | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.plan = plan
        self.client = client
        self.options = options
        #: set it to stop taking new work; in-flight changes finish and are recorded
        self.stop = stop or asyncio.Event()
        self._on_record = on_record
        self._reads = TenantReads(client)
        #: why the run cannot go on (a run file that cannot be written), once it is known
        self._failure: BulkshareError | None = None
        self._audit: AuditLog | None = None
        self._ckpt: Checkpoint | None = None
        #: copies' steps and deletes' documents, for plans that create or delete
        self._progress: CopyProgress | None = None
        self._copies: CopySteps | None = None
        #: progress, for whoever displays it: changes recorded, before this process and since
        self.recorded = 0
        #: 429s seen by the earlier processes of this run
        self.throttled_before = 0

    def __repr__(self) -> str:
        return f"<Runner {self.run_dir.run_id} {self.recorded}/{len(self.plan.changes)}>"

    @property
    def throttled(self) -> int:
        """429s seen by this run, over all its processes."""
        return self.throttled_before + self.client.throttled

    async def run(self) -> Summary:
        """Run every change not yet recorded; InterruptedRun if stopped before the end."""
        meta = self.run_dir.meta()
        done = self.run_dir.recorded()  # the chain checked as it is read
        self.recorded = len(done)
        self._ckpt = Checkpoint(self.run_dir.checkpoint)
        try:
            self._audit = AuditLog(
                self.run_dir.audit, self.run_dir.run_id, self.plan.tenant, self.plan.job_name
            )
        except BaseException:
            self._ckpt.close()
            raise
        self.throttled_before = max(meta.throttled, self._ckpt.counter("throttled"))
        try:
            self._open_progress()
            # armed but unrecorded: maybe sent by a process that died; settled before resending
            sent = {i: at for i, at in self._ckpt.armed().items() if i not in done}
            self._audit.append(
                "run-start",
                resumed=bool(done or sent),
                planned=len(self.plan.changes),
                pid=os.getpid(),
                host=socket.gethostname(),
            )
            self.run_dir.update_meta(state=RunState.RUNNING, pid=os.getpid())
            await self._run_units(units_of(self.plan.changes, done), sent)
            if self.stop.is_set() and self.recorded < len(self.plan.changes):
                self._mark_interrupted()
                raise InterruptedRun(
                    f"run {self.run_dir.run_id} stopped; continue it with "
                    f"`bulkshare resume {self.run_dir.run_id}`"
                )
            return self._finish(meta)
        except BaseException as exc:
            # whatever stopped it, the run is marked interrupted (never left "running"): the
            # records of finished requests are flushed below, and resume settles the rest
            with contextlib.suppress(Exception):
                self._mark_interrupted()
            stopped = _stopped(self.run_dir.run_id, exc)
            if stopped is exc:
                raise
            raise stopped from exc
        finally:
            self._audit.close()
            self._ckpt.close()
            if self._progress is not None:
                self._progress.close()

    def _open_progress(self) -> None:
        kinds = {c.kind for c in self.plan.changes}
        if kinds & {EffectKind.CREATE, EffectKind.DELETE}:
            self._progress = CopyProgress(self.run_dir.plan.parent)
        if self._progress is not None and EffectKind.CREATE in kinds:
            self._copies = CopySteps(self.client, self._progress, verify=self.options.verify)

    def _mark_interrupted(self) -> None:
        self.run_dir.update_meta(state=RunState.INTERRUPTED, throttled=self.throttled)

    async def _run_units(self, units: list[list[int]], in_doubt: dict[int, float]) -> None:
        next_unit = iter(range(len(units)))
        armed_upto = 0

        def take() -> list[int] | None:
            nonlocal armed_upto
            pos = next(next_unit, None)
            if pos is None:
                return None
            if pos >= armed_upto:
                block = units[pos : pos + _ARM_BLOCK]
                assert self._ckpt is not None
                self._ckpt.arm([idx for unit in block for idx in unit], throttled=self.throttled)
                armed_upto = pos + len(block)
            return units[pos]

        async def worker() -> None:
            while not self._stopping() and (unit := take()) is not None:
                for idx in unit:
                    try:
                        await self._do(idx, self.plan.changes[idx], in_doubt.get(idx))
                    except RequestDropped:
                        return  # stopping, and it was never sent: no record, so resume does it

        workers = max(1, min(self.options.concurrency, len(units)))
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            # a worker's error (a full disk, a refused token) leaves as a group: `_stopped`
            # makes it the run's one line and exit code
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
        finally:
            flusher.cancel()
            self._flush()
        if self._failure is not None:
            raise self._failure

    def _stopping(self) -> bool:
        return self.stop.is_set() or self._failure is not None

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            try:
                self._flush()
            except BulkshareError as exc:
                # the log cannot be written (a full disk): take no new work, and let the run
                # end with this error once the requests in flight are done
                self._failure = exc
                return

    def _flush(self) -> None:
        assert self._audit is not None and self._ckpt is not None
        if self._audit.pending:
            self._audit.flush()
            # after the fsync, never before: the log is never shorter than this mark says
            self._ckpt.mark_audit(self._audit.seq, self._audit.last_hash)
        if self._progress is not None:
            self._progress.write_id_map()  # rows of copies whose records are not yet written too

    async def _do(self, idx: int, change: Change, armed_at: float | None) -> None:
        if self._copies is not None and change.kind is EffectKind.CREATE:
            await self._copy(idx, change, armed_at)
            return
        in_doubt = armed_at is not None
        current: dict[str, Any] | None = None  # the task as read just before sending
        before: dict[str, Any] | None = None  # ... unless in doubt (then maybe after our write)
        if self.options.verify or in_doubt:
            try:
                current = await self._reads.task(change.task_id)
                verdict = judge.before_write(change, current, in_doubt, datetime.now(UTC))
                if verdict is None and armed_at is not None and change.method == "POST":
                    assert current is not None
                    settled = await self._reads.settle_post(change, current, armed_at)
                    verdict = None if settled is None else judge.Verdict(settled)
            except RequestFailed as exc:
                # an in-doubt action that cannot be settled is never sent again blindly
                reason = f"{'settling read' if in_doubt else 're-read'} failed: {exc.reason}"
                self._record(idx, change, Outcome.FAILED, None, exc.status, exc.attempts, reason)
                return
            if verdict is not None:
                await self._record_verdict(idx, change, verdict, current, in_doubt)
                return
            before = None if in_doubt else current
        document: Mapping[str, Any] | None = None
        if change.method == "DELETE":
            document = await self._document(idx, change, current)
            if document is None:
                return  # recorded: the task is gone, or could not be read
        if change.method == "POST":
            # re-armed just before sending, so its arm time is the send time it is settled by
            assert self._ckpt is not None
            self._ckpt.arm([idx])
        await self._send(idx, change, before, document)

    async def _send(
        self,
        idx: int,
        change: Change,
        before: Mapping[str, Any] | None,
        document: Mapping[str, Any] | None,
    ) -> None:
        """Send the change's request and record what it did (a delete keeps `document`)."""
        sent_at = time.time()
        seen: list[dict[str, Any] | None] = [None]  # the read that settled an unanswered write

        async def settle() -> bool:
            landed, seen[0] = await self._reads.landed(change, sent_at)
            return landed

        try:
            resp = await self.client.request(
                change.method, change.path, json=change.body, settle=settle
            )
        except RequestFailed as exc:
            self._record(idx, change, Outcome.FAILED, None, exc.status, exc.attempts, exc.reason)
            return
        status = resp.status
        if change.method == "PATCH" and (resp.settled or 200 <= status < 300):
            enabled_before = None if before is None else before.get("enabled")
            task = seen[0] if resp.settled else None
            found = await read_back(self._reads, change, task, enabled_before)
            self._applied(idx, change, status, resp.attempts, resp.settled, found)
        elif resp.settled or 200 <= status < 300:
            self._record(
                idx,
                change,
                Outcome.APPLIED,
                {},
                status,
                resp.attempts,
                None,
                settled=resp.settled,
                document=document,
            )
        elif status == 404:
            self._record(
                idx, change, Outcome.ABSENT, None, 404, resp.attempts, None, document=document
            )
        else:
            error = error_text(resp)
            self._record(idx, change, Outcome.FAILED, None, status, resp.attempts, error)

    async def _copy(self, idx: int, change: Change, armed_at: float | None) -> None:
        assert self._copies is not None and self._ckpt is not None
        ckpt = self._ckpt
        found: CopyResult = await self._copies.run(idx, change, armed_at, lambda: ckpt.arm([idx]))
        self._record(
            idx,
            change,
            Outcome(found.outcome),
            found.after,
            found.status,
            found.attempts,
            found.error,
            settled=found.settled,
            target_id=found.target_id,
            document=found.document,
            note=found.note,
        )

    async def _document(
        self, idx: int, change: Change, current: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        """The whole task, kept before its DELETE is sent (read now with --no-verify), so
        undo can recreate it; None once its outcome is recorded (gone, or unreadable)."""
        assert self._progress is not None
        kept = self._progress.document(idx)
        if kept is not None:
            return kept  # an earlier process read it before sending
        if current is None:
            try:
                current = await self._reads.task(change.task_id)
            except RequestFailed as exc:
                reason = f"reading the task before its delete failed: {exc.reason}"
                self._record(idx, change, Outcome.FAILED, None, exc.status, exc.attempts, reason)
                return None
            if current is None:
                self._record(idx, change, Outcome.ABSENT, None, None, 0, None)
                return None
        self._progress.keep_document(idx, current)
        return current

    async def _record_verdict(
        self,
        idx: int,
        change: Change,
        verdict: judge.Verdict,
        current: dict[str, Any] | None,
        in_doubt: bool,
    ) -> None:
        """Record a change decided by the read before its write: nothing is sent for it."""
        settled = in_doubt and verdict.outcome is Outcome.APPLIED
        if settled and change.method == "PATCH":
            # the settling read is the read-back: it was made after the write
            found = await read_back(self._reads, change, current, None)
            self._applied(idx, change, None, 0, True, found)
            return
        conflict = verdict.outcome is Outcome.CONFLICT
        self._record(
            idx,
            change,
            verdict.outcome,
            current,
            None,
            0,
            verdict.reason if conflict else None,
            settled=settled,
            note=None if conflict else verdict.reason,
        )

    def _applied(
        self, idx: int, change: Change, status: int | None, n: int, settled: bool, found: ReadBack
    ) -> None:
        self._record(
            idx,
            change,
            Outcome.APPLIED,
            change.after,
            status,
            n,
            None,
            settled=settled,
            found=found,
        )

    def _record(
        self,
        idx: int,
        change: Change,
        outcome: Outcome,
        after: Mapping[str, Any] | None,
        status: int | None,
        attempts: int,
        error: str | None,
        *,
        settled: bool = False,
        note: str | None = None,
        found: ReadBack | None = None,
        target_id: str | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> None:
        assert self._audit is not None
        if after and change.after and after is not change.after and target_id is None:
            after = judge.fields_of(after, change.after)
        # the plan's own dicts go straight to the serializer: the record is written, not kept
        entry = ChangeRecord(
            idx,
            change.task_id,
            change.action,
            change.method,
            change.path,
            change.body,
            change.before,
            after,
            outcome,
            status,
            attempts,
            error,
            change.task,
            settled,
            observed=None if found is None else found.observed,
            side_effects=() if found is None else found.side_effects,
            note=note if found is None else found.note,
            reenable=None if found is None else found.reenable,
            target_id=target_id,
            document=document,
        )
        record = self._audit.buffer_fields(CHANGE_EVENT, entry.to_fields())
        self.recorded += 1
        if self._audit.pending >= _FLUSH_AT:
            self._flush()
        if outcome is Outcome.FAILED:
            log.warning(
                "change-failed",
                task_id=change.task_id,
                action=change.action,
                status=status,
                error=error,
            )
        if self._on_record is not None:
            self._on_record(record)

    def _finish(self, meta: RunMeta) -> Summary:
        assert self._audit is not None
        tally = Tally.of_log(self.run_dir.audit)
        ended = utc_now()
        self._flush()
        if self._progress is not None:
            self._progress.write_id_map(force=True)
        # `records`: how many came before it, so a log cut short of its run-end shows
        self._audit.append(
            END_EVENT,
            records=self._audit.seq,
            counts=dict(tally.counts),
            exit_code=tally.exit_code,
        )
        plan, run_id = self.plan, self.run_dir.run_id
        summary = tally.summary(
            run_id,
            plan.tenant,
            plan.job_name,
            (meta.started, ended),
            len(plan.changes),
            self.throttled,
        )
        summary.write(self.run_dir.summary)
        self.run_dir.update_meta(
            state=RunState.FINISHED,
            exit_code=summary.exit_code,
            ended=ended,
            throttled=self.throttled,
        )
        return summary


def _stopped(run_id: str, exc: BaseException) -> BaseException:
    """What a run stopped by `exc` mid-way ends with: a signal or stop as itself; a failure that
    leaves the run resumable (the tenant refused our credentials, a run file could not be
    written: a full disk, SQLite) as InterruptedRun naming the cause and the way on; a bug as
    one InternalError line."""
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError | InterruptedRun):
        return exc
    failure = failure_of(exc)  # of the error that matters most, in a group
    if failure.exit_code == InternalError.exit_code:  # a bug (a dry-run violation included)
        return InternalError(f"{failure.message}; run {run_id} is interrupted: {_resume(run_id)}")
    return InterruptedRun(
        f"run {run_id} interrupted: {failure.message}; once that is put right, {_resume(run_id)}"
    )


def _resume(run_id: str) -> str:
    return f"`bulkshare resume {run_id}` continues it"
