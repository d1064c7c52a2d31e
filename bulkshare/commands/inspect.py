"""The commands that only read local files: `validate`, `runs`, `show` and `audit verify`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bulkshare import audit
from bulkshare.commands.output import Output
from bulkshare.commands.planning import show_report
from bulkshare.config import Config
from bulkshare.errors import UsageError
from bulkshare.job import load_job
from bulkshare.report import ReportFormat, RunReport, list_runs, render_run, render_runs
from bulkshare.run import RunDir

__all__ = ["audit_verify", "runs", "show", "validate"]


def validate(paths: Sequence[str], output: Output) -> int:
    """Check job files; one line per file."""
    worst = 0
    for path in paths:
        try:
            job = load_job(path)
        except UsageError as exc:
            print(f"error: {exc}", file=output.err)
            worst = 2
            continue
        output.result(f"ok: {path}: job {job.name}, {len(job.operations)} operation(s)")
    return worst


def runs(config: Config, output: Output, fmt: str = "table") -> int:
    """List runs, oldest first, with their state and counts."""
    found = list_runs(config.state_dir)
    if not found and fmt == "table":
        output.result(f"no runs under {config.state_dir / 'runs'}")
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
    """One run: counts per action and outcome, failures and conflicts; any report format."""
    report = RunReport.load(RunDir.find(config.state_dir, run_id))
    show_report(
        output, partial(render_run, report), fmt, Path(report_path) if report_path else None
    )
    return 0


def audit_verify(config: Config, target: str, output: Output) -> int:
    """Verify a run's hash chain (by run id or path)."""
    path = Path(target)
    if path.is_dir():
        path = path / "audit.jsonl"
    elif not path.is_file():
        path = RunDir.find(config.state_dir, target).audit
    result = audit.verify(path)
    if result.ok:
        sealed = (
            f" ({result.sealed_torn_lines} torn line(s) sealed)" if result.sealed_torn_lines else ""
        )
        output.result(f"ok: {path}: {result.records} records, chain intact{sealed}")
        return 0
    output.result(f"FAILED: {result.error}")
    return 1
