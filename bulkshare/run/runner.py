"""Execute a Plan against a tenant: concurrency, verify-before-write, outcomes, checkpoint.

A change counts as recorded once its audit record is fsync'd; the audit log is the truth about
what was done, and the checkpoint marks which writes were sent so `resume` can settle them:
an armed change with no record is in doubt, re-read before anything is sent, and an execute
or cancel is settled by the task's executions (`judge.settle_post`), never sent blindly again.
A PATCH is read back once answered (`run.readback`) and its record says what the task became.
One change's steps are in `run.writes`, its record in `run.recording`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkshare.audit import END_EVENT, AuditLog, utc_now
from bulkshare.client import ApiClient
from bulkshare.client.budget import RequestDropped
from bulkshare.copy.progress import CopyProgress
from bulkshare.copy.step import CopySteps
from bulkshare.errors import (
    BulkshareError,
    InternalError,
    InterruptedRun,
    failure_of,
)
from bulkshare.plan import EffectKind, Plan
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.run.files import RunDir, RunMeta, RunState
from bulkshare.run.recording import Recorder
from bulkshare.run.records import Summary
from bulkshare.run.tally import Tally
from bulkshare.run.units import units_of
from bulkshare.run.writes import ChangeSteps

__all__ = ["OnRecord", "RunOptions", "Runner"]

#: changes armed (marked as maybe sent) per checkpoint transaction
_ARM_BLOCK = 64
#: audit records are fsync'd at least this often (and in groups: see `run.recording`)
_FLUSH_EVERY_S = 0.05


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
        #: why the run cannot go on (a run file that cannot be written), once it is known
        self._failure: BulkshareError | None = None
        self._audit: AuditLog | None = None
        self._ckpt: Checkpoint | None = None
        self._recorder: Recorder | None = None
        #: copies' steps and deletes' documents, for plans that create or delete
        self._progress: CopyProgress | None = None
        self._copies: CopySteps | None = None
        self._recorded = 0  # until this process records: changes recorded before it
        #: 429s seen by the earlier processes of this run
        self.throttled_before = 0

    def __repr__(self) -> str:
        return f"<Runner {self.run_dir.run_id} {self.recorded}/{len(self.plan.changes)}>"

    @property
    def recorded(self) -> int:
        """Progress, for whoever displays it: changes recorded, before this process and since."""
        return self._recorded if self._recorder is None else self._recorder.recorded

    @property
    def throttled(self) -> int:
        """429s seen by this run, over all its processes."""
        return self.throttled_before + self.client.throttled

    async def run(self) -> Summary:
        """Run every change not yet recorded; InterruptedRun if stopped before the end."""
        meta = self.run_dir.meta()
        done = self.run_dir.recorded()  # the chain checked as it is read
        self._recorded = len(done)
        audit, ckpt = self._open_files()
        self.throttled_before = max(meta.throttled, ckpt.counter("throttled"))
        try:
            self._open_recording()
            # armed but unrecorded: maybe sent by a process that died; settled before resending
            sent = {i: at for i, at in ckpt.armed().items() if i not in done}
            self._started(audit, resumed=bool(done or sent))
            await self._run_units(units_of(self.plan.changes, done), sent)
            self._check_stopped()
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
            self._close()

    def _open_files(self) -> tuple[AuditLog, Checkpoint]:
        ckpt = self._ckpt = Checkpoint(self.run_dir.checkpoint)
        try:
            audit = self._audit = AuditLog(
                self.run_dir.audit, self.run_dir.run_id, self.plan.tenant, self.plan.job_name
            )
        except BaseException:
            ckpt.close()
            raise
        return audit, ckpt

    def _started(self, audit: AuditLog, *, resumed: bool) -> None:
        audit.append(
            "run-start",
            resumed=resumed,
            planned=len(self.plan.changes),
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        self.run_dir.update_meta(state=RunState.RUNNING, pid=os.getpid())

    def _check_stopped(self) -> None:
        """InterruptedRun if a stop left changes unrecorded."""
        if self.stop.is_set() and self.recorded < len(self.plan.changes):
            self._mark_interrupted()
            raise InterruptedRun(
                f"run {self.run_dir.run_id} stopped; continue it with "
                f"`bulkshare resume {self.run_dir.run_id}`"
            )

    def _close(self) -> None:
        assert self._audit is not None and self._ckpt is not None
        self._audit.close()
        self._ckpt.close()
        if self._progress is not None:
            self._progress.close()

    def _open_recording(self) -> None:
        """The copies' progress file (for plans that create or delete) and the recorder."""
        kinds = {c.kind for c in self.plan.changes}
        if kinds & {EffectKind.CREATE, EffectKind.DELETE}:
            self._progress = CopyProgress(self.run_dir.plan.parent)
        if self._progress is not None and EffectKind.CREATE in kinds:
            self._copies = CopySteps(self.client, self._progress, verify=self.options.verify)
            self._copies.owners_ahead(self.plan.changes)
        assert self._audit is not None and self._ckpt is not None
        self._recorder = Recorder(
            self._audit, self._ckpt, self._progress, self._on_record, recorded=self._recorded
        )

    def _steps(self) -> ChangeSteps:
        assert self._ckpt is not None and self._recorder is not None
        return ChangeSteps(
            self.client,
            self._ckpt,
            self._recorder,
            self._progress,
            self._copies,
            verify=self.options.verify,
        )

    def _mark_interrupted(self) -> None:
        self.run_dir.update_meta(state=RunState.INTERRUPTED, throttled=self.throttled)

    async def _run_units(self, units: list[list[int]], in_doubt: dict[int, float]) -> None:
        steps = self._steps()
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
                        await steps.do(idx, self.plan.changes[idx], in_doubt.get(idx))
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
        assert self._recorder is not None
        self._recorder.flush()

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
