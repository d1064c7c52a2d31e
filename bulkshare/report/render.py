"""Plans and runs rendered for people (table, markdown, html) and for programs (json, csv).

Picks the format; the formats themselves live in export, html and rich.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from bulkshare.config import Limits
from bulkshare.plan import Change, Plan
from bulkshare.report.export import csv_report, markdown_report
from bulkshare.report.html import html_report
from bulkshare.report.model import (
    PENDING,
    CountTable,
    ReportDoc,
    Row,
    RunListing,
    RunReport,
    describe_change,
    owner_names,
    plan_rows,
    printable,
    rejected_rows,
    scope_text,
)
from bulkshare.report.rich import rich_doc, rich_runs
from bulkshare.run import Outcome, Summary

__all__ = [
    "ReportFormat",
    "WriteEstimate",
    "estimate_writes",
    "plan_doc",
    "plan_json",
    "plan_table",
    "render_plan",
    "render_run",
    "render_runs",
    "report_format",
    "run_doc",
    "summary_text",
]

_MAX_TABLE_ROWS = 200


@dataclass(frozen=True)
class WriteEstimate:
    """How long a number of writes takes at a tenant's tier-2 limit."""

    writes: int
    per_window: int  #: writes the budget allows in one window
    window_s: float
    seconds: float  #: the least time the window arithmetic allows (first write to last)

    @property
    def fits_one_window(self) -> bool:
        return self.writes <= self.per_window

    def describe(self) -> str:
        if self.writes == 0:
            return "no writes"
        if self.fits_one_window:
            return (
                f"{self.writes} writes fit in one window ({self.per_window} per "
                f"{self.window_s:g} s): no waiting for the rate limit"
            )
        return (
            f"{self.writes} writes need {math.ceil(self.writes / self.per_window)} windows "
            f"of {self.window_s:g} s ({self.per_window} each): at least "
            f"{_duration(self.seconds)}"
        )


def estimate_writes(writes: int, limits: Limits) -> WriteEstimate:
    """The window minimum: (ceil(W / L) - 1) * window_s for W writes and L per window."""
    per_window = max(
        1, math.floor(limits.tier2_per_minute * limits.window_s / 60 * limits.headroom)
    )
    windows = math.ceil(writes / per_window) if writes else 0
    return WriteEstimate(writes, per_window, limits.window_s, max(0, windows - 1) * limits.window_s)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _short(value: Any, width: int = 28) -> str:
    text = (
        "-" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()
    )
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _before_after(change: Change) -> str:
    names = owner_names(change.task)
    text = describe_change(
        change.method, change.action, change.before, change.after, 20, change.ending(), names
    )
    return printable(text)


def plan_facts(plan: Plan) -> tuple[tuple[str, str], ...]:
    """Where a plan was made and by whom: the tenant's URL, the caller, what it covers."""
    caller = plan.caller
    return (
        ("tenant URL", plan.tenant_url or "-"),
        ("planned by", "-" if caller is None else caller.describe()),
        ("caller roles", "-" if caller is None else caller.roles_text()),
        ("scope", scope_text(plan.scope)),
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def plan_table(plan: Plan, limits: Limits) -> str:
    """The plan as a text table with counts and the write-time estimate."""
    lines = [
        f"plan: job {plan.job_name} on tenant {plan.tenant}: {len(plan.changes)} changes, "
        f"{plan.scanned} tasks read",
        *(printable(f"  {label}: {value}") for label, value in plan_facts(plan)),
    ]
    rows = [
        (
            c.task_id,
            _short(c.task.get("name")),
            _short(c.task.get("ownerName") or c.task.get("owner"), 20),
            c.action,
            _before_after(c),
        )
        for c in plan.changes[:_MAX_TABLE_ROWS]
    ]
    if rows:
        lines += ["", *_table(("task", "name", "owner", "action", "before → after"), rows)]
    if len(plan.changes) > _MAX_TABLE_ROWS:
        lines.append(f"… and {len(plan.changes) - _MAX_TABLE_ROWS} more (use --format json)")
    lines += _rejected_lines(plan)
    lines += [
        "",
        _counts_line("changes", plan.counts()),
        _counts_line("skipped, already done", dict(plan.skipped)),
        f"rejected, values of the wrong type: {len(plan.rejected) or 'none'}",
        "time: " + estimate_writes(plan.writes(), limits).describe(),
    ]
    return "\n".join(lines)


def _rejected_lines(plan: Plan) -> list[str]:
    """The tasks a plan rejected, with their reasons: never changed, shown so they get fixed."""
    if not plan.rejected:
        return []
    rows = [
        (printable(r.task_id), _short(r.name), _short(r.owner, 20), printable(r.reason))
        for r in rejected_rows(plan)[:_MAX_TABLE_ROWS]
    ]
    lines = ["", f"rejected tasks ({len(plan.rejected)}), not changed:"]
    lines += _table(("task", "name", "owner", "reason"), rows)
    if len(plan.rejected) > _MAX_TABLE_ROWS:
        lines.append(f"… and {len(plan.rejected) - _MAX_TABLE_ROWS} more (use --format json)")
    return lines


def _counts_line(title: str, counts: Mapping[str, int]) -> str:
    if not counts:
        return f"{title}: none"
    return f"{title}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


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


def summary_text(summary: Summary) -> str:
    """A run's summary in a few lines."""
    lines = [
        f"run {summary.run_id}: job {summary.job} on tenant {summary.tenant}",
        f"  planned {summary.planned}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
        if summary.counts
        else f"  planned {summary.planned}; nothing to do",
        f"  took {summary.duration_s:.1f} s; 429s seen {summary.throttled}; "
        f"exit {summary.exit_code}",
    ]
    if summary.gone:
        lines.insert(2, f"  {summary.gone} not done: the task was gone (counted as failed)")
    return "\n".join(lines)


class ReportFormat(StrEnum):
    """What `--format` asks for."""

    TABLE = "table"  # rich on a terminal, plain text otherwise
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    HTML = "html"


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


def plan_doc(plan: Plan, limits: Limits) -> ReportDoc:
    """A plan with its facts, counts and every change."""
    facts = (
        ("tenant", plan.tenant),
        *plan_facts(plan),
        ("job", plan.job_name),
        ("job file", plan.job_path),
        ("planned at", plan.created_at),
        ("tasks read", str(plan.scanned)),
        ("changes", str(len(plan.changes))),
        ("rejected", str(len(plan.rejected))),
        ("time", estimate_writes(plan.writes(), limits).describe()),
    )
    counts = [_one_column("Changes per action", "changes", plan.counts())]
    if plan.skipped:
        counts.append(_one_column("Skipped, already done", "tasks", dict(plan.skipped)))
    title = f"Plan: job {plan.job_name} on tenant {plan.tenant}"
    return ReportDoc("plan", title, facts, tuple(counts), plan_rows(plan), rejected_rows(plan))


def _one_column(title: str, column: str, counts: Mapping[str, int]) -> CountTable:
    rows = tuple((k, (v,)) for k, v in sorted(counts.items()))
    return CountTable(title, ("action", column), (*rows, ("total", (sum(counts.values()),))))


#: outcome columns in the order a reader scans them: done, then trouble, then what is left
_OUTCOME_ORDER = [*(o.value for o in Outcome), PENDING]


def run_doc(report: RunReport) -> ReportDoc:
    """A run with its facts, outcomes per action and every change."""
    meta, summary = report.meta, report.summary
    facts = [
        ("run", report.run_id),
        ("tenant", report.tenant),
        ("job", report.job),
        ("target", _str(meta.target or None)),
        ("state", report.state),
        ("exit code", _str(meta.exit_code)),
        ("started", _str(meta.started)),
        ("ended", _str(meta.ended)),
        ("took", "-" if summary is None else f"{summary.duration_s:.1f} s"),
        ("429s seen", "-" if summary is None else str(summary.throttled)),
        ("side effects", "-" if summary is None else str(summary.side_effects)),
        ("changes planned", str(len(report.rows))),
        ("task gone (failed)", "-" if summary is None else str(summary.gone)),
        ("verified before writing", _str(meta.verify)),
        *_run_callers(report),
    ]
    title = f"Run {report.run_id}: job {report.job} on tenant {report.tenant}"
    return ReportDoc("run", title, tuple(facts), (_outcome_table(report),), report.rows)


def _run_callers(report: RunReport) -> list[tuple[str, str]]:
    plan = report.plan
    planned = [] if plan is None else list(plan_facts(plan)[:2])  # tenant URL, planned by
    return [*planned, ("applied by (user id)", _str(report.meta.applied_by))]


def _str(value: Any) -> str:
    return "-" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _outcome_table(report: RunReport) -> CountTable:
    by_action, totals = report.by_action(), report.by_outcome()
    outcomes = sorted(totals, key=lambda o: [*_OUTCOME_ORDER, o].index(o))
    rows = [
        (action, (*(counts.get(o, 0) for o in outcomes), sum(counts.values())))
        for action, counts in sorted(by_action.items())
    ]
    rows.append(("total", (*(totals[o] for o in outcomes), len(report.rows))))
    return CountTable("Outcomes per action", ("action", *outcomes, "total"), tuple(rows))


def render_plan(
    plan: Plan, limits: Limits, fmt: ReportFormat, tty: bool = False, width: int | None = None
) -> str:
    """A plan in any format; a table is drawn with rich when it goes to a terminal."""
    if fmt is ReportFormat.JSON:
        return plan_json(plan, limits).decode()
    if fmt is ReportFormat.TABLE and not tty:
        return plan_table(plan, limits)
    return _render_doc(plan_doc(plan, limits), fmt, width)


def render_run(
    report: RunReport, fmt: ReportFormat, tty: bool = False, width: int | None = None
) -> str:
    """A run in any format; the table lists failures and conflicts, the files every change."""
    if fmt is ReportFormat.JSON:
        return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode()
    doc = run_doc(report)
    if fmt is ReportFormat.TABLE and not tty:
        return _run_text(doc)
    return _render_doc(doc, fmt, width)


def _render_doc(doc: ReportDoc, fmt: ReportFormat, width: int | None) -> str:
    if fmt is ReportFormat.CSV:
        return csv_report(doc)
    if fmt is ReportFormat.MARKDOWN:
        return markdown_report(doc)
    if fmt is ReportFormat.HTML:
        return html_report(doc)
    return rich_doc(doc, _MAX_TABLE_ROWS, width)


_IN_TITLE = {"run", "tenant", "job"}


def _run_text(doc: ReportDoc) -> str:
    """A run as plain text: facts, counts, then failures and conflicts."""
    lines = [printable(doc.title)]
    lines += [f"  {k}: {printable(v)}" for k, v in doc.facts if k not in _IN_TITLE]
    for table in doc.counts:
        rows = [(name, *map(str, values)) for name, values in table.rows]
        lines += ["", table.title, *_table(table.columns, rows)]
    problems = doc.problems
    lines += ["", f"failures and conflicts: {len(problems) or 'none'}"]
    if problems:
        lines += _table(
            ("task", "name", "action", "outcome", "http", "error"),
            [_problem_cells(r) for r in problems],
        )
    effects = doc.side_effects
    lines += ["", f"side effects (not failures): {len(effects) or 'none'}"]
    if effects:
        lines += _table(
            ("task", "name", "action", "side effect"),
            [
                (r.task_id, _short(r.name), r.action, printable("; ".join(r.side_effects)))
                for r in effects
            ],
        )
    return "\n".join(lines)


def _problem_cells(row: Row) -> tuple[str, ...]:
    status = "-" if row.http_status is None else str(row.http_status)
    error = printable(row.error or "-")
    return (row.task_id, _short(row.name), row.action, str(row.outcome), status, error)


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
    return "\n".join(_table(_RUNS_COLUMNS, rows))


_RUNS_COLUMNS = ("run id", "job", "tenant", "started", "state", "exit", "changes")
