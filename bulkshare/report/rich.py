"""Plans, runs and the list of runs as rich tables, for a terminal.

Task data goes in as `Text` (never markup) with control characters made visible.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Sequence

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from bulkshare.report.model import (
    CountTable,
    RejectedRow,
    ReportDoc,
    Row,
    TextTable,
    matched_text,
    printable,
)
from bulkshare.report.runs import RunListing

__all__ = ["rich_doc", "rich_runs"]

_OUTCOME_STYLE = {"failed": "bold red", "conflict": "bold red", "applied": "green"}


def _render(items: Iterable[RenderableType], width: int | None) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=True,
        width=width or shutil.get_terminal_size().columns,
        highlight=False,
        emoji=False,
    )
    for item in items:
        console.print(item)
    return buf.getvalue().rstrip("\n")


def _t(text: str, style: str = "") -> Text:
    return Text(printable(text), style=style)


def rich_doc(doc: ReportDoc, max_rows: int, width: int | None = None) -> str:
    """A plan (its changes, up to `max_rows`) or a run (its problems), then counts and facts."""
    items: list[RenderableType] = [_t(doc.title, "bold")]
    if doc.simulated:
        items.append(_t("SIMULATED: the built-in simulator, not a real tenant", "bold yellow"))
    items += [_problems(doc.problems)] if doc.has_outcomes else _changes(doc.rows, max_rows)
    items += [_text_table(t, max_rows) for t in doc.tables]
    items += _side_effects(doc.side_effects) if doc.has_outcomes else []
    items += _rejected(doc.rejected, max_rows)
    items += [_count_table(t) for t in doc.counts]
    items.append(_facts(doc.facts))
    return _render(items, width)


def _changes(rows: Sequence[Row], max_rows: int) -> list[RenderableType]:
    if not rows:
        return [_t("no changes")]
    table = Table(title=f"changes ({len(rows)})", title_justify="left")
    for name in ("task", "name", "owner", "action", "before → after", "matched on"):
        table.add_column(name, overflow="fold")
    for r in rows[:max_rows]:
        table.add_row(
            _t(r.task_id),
            _t(r.name),
            _t(r.owner),
            _t(r.action),
            _t(r.change_text(28)),
            _t(matched_text(r.matched, 28)),
        )
    if len(rows) > max_rows:
        table.caption = f"… and {len(rows) - max_rows} more (use --format html, csv or json)"
    return [table]


def _text_table(doc_table: TextTable, max_rows: int) -> RenderableType:
    table = Table(title=doc_table.title, title_justify="left", caption=doc_table.note or None)
    numeric = len(doc_table.columns) - doc_table.numeric
    for i, name in enumerate(doc_table.columns):
        table.add_column(name, overflow="fold", justify="right" if i >= numeric else "left")
    for row in doc_table.rows[:max_rows]:
        table.add_row(*(_t(c) for c in row))
    if len(doc_table.rows) > max_rows:
        more = len(doc_table.rows) - max_rows
        table.caption = f"… and {more} more (use --format html, csv or json)"
    return table


def _rejected(rejected: Sequence[RejectedRow], max_rows: int) -> list[RenderableType]:
    if not rejected:
        return []
    title = f"rejected tasks ({len(rejected)}): values of the wrong type, not changed"
    table = Table(title=title, title_justify="left")
    for name in ("task", "name", "owner", "reason"):
        table.add_column(name, overflow="fold")
    for r in rejected[:max_rows]:
        table.add_row(_t(r.task_id), _t(r.name), _t(r.owner), _t(r.reason, "bold red"))
    if len(rejected) > max_rows:
        table.caption = f"… and {len(rejected) - max_rows} more (use --format html, csv or json)"
    return [table]


def _problems(problems: Sequence[Row]) -> RenderableType:
    if not problems:
        return _t("no failures or conflicts", "green")
    table = Table(title=f"failures and conflicts ({len(problems)})", title_justify="left")
    for name in ("task", "name", "action", "outcome", "HTTP", "error"):
        table.add_column(name, overflow="fold", justify="right" if name == "HTTP" else "left")
    for r in problems:
        status = "" if r.http_status is None else str(r.http_status)
        outcome = str(r.outcome)
        table.add_row(
            _t(r.task_id),
            _t(r.name),
            _t(r.action),
            _t(outcome, _OUTCOME_STYLE.get(outcome, "")),
            _t(status),
            _t(r.error or ""),
        )
    return table


def _side_effects(rows: Sequence[Row]) -> list[RenderableType]:
    if not rows:
        return []
    table = Table(title=f"side effects ({len(rows)}), not failures", title_justify="left")
    for name in ("task", "name", "action", "side effect"):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(_t(r.task_id), _t(r.name), _t(r.action), _t("; ".join(r.side_effects)))
    return [table]


def _count_table(counts: CountTable) -> RenderableType:
    table = Table(title=counts.title, title_justify="left")
    label, *numbers = counts.columns
    table.add_column(label)
    for name in numbers:
        table.add_column(name, justify="right", style=_OUTCOME_STYLE.get(name, ""))
    for name, values in counts.rows:
        table.add_row(_t(name), *(str(v) for v in values))
    return table


def _facts(facts: Iterable[tuple[str, str]]) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for label, value in facts:
        grid.add_row(_t(label), _t(value))
    return grid


def rich_runs(runs: Sequence[RunListing], width: int | None = None) -> str:
    """The list of runs, oldest first."""
    table = Table(title=f"runs ({len(runs)})", title_justify="left")
    for name in ("run id", "job", "tenant", "started", "state", "exit", "changes"):
        table.add_column(name, overflow="fold")
    for run in runs:
        table.add_row(
            _t(run.run_id),
            _t(run.job),
            _t(run.tenant),
            _t(run.started),
            _t(run.state, "bold red" if run.state in ("interrupted", "dead") else ""),
            _t("-" if run.exit_code is None else str(run.exit_code)),
            _t(run.counts_text()),
        )
    return _render([table], width)
