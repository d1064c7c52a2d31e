"""One change's way from its read to its record: the verify-before-write read, settling an
in-doubt write, the document kept before a delete, the request, and what its answer means.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bulkshare.client import ApiClient, RequestFailed, Response
from bulkshare.copy.progress import CopyProgress
from bulkshare.copy.step import CopyResult, CopySteps
from bulkshare.plan import Change, EffectKind
from bulkshare.run import judge
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.run.readback import ReadBack, error_text, read_back
from bulkshare.run.reads import TenantReads
from bulkshare.run.recording import Done, Recorder, failed
from bulkshare.run.records import Outcome

__all__ = ["ChangeSteps"]


class ChangeSteps:
    """Does one change at a time and records it; shared by all of a run's workers."""

    def __init__(
        self,
        client: ApiClient,
        ckpt: Checkpoint,
        recorder: Recorder,
        progress: CopyProgress | None,
        copies: CopySteps | None,
        *,
        verify: bool,
    ) -> None:
        self.client = client
        self._reads = TenantReads(client)
        self._ckpt = ckpt
        self._recorder = recorder
        #: deletes' documents and copies' steps, for plans that delete or create
        self._progress = progress
        self._copies = copies
        self._verify = verify

    def __repr__(self) -> str:
        return f"<ChangeSteps verify={self._verify} {self._recorder!r}>"

    async def do(self, idx: int, change: Change, armed_at: float | None) -> None:
        """Do the change (`armed_at`: when an earlier process may have sent it) and record it."""
        if self._copies is not None and change.kind is EffectKind.CREATE:
            await self._copy(idx, change, armed_at)
            return
        in_doubt = armed_at is not None
        current: dict[str, Any] | None = None  # the task as read just before sending
        if self._verify or in_doubt:
            try:
                current = await self._reads.task(change.task_id)
                verdict = await self._verdict(change, current, armed_at)
            except RequestFailed as exc:
                # an in-doubt action that cannot be settled is never sent again blindly
                reason = f"{'settling read' if in_doubt else 're-read'} failed: {exc.reason}"
                self._record(idx, change, failed(exc.status, exc.attempts, reason))
                return
            if verdict is not None:
                await self._record_verdict(idx, change, verdict, current, in_doubt)
                return
        # unless in doubt: then the read may be of the task after our own write
        await self._write(idx, change, None if in_doubt else current, current)

    async def _verdict(
        self, change: Change, current: dict[str, Any] | None, armed_at: float | None
    ) -> judge.Verdict | None:
        """The change's outcome decided before sending, or None to send it."""
        verdict = judge.before_write(change, current, armed_at is not None, datetime.now(UTC))
        if verdict is None and armed_at is not None and change.method == "POST":
            assert current is not None
            settled = await self._reads.settle_post(change, current, armed_at)
            verdict = None if settled is None else judge.Verdict(settled)
        return verdict

    async def _write(
        self,
        idx: int,
        change: Change,
        before: Mapping[str, Any] | None,
        current: Mapping[str, Any] | None,
    ) -> None:
        document: Mapping[str, Any] | None = None
        if change.method == "DELETE":
            document = await self._document(idx, change, current)
            if document is None:
                return  # recorded: the task is gone, or could not be read
        if change.method == "POST":
            # re-armed just before sending, so its arm time is the send time it is settled by
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
            self._record(idx, change, failed(exc.status, exc.attempts, exc.reason))
            return
        if change.method == "PATCH" and (resp.settled or 200 <= resp.status < 300):
            enabled_before = None if before is None else before.get("enabled")
            task = seen[0] if resp.settled else None
            found = await read_back(self._reads, change, task, enabled_before)
            self._applied(idx, change, resp.status, resp.attempts, resp.settled, found)
            return
        self._record(idx, change, _answered(resp, document))

    async def _copy(self, idx: int, change: Change, armed_at: float | None) -> None:
        assert self._copies is not None
        ckpt = self._ckpt
        found: CopyResult = await self._copies.run(idx, change, armed_at, lambda: ckpt.arm([idx]))
        done = Done(
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
        self._record(idx, change, done)

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
                self._record(idx, change, failed(exc.status, exc.attempts, reason))
                return None
            if current is None:
                self._record(idx, change, Done(Outcome.ABSENT))
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
        done = Done(
            verdict.outcome,
            current,
            error=verdict.reason if conflict else None,
            settled=settled,
            note=None if conflict else verdict.reason,
        )
        self._record(idx, change, done)

    def _applied(
        self, idx: int, change: Change, status: int | None, n: int, settled: bool, found: ReadBack
    ) -> None:
        done = Done(Outcome.APPLIED, change.after, status, n, settled=settled, found=found)
        self._record(idx, change, done)

    def _record(self, idx: int, change: Change, done: Done) -> None:
        self._recorder.record(idx, change, done)


def _answered(resp: Response, document: Mapping[str, Any] | None) -> Done:
    """What the answer to a request other than an answered PATCH means."""
    if resp.settled or 200 <= resp.status < 300:
        return Done(
            Outcome.APPLIED, {}, resp.status, resp.attempts, settled=resp.settled, document=document
        )
    if resp.status == 404:
        return Done(Outcome.ABSENT, None, 404, resp.attempts, document=document)
    return failed(resp.status, resp.attempts, error_text(resp))
