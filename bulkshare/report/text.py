"""Plans and runs as plain text, for a pipe, a log or a cron mail: no colours, no box drawing,
every tenant-sourced string through `printable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from bulkshare.config import Limits
from bulkshare.plan import Change, Plan
from bulkshare.report.docs import plan_summary
from bulkshare.report.estimate import estimate_writes
from bulkshare.report.model import (
    ReportDoc,
    Row,
    TextTable,
    describe_change,
    matched_text,
    owner_names,
    printable,
    rejected_rows,
)
from bulkshare.run import Summary

__all__ = ["MAX_TABLE_ROWS", "plan_table", "run_text", "summary_text", "text_table"]

MAX_TABLE_ROWS = 200


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


def text_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, a dashed line under the header."""
    rows = [list(r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _doc_table(table: TextTable) -> list[str]:
    """A report table as text, at most MAX_TABLE_ROWS rows."""
    rows = [[printable(c) for c in r] for r in table.rows[:MAX_TABLE_ROWS]]
    lines = ["", f"{table.title}:" if not table.note else f"{table.title}: {table.note}"]
    lines += text_table(table.columns, rows)
    if len(table.rows) > MAX_TABLE_ROWS:
        lines.append(f"… and {len(table.rows) - MAX_TABLE_ROWS} more (use --format html or json)")
    return lines


_NOT_IN_TEXT = {"tenant", "job", "job file", "planned at", "tasks read", "changes", "rejected"}


def plan_table(plan: Plan, limits: Limits, max_age_h: float | None = None) -> str:
    """The plan as text: what an approver signs, its tables, every change, counts, estimate."""
    doc = plan_summary(plan, limits, max_age_h)  # the changes are listed below, 200 at most
    lines = [
        f"plan: job {plan.job_name} on tenant {plan.tenant}: {len(plan.changes)} changes, "
        f"{plan.scanned} tasks read",
        *(printable(f"  {k}: {v}") for k, v in doc.facts if k not in _NOT_IN_TEXT | {"time"}),
    ]
    for table in doc.tables:
        lines += _doc_table(table)
    lines += _change_lines(plan)
    lines += _rejected_lines(plan)
    lines += [
        "",
        _counts_line("changes", plan.counts()),
        _counts_line("skipped, already done", dict(plan.skipped)),
        f"rejected, values of the wrong type: {len(plan.rejected) or 'none'}",
        "time: " + estimate_writes(plan.writes(), limits).describe(),
    ]
    return "\n".join(lines)


def _change_lines(plan: Plan) -> list[str]:
    rows = [
        (
            c.task_id,
            _short(c.task.get("name")),
            _short(c.task.get("ownerName") or c.task.get("owner"), 20),
            c.action,
            _before_after(c),
            printable(matched_text(c.selects, 28)),
        )
        for c in plan.changes[:MAX_TABLE_ROWS]
    ]
    if not rows:
        return []
    headers = ("task", "name", "owner", "action", "before → after", "matched on")
    lines = ["", *text_table(headers, rows)]
    if len(plan.changes) > MAX_TABLE_ROWS:
        lines.append(f"… and {len(plan.changes) - MAX_TABLE_ROWS} more (use --format json)")
    return lines


def _rejected_lines(plan: Plan) -> list[str]:
    """The tasks a plan rejected, with their reasons: never changed, shown so they get fixed."""
    if not plan.rejected:
        return []
    rows = [
        (printable(r.task_id), _short(r.name), _short(r.owner, 20), printable(r.reason))
        for r in rejected_rows(plan)[:MAX_TABLE_ROWS]
    ]
    lines = ["", f"rejected tasks ({len(plan.rejected)}), not changed:"]
    lines += text_table(("task", "name", "owner", "reason"), rows)
    if len(plan.rejected) > MAX_TABLE_ROWS:
        lines.append(f"… and {len(plan.rejected) - MAX_TABLE_ROWS} more (use --format json)")
    return lines


def _counts_line(title: str, counts: Mapping[str, int]) -> str:
    if not counts:
        return f"{title}: none"
    return f"{title}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


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
    lines[2:2] = _read_back_lines(summary)
    return "\n".join(lines)


def _read_back_lines(summary: Summary) -> list[str]:
    """What the read-backs found, before the exit line: a failed re-enable is why a run whose
    writes all applied still exits 1, and a side effect is worth a look (`show` lists them)."""
    found = []
    if summary.reenable_failed:
        found.append(
            f"  {summary.reenable_failed} task(s) the service disabled could not be enabled "
            f"again (keep_enabled; exit 1; `bulkshare show {summary.run_id}` lists them)"
        )
    if summary.reenabled:
        found.append(f"  {summary.reenabled} task(s) disabled by the service enabled again")
    if summary.side_effects:
        found.append(
            f"  {summary.side_effects} side effect(s) read back (not failures; see `show`)"
        )
    if summary.not_read_back:
        found.append(f"  {summary.not_read_back} applied write(s) could not be read back")
    return found


_IN_TITLE = {"run", "tenant", "job"}


def run_text(doc: ReportDoc) -> str:
    """A run as plain text: facts, counts, each problem, then failures grouped, conflicts."""
    lines = [printable(doc.title)]
    lines += [f"  {k}: {printable(v)}" for k, v in doc.facts if k not in _IN_TITLE]
    for count in doc.counts:
        rows = [(name, *map(str, values)) for name, values in count.rows]
        lines += ["", count.title, *text_table(count.columns, rows)]
    problems = doc.problems
    lines += ["", f"failures and conflicts: {len(problems) or 'none'}"]
    if problems:
        cells = [_problem_cells(r) for r in problems[:MAX_TABLE_ROWS]]
        lines += text_table(("task", "name", "action", "outcome", "http", "error"), cells)
    if len(problems) > MAX_TABLE_ROWS:
        lines.append(f"… and {len(problems) - MAX_TABLE_ROWS} more (use --format html or csv)")
    for table in doc.tables:  # after the list: grouped failures, conflicts, copies, id map
        lines += _doc_table(table)
    return "\n".join(lines + _effect_lines(doc.side_effects))


def _effect_lines(effects: Sequence[Row]) -> list[str]:
    lines = ["", f"side effects (not failures): {len(effects) or 'none'}"]
    if effects:
        lines += text_table(
            ("task", "name", "action", "side effect"),
            [
                (r.task_id, _short(r.name), r.action, printable("; ".join(r.side_effects)))
                for r in effects
            ],
        )
    return lines


def _problem_cells(row: Row) -> tuple[str, ...]:
    status = "-" if row.http_status is None else str(row.http_status)
    error = printable(row.error or "-")
    return (row.task_id, _short(row.name), row.action, str(row.outcome), status, error)
