"""Plans and runs rendered for people (table, markdown, html) and for programs (json, csv).

Picks the format; the documents come from `docs`, the formats live in text, export, html, rich.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import orjson

from bulkshare.config import Limits
from bulkshare.plan import Plan
from bulkshare.report.docs import plan_doc, run_doc
from bulkshare.report.estimate import estimate_writes
from bulkshare.report.export import csv_report, markdown_report
from bulkshare.report.html import html_report
from bulkshare.report.model import ReportDoc, printable
from bulkshare.report.rich import rich_doc, rich_runs
from bulkshare.report.runs import RunListing, RunReport
from bulkshare.report.text import MAX_TABLE_ROWS, plan_table, run_text, text_table

__all__ = [
    "ReportFormat",
    "plan_json",
    "render_plan",
    "render_run",
    "render_runs",
    "report_format",
]


def plan_json(plan: Plan, limits: Limits) -> bytes:
    """The plan document plus the estimate, as JSON."""
    doc = plan.to_json()
    est = estimate_writes(plan.writes(), limits)
    doc["estimate"] = {
        "writes": est.writes,
        "per_window": est.per_window,
        "window_s": est.window_s,
        "min_seconds": est.seconds,
        "fits_one_window": est.fits_one_window,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


class ReportFormat(StrEnum):
    """What `--format` asks for."""

    TABLE = "table"  # rich on a terminal, plain text otherwise
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    HTML = "html"

    @classmethod
    def _missing_(cls, value: object) -> ReportFormat | None:
        # the contract names the plain report `text`; `table` is the older name of the same
        return cls.TABLE if value == "text" else None


_SUFFIX_FORMATS = {
    ".html": ReportFormat.HTML,
    ".htm": ReportFormat.HTML,
    ".md": ReportFormat.MARKDOWN,
    ".csv": ReportFormat.CSV,
    ".json": ReportFormat.JSON,
}


def report_format(path: Path, fmt: str | None) -> ReportFormat:
    """The format of a `--report` file: `--format` if given, else by suffix, else table text."""
    if fmt is not None:
        return ReportFormat(fmt)
    return _SUFFIX_FORMATS.get(path.suffix.lower(), ReportFormat.TABLE)


def render_plan(
    plan: Plan,
    limits: Limits,
    fmt: ReportFormat,
    tty: bool = False,
    width: int | None = None,
    *,
    max_age_h: float | None = None,
) -> str:
    """A plan in any format; a table is drawn with rich when it goes to a terminal.

    `max_age_h` ([defaults] plan_max_age_h) dates the plan's expiry; None: "no expiry"."""
    if fmt is ReportFormat.JSON:
        return plan_json(plan, limits).decode()
    if fmt is ReportFormat.TABLE and not tty:
        return plan_table(plan, limits, max_age_h)
    return _render_doc(plan_doc(plan, limits, max_age_h), fmt, width)


def render_run(
    report: RunReport, fmt: ReportFormat, tty: bool = False, width: int | None = None
) -> str:
    """A run in any format; the table lists failures and conflicts, the files every change."""
    if fmt is ReportFormat.JSON:
        return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode()
    doc = run_doc(report)
    if fmt is ReportFormat.TABLE and not tty:
        return run_text(doc)
    return _render_doc(doc, fmt, width)


def _render_doc(doc: ReportDoc, fmt: ReportFormat, width: int | None) -> str:
    if fmt is ReportFormat.CSV:
        return csv_report(doc)
    if fmt is ReportFormat.MARKDOWN:
        return markdown_report(doc)
    if fmt is ReportFormat.HTML:
        return html_report(doc)
    return rich_doc(doc, MAX_TABLE_ROWS, width)


def render_runs(
    runs: Sequence[RunListing], fmt: ReportFormat, tty: bool = False, width: int | None = None
) -> str:
    """The list of runs as a table or JSON."""
    if fmt is ReportFormat.JSON:
        return orjson.dumps([r.to_json() for r in runs], option=orjson.OPT_INDENT_2).decode()
    if tty:
        return rich_runs(runs, width)
    rows = [
        (
            r.run_id,
            printable(r.job),
            printable(r.tenant),
            r.started,
            r.state,
            "-" if r.exit_code is None else str(r.exit_code),
            r.counts_text(),
        )
        for r in runs
    ]
    return "\n".join(text_table(_RUNS_COLUMNS, rows))


_RUNS_COLUMNS = ("run id", "job", "tenant", "started", "state", "exit", "changes")
