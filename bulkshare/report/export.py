"""A plan or run as CSV (one row per change, for spreadsheets) or Markdown (for tickets and PRs)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

import orjson

from bulkshare.report.model import (
    CountTable,
    RejectedRow,
    ReportDoc,
    Row,
    TextTable,
    matched_text,
)

__all__ = [
    "CSV_COLUMNS",
    "CSV_RUN_COLUMNS",
    "REJECTED",
    "csv_cell",
    "csv_report",
    "markdown_report",
]

CSV_COLUMNS = (
    "index",
    "task_id",
    "name",
    "owner",
    "owner_id",
    "new_owner",
    "new_owner_id",
    "app",
    "app_id",
    "type",
    "action",
    "method",
    "change",
    "before",
    "after",
    "matched",
)
#: the action column of a rejected task's row (it has no change)
REJECTED = "rejected"
#: a run's CSV adds what became of each change
CSV_RUN_COLUMNS = (
    *CSV_COLUMNS,
    "outcome",
    "http_status",
    "attempts",
    "error",
    "note",
    "side_effects",
    "found",
    "target_id",
)

# a cell a spreadsheet would take for a formula (CSV injection): prefixed with an apostrophe
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_report(doc: ReportDoc) -> str:
    """One row per change, with a header row."""
    columns = CSV_RUN_COLUMNS if doc.has_outcomes else CSV_COLUMNS
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in doc.rows:
        writer.writerow([csv_cell(v) for v in _csv_values(row)][: len(columns)])
    for rejected in doc.rejected:
        writer.writerow([csv_cell(v) for v in _csv_rejected(rejected)][: len(columns)])
    return buf.getvalue()


def _csv_rejected(row: RejectedRow) -> list[object]:
    """A rejected task as a row: action `rejected`, its reason where a change is described."""
    return ["", row.task_id, row.name, row.owner, "", "", "", "", "", "", REJECTED, "", row.reason]


def _csv_values(row: Row) -> list[object]:
    return [
        row.index,
        row.task_id,
        row.name,
        row.owner,
        row.owner_id,
        row.new_owner,
        row.new_owner_id,
        row.app,
        row.app_id,
        row.type,
        row.action,
        row.method,
        row.change_text(),
        orjson.dumps(dict(row.before)).decode(),
        orjson.dumps(dict(row.after)).decode(),
        matched_text(row.matched, None),
        row.outcome,
        row.http_status,
        row.attempts,
        row.error,
        row.note,
        "; ".join(row.side_effects),
        None if row.found is None else orjson.dumps(dict(row.found)).decode(),
        row.target_id,
    ]


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")


def _md(text: str) -> str:
    """Text safe in a Markdown table cell: specials escaped, one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split())) or " "


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: int = 0) -> str:
    """A pipe table; the last `numeric` columns are right-aligned."""
    align = ["---"] * (len(headers) - numeric) + ["---:"] * numeric
    lines = ["| " + " | ".join(_md(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(doc: ReportDoc) -> str:
    """Title, summary, counts, failures (for a run) and every change."""
    parts = [f"# {_md(doc.title)}", "\n".join(f"- **{_md(k)}:** {_md(v)}" for k, v in doc.facts)]
    parts += [_md_counts(t) for t in doc.counts]
    parts += [_md_text_table(t) for t in doc.tables]
    if doc.has_outcomes:
        parts.append(_md_problems(doc.problems))
        parts.append(_md_side_effects(doc.side_effects))
    parts.append(_md_changes(doc))
    if doc.rejected:
        parts.append(_md_rejected(doc.rejected))
    return "\n\n".join(parts) + "\n"


def _md_counts(table: CountTable) -> str:
    rows = [[name, *map(str, values)] for name, values in table.rows]
    return f"## {_md(table.title)}\n\n" + _md_table(
        table.columns, rows, numeric=len(table.columns) - 1
    )


def _md_text_table(table: TextTable) -> str:
    note = f"{_md(table.note)}\n\n" if table.note else ""
    return f"## {_md(table.title)}\n\n{note}" + _md_table(
        table.columns, table.rows, numeric=table.numeric
    )


def _md_problems(problems: Sequence[Row]) -> str:
    if not problems:
        return "## Failures and conflicts\n\nNone."
    rows = [
        [r.task_id, r.name, r.action, str(r.outcome), _status(r), r.error or ""] for r in problems
    ]
    return f"## Failures and conflicts ({len(problems)})\n\n" + _md_table(
        ("task", "name", "action", "outcome", "HTTP", "error"), rows
    )


def _md_side_effects(rows: Sequence[Row]) -> str:
    if not rows:
        return "## Side effects\n\nNone."
    cells = [[r.task_id, r.name, r.action, "; ".join(r.side_effects)] for r in rows]
    return f"## Side effects ({len(rows)}), not failures\n\n" + _md_table(
        ("task", "name", "action", "side effect"), cells
    )


def _md_rejected(rejected: Sequence[RejectedRow]) -> str:
    rows = [[r.task_id, r.name, r.owner, r.reason] for r in rejected]
    title = f"## Rejected tasks ({len(rejected)})\n\nValues of the wrong type: not changed.\n\n"
    return title + _md_table(("task", "name", "owner", "reason"), rows)


def _md_changes(doc: ReportDoc) -> str:
    if not doc.rows:
        return "## Changes\n\nNo changes."
    headers = ["task", "name", "owner", "app", "type", "action", "before → after"]
    headers += ["outcome", "HTTP", "error"] if doc.has_outcomes else ["matched on"]
    rows = [_md_change_row(r, doc.has_outcomes) for r in doc.rows]
    return f"## Changes ({len(doc.rows)})\n\n" + _md_table(headers, rows)


def _md_change_row(row: Row, outcomes: bool) -> list[str]:
    cells = [row.task_id, row.name, row.owner, row.app, row.type, row.action, row.change_text()]
    if outcomes:
        return [*cells, str(row.outcome), _status(row), row.error or ""]
    return [*cells, matched_text(row.matched)]


def _status(row: Row) -> str:
    return "" if row.http_status is None else str(row.http_status)
