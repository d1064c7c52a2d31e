"""The commands that only read local files: `validate`, `runs`, `show` and `audit verify`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bulkshare import audit, safefile
from bulkshare.commands.output import Output
from bulkshare.commands.planning import show_report
from bulkshare.config import Config
from bulkshare.errors import UsageError
from bulkshare.job import Job, load_job
from bulkshare.report import (
    ReportFormat,
    RunListing,
    RunReport,
    list_runs,
    render_run,
    render_runs,
)
from bulkshare.run import RunDir, RunState

__all__ = ["RunFilter", "audit_verify", "runs", "show", "validate"]


def validate(paths: Sequence[str], output: Output) -> int:
    """Check job files; one line per file."""
    worst = 0
    for path in paths:
        try:
            job = load_job(path)
        except UsageError as exc:
            output.error(f"bulkshare: {exc}", 2)
            worst = 2
            continue
        output.result(f"ok: {path}: job {job.name}, {_what_it_does(job)}")
    return worst


def _what_it_does(job: Job) -> str:
    """A copy job has no operations: say where it copies from instead."""
    if job.copy is None:
        return f"{len(job.operations)} operation(s)"
    spec = job.copy
    source = f"tenant {spec.source_tenant}" if spec.source_tenant else f"file {spec.source_file}"
    then = ", then deletes the source tasks" if spec.delete_source else ""
    return f"copy from {source}{then}"


@dataclass(frozen=True)
class RunFilter:
    """Which runs `runs` lists: every condition given must hold (none given: every run)."""

    job: str | None = None
    tenant: str | None = None
    state: str | None = None  #: as shown: planned, running, interrupted, finished or dead
    since: datetime | None = None  #: started at or after this (aware, UTC)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.job, self.tenant, self.state, self.since))

    def keeps(self, run: RunListing) -> bool:
        return (
            (self.job is None or run.job == self.job)
            and (self.tenant is None or run.tenant == self.tenant)
            and (self.state is None or run.state == self.state)
            and (self.since is None or _started_at(run) >= self.since)
        )


def _started_at(run: RunListing) -> datetime:
    """When a run started; a run.json with an unreadable time sorts before every `--since`."""
    try:
        started = datetime.fromisoformat(run.started)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return started if started.tzinfo else started.replace(tzinfo=UTC)


def runs(config: Config, output: Output, fmt: str = "table", where: RunFilter | None = None) -> int:
    """List runs, oldest first, with their state and counts; only those `where` keeps."""
    where = where or RunFilter()
    found = [r for r in list_runs(config.state_dir, warn=output.note) if where.keeps(r)]
    if not found and fmt == "table":
        matching = " matching the filters" if where else ""
        output.result(f"no runs{matching} under {config.state_dir / 'runs'}")
        return 0
    output.result(render_runs(found, ReportFormat(fmt), tty=output.out.isatty()))
    return 0


def show(
    config: Config,
    run_id: str,
    output: Output,
    fmt: str | None = None,
    report_path: str | None = None,
) -> int:
    """One run: counts per action and outcome, failures and conflicts; any report format.

    Its audit chain is checked first: a broken one is refused (RunFileError), never shown.
    """
    report = RunReport.load(RunDir.find(config.state_dir, run_id))
    show_report(
        output, partial(render_run, report), fmt, Path(report_path) if report_path else None
    )
    return 0


def audit_verify(config: Config, target: str, output: Output) -> int:
    """Verify a run's hash chain, by run id (or `last`, or a prefix) or by path.

    A target with a `/` or ending in `.jsonl` is a path (a run directory or a log file);
    anything else is a run id, checked as one. A run that says it finished must end with
    its run-end record, so a log cut short fails.
    """
    path, finished = _audit_target(config, target)
    result = audit.verify(path, finished=finished)
    if result.ok:
        sealed = (
            f" ({result.sealed_torn_lines} torn line(s) sealed)" if result.sealed_torn_lines else ""
        )
        output.result(f"ok: {path}: {result.records} records, chain intact{sealed}")
        return 0
    output.result(f"FAILED: {result.error}")
    return 1


def _audit_target(config: Config, target: str) -> tuple[Path, bool]:
    """The log to verify, and whether its run says it finished (then it must end so)."""
    if "/" in target or os.sep in target or target.endswith(".jsonl"):
        path = Path(target)
        run_dir = RunDir(path if path.is_dir() else path.parent)
        if path.is_dir():
            path = run_dir.audit
        safefile.refuse_links(path)  # as resume, show and undo refuse a planted link
        if not path.is_file():
            raise UsageError(f"{path}: no audit log there")
    else:
        run_dir = RunDir.find(config.state_dir, target)
        path = run_dir.audit
        if not path.is_file():
            raise UsageError(f"run {run_dir.run_id} has no audit log yet")
    return path, _says_finished(run_dir)


def _says_finished(run_dir: RunDir) -> bool:
    """True if a run.json beside the log says finished (an unreadable one says nothing)."""
    if not run_dir.meta_path.is_file():
        return False
    try:
        return run_dir.meta().state is RunState.FINISHED
    except UsageError:
        return False
