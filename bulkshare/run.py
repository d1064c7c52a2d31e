"""Execute a Plan against a tenant: concurrency, verify-before-write, outcomes, checkpoint.

A change counts as recorded once its audit record is fsync'd; the audit log is the truth about
what was done, and the checkpoint marks which writes were sent so `resume` can settle them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import structlog

from bulkshare.actions import EffectKind
from bulkshare.audit import AuditLog, read_records, utc_now
from bulkshare.client import ApiClient, RequestFailed, Response
from bulkshare.errors import InterruptedRun, UsageError
from bulkshare.plan import Change, Plan, task_path

__all__ = ["Checkpoint", "Outcome", "RunDir", "RunOptions", "Runner", "Summary", "new_run_id"]

log = structlog.get_logger("bulkshare.run")


class Outcome(StrEnum):
    """What happened to one planned change."""

    APPLIED = "applied"  # the write was made (or an in-doubt write was found made)
    SKIPPED = "skipped"  # already in the target state when re-read; nothing sent
    ABSENT = "absent"  # the task no longer exists (for a delete: done)
    CONFLICT = "conflict"  # the task changed since planning; left untouched
    FAILED = "failed"  # the service refused or never answered


#: changes armed (marked as maybe sent) per checkpoint transaction
_ARM_BLOCK = 64
#: audit records are fsync'd in groups: at this many, or this often, whichever comes first
_FLUSH_AT = 256
_FLUSH_EVERY_S = 0.05
#: how far the service's clock may lag ours when matching an execution to our execute
_CLOCK_SKEW_S = 5.0


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan."""

    verify: bool = True  #: re-read each task before writing and skip it on drift
    concurrency: int = 16


def new_run_id(job: str, tenant: str) -> str:
    """A sortable, unique run id: UTC time, job, tenant, random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{job}-{tenant}-{secrets.token_hex(2)}"


class RunDir:
    """The files of one run under `<state_dir>/runs/<run-id>/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_id = root.name
        self.plan = root / "plan.json"
        self.audit = root / "audit.jsonl"
        self.summary = root / "summary.json"
        self.checkpoint = root / "checkpoint.sqlite"
        self.meta_path = root / "run.json"

    @classmethod
    def create(cls, state_dir: Path, run_id: str) -> RunDir:
        root = state_dir / "runs" / run_id
        root.mkdir(parents=True, exist_ok=False)
        return cls(root)

    @classmethod
    def find(cls, state_dir: Path, run_id: str) -> RunDir:
        root = state_dir / "runs" / run_id
        if not (root / "run.json").is_file():
            raise UsageError(f"no run {run_id!r} under {state_dir / 'runs'}")
        return cls(root)

    def meta(self) -> dict[str, Any]:
        data = orjson.loads(self.meta_path.read_bytes())
        assert isinstance(data, dict)
        return data

    def write_meta(self, **updates: Any) -> None:
        meta = self.meta() if self.meta_path.exists() else {}
        meta.update(updates)
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        tmp.replace(self.meta_path)


class Checkpoint:
    """Which planned writes may have been sent, in SQLite (WAL survives kill -9).

    Changes are armed in blocks ahead of sending (group commit); what is done is read from the
    audit log, so an armed change without an audit record is settled by reading on resume.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS marks "
            "(idx INTEGER PRIMARY KEY, state TEXT NOT NULL, at REAL NOT NULL)"
        )

    def arm(self, indices: list[int]) -> None:
        """Mark changes as about to be sent, in one transaction, before any of them is sent."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO marks VALUES (?, 'sent', ?)", [(i, now) for i in indices]
            )

    def states(self) -> dict[int, str]:
        return {int(i): str(s) for i, s in self._db.execute("SELECT idx, state FROM marks")}

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
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
        }


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
        self._audit: AuditLog | None = None
        self._ckpt: Checkpoint | None = None
        #: progress, for whoever displays it: changes recorded, before this process and since
        self.recorded = 0

    async def run(self) -> Summary:
        """Run every change not yet recorded; InterruptedRun if stopped before the end."""
        meta = self.run_dir.meta()
        done = _recorded_indices(self.run_dir.audit)
        self.recorded = len(done)
        self._audit = AuditLog(
            self.run_dir.audit, self.run_dir.run_id, self.plan.tenant, self.plan.job_name
        )
        self._ckpt = Checkpoint(self.run_dir.checkpoint)
        try:
            sent = {i for i, s in self._ckpt.states().items() if s == "sent"} - done
            self._audit.append(
                "run-start",
                resumed=bool(done or sent),
                planned=len(self.plan.changes),
                pid=os.getpid(),
                host=socket.gethostname(),
            )
            self.run_dir.write_meta(state="running", pid=os.getpid())
            await self._run_units(_units(self.plan.changes, done), sent)
            if self.stop.is_set() and len(_recorded_indices(self.run_dir.audit)) < len(
                self.plan.changes
            ):
                self.run_dir.write_meta(state="interrupted")
                raise InterruptedRun(
                    f"run {self.run_dir.run_id} stopped; continue it with "
                    f"`bulkshare resume {self.run_dir.run_id}`"
                )
            return self._finish(meta)
        except (KeyboardInterrupt, asyncio.CancelledError):
            # a forced stop: the records of finished requests are flushed below; say so in
            # run.json too, so `runs` does not show a dead run as running
            self.run_dir.write_meta(state="interrupted")
            raise
        finally:
            self._audit.close()
            self._ckpt.close()

    async def _run_units(self, units: list[list[int]], in_doubt: set[int]) -> None:
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
                self._ckpt.arm([idx for unit in block for idx in unit])
                armed_upto = pos + len(block)
            return units[pos]

        async def worker() -> None:
            while not self.stop.is_set() and (unit := take()) is not None:
                for idx in unit:
                    await self._do(idx, self.plan.changes[idx], idx in in_doubt)

        workers = max(1, min(self.options.concurrency, len(units)))
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
        finally:
            flusher.cancel()
            self._flush()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            self._flush()

    def _flush(self) -> None:
        assert self._audit is not None
        self._audit.flush()

    async def _do(self, idx: int, change: Change, in_doubt: bool) -> None:
        if self.options.verify or in_doubt:
            try:
                current = await self._read(change.task_id)
            except RequestFailed as exc:
                self._record(
                    idx,
                    change,
                    Outcome.FAILED,
                    None,
                    exc.status,
                    exc.attempts,
                    f"re-read failed: {exc.reason}",
                )
                return
            verdict = _judge(change, current, in_doubt)
            if verdict is not None:
                self._record(idx, change, verdict, current, None, 0, None)
                return
        sent_at = time.time()
        try:
            resp = await self.client.request(
                change.method,
                change.path,
                json=change.body,
                settle=lambda: self._landed(change, sent_at),
            )
        except RequestFailed as exc:
            self._record(idx, change, Outcome.FAILED, None, exc.status, exc.attempts, exc.reason)
            return
        self._record_response(idx, change, resp)

    async def _read(self, task_id: str) -> dict[str, Any] | None:
        resp = await self.client.request("GET", task_path(task_id))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RequestFailed(resp.status, "unexpected answer to a task read", resp.attempts)
        doc = resp.json()
        if not isinstance(doc, dict):
            raise RequestFailed(resp.status, "task read answered with a non-object", resp.attempts)
        return doc

    async def _landed(self, change: Change, sent_at: float) -> bool:
        """Settle an in-doubt write by reading: did it take effect?"""
        try:
            current = await self._read(change.task_id)
        except RequestFailed:
            return False
        if change.method == "DELETE":
            # DELETING only shows our delete landed if the task was not DELETING before
            entered_deleting = (
                current is not None
                and current.get("statusCode") == "DELETING"
                and change.before.get("statusCode") != "DELETING"
            )
            return current is None or entered_deleting
        if change.method == "PATCH":
            return current is not None and _fields_of(current, change.after) == dict(change.after)
        if change.kind is EffectKind.EXECUTE and current is not None:
            return await self._execution_since(change.task_id, sent_at)
        # a cancel leaves nothing to compare, and sending it again is harmless
        return False

    async def _execution_since(self, task_id: str, sent_at: float) -> bool:
        """True if the task's latest execution started after the in-doubt execute was sent."""
        try:
            resp = await self.client.request("GET", f"{task_path(task_id)}/executions/latest")
            doc = resp.json() if resp.status == 200 else None
        except RequestFailed:
            return False
        started = doc.get("startTime") if isinstance(doc, dict) else None
        if not isinstance(started, str):
            return False
        try:
            when = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return when >= sent_at - _CLOCK_SKEW_S

    def _record_response(self, idx: int, change: Change, resp: Response) -> None:
        status = resp.status
        if resp.settled or 200 <= status < 300:
            after = {} if change.method == "DELETE" else change.after
            self._record(
                idx,
                change,
                Outcome.APPLIED,
                after,
                status,
                resp.attempts,
                None,
                settled=resp.settled,
            )
        elif status == 404:
            self._record(idx, change, Outcome.ABSENT, None, 404, resp.attempts, None)
        else:
            self._record(
                idx, change, Outcome.FAILED, None, status, resp.attempts, _error_text(resp)
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
    ) -> None:
        assert self._audit is not None
        if after and change.after and after is not change.after:
            after = _fields_of(after, change.after)
        # the plan's own dicts go straight to the serializer: the record is written, not kept
        fields: dict[str, Any] = {
            "index": idx,
            "task_id": change.task_id,
            "action": change.action,
            "request": {"method": change.method, "path": change.path, "body": change.body},
            "before": _plain(change.before),
            "after": None if after is None else _plain(after),
            "outcome": outcome.value,
            "http_status": status,
            "attempts": attempts,
            "error": error,
            "task": _plain(change.task),
        }
        if settled:
            fields["settled_by_read"] = True
        record = self._audit.buffer_fields("change", fields)
        self.recorded += 1
        if self._audit.pending >= _FLUSH_AT:
            self._audit.flush()
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

    def _finish(self, meta: Mapping[str, Any]) -> Summary:
        assert self._audit is not None
        counts: Counter[str] = Counter()
        by_action: dict[str, Counter[str]] = defaultdict(Counter)
        # one pass that keeps no record: holding them all made the collector rescan the heap
        for r in read_records(self.run_dir.audit):
            if r.get("event") == "change":
                counts[r["outcome"]] += 1
                by_action[r["action"]][r["outcome"]] += 1
        failed = counts[Outcome.FAILED.value] + counts[Outcome.CONFLICT.value]
        exit_code = 1 if failed else 0
        started = str(meta.get("started", utc_now()))
        ended = utc_now()
        duration = _seconds_between(started, ended)
        throttled = int(meta.get("throttled_before", 0)) + self.client.throttled
        self._audit.append("run-end", counts=dict(counts), exit_code=exit_code)
        summary = Summary(
            self.run_dir.run_id,
            self.plan.tenant,
            self.plan.job_name,
            started,
            ended,
            duration,
            len(self.plan.changes),
            dict(counts),
            {k: dict(v) for k, v in by_action.items()},
            throttled,
            exit_code,
        )
        self.run_dir.summary.write_bytes(
            orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2)
        )
        self.run_dir.write_meta(state="finished", exit_code=exit_code, ended=ended)
        return summary


def _units(changes: list[Change], done: set[int]) -> list[list[int]]:
    """Indices of changes not yet done, grouped by task so one task's requests stay in order."""
    by_task: dict[str, list[int]] = {}
    for idx, change in enumerate(changes):
        if idx not in done:
            by_task.setdefault(change.task_id, []).append(idx)
    return list(by_task.values())


def _recorded_indices(audit: Path) -> set[int]:
    if not audit.exists():
        return set()
    return {
        int(r["index"])
        for r in read_records(audit)
        if r.get("event") == "change" and isinstance(r.get("index"), int)
    }


def _fields_of(task: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {k: task.get(k) for k in names}


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A dict the serializer takes: the mapping itself when it is one already."""
    return fields if type(fields) is dict else dict(fields)


def _judge(change: Change, current: Mapping[str, Any] | None, in_doubt: bool) -> Outcome | None:
    """Before a write: None to send it, or the outcome that makes sending needless or wrong."""
    if current is None:
        return Outcome.ABSENT
    if change.method == "PATCH":
        now = _fields_of(current, change.after)
        if now == dict(change.after):
            return Outcome.APPLIED if in_doubt else Outcome.SKIPPED
        if now != dict(change.before):
            return Outcome.CONFLICT
        return None
    if change.method == "DELETE" and _fields_of(current, change.before) != dict(change.before):
        return Outcome.CONFLICT
    return None


def _error_text(resp: Response) -> str:
    try:
        doc = resp.json()
        first = doc["errors"][0]
        return f"HTTP {resp.status}: {first.get('title', '')} {first.get('detail', '')}".strip()
    except (RequestFailed, KeyError, IndexError, TypeError):
        return f"HTTP {resp.status}"


def _seconds_between(start: str, end: str) -> float:
    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return round((parse(end) - parse(start)).total_seconds(), 3)
