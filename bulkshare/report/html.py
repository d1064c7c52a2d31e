"""A plan or run as one self-contained HTML page: inline CSS and SVG charts, no script, no URL.

Every piece of task data is escaped, and the page's own policy forbids scripts and fetches, so
it opens offline, prints, and survives being forwarded by email.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from html import escape

from bulkshare.report.html_style import CSS, PLAN_COLUMNS, POLICY, RUN_COLUMNS
from bulkshare.report.model import (
    CountTable,
    RejectedRow,
    ReportDoc,
    Row,
    TextTable,
    matched_text,
)

__all__ = ["html_report"]

#: bars per chart before the rest is summed as "other"
CHART_TOP = 10
_LABEL_W, _BAR_W, _VALUE_W, _ROW_H = 210, 260, 60, 22
_LABEL_CHARS = 28


def html_report(doc: ReportDoc) -> str:
    """The whole page."""
    body = "\n".join(
        [
            f"<h1>{escape(doc.title)}</h1>",
            _banner(doc),
            _summary(doc),
            *(_text_table(t) for t in doc.tables),
            _problems(doc) if doc.has_outcomes else "",
            _side_effects(doc) if doc.has_outcomes else "",
            _charts(doc.rows),
            _changes(doc),
            _rejected(doc.rejected),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(doc.title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _banner(doc: ReportDoc) -> str:
    if not doc.simulated:
        return ""
    return (
        '<p class="banner" id="simulated">SIMULATED: this tenant is the built-in simulator; '
        "nothing here touches a real tenant.</p>"
    )


def _text_table(table: TextTable) -> str:
    """A report table in its own section; a chartable one has its bar chart beside it."""
    note = f'<p class="note">{_text(table.note)}</p>' if table.note else ""
    numeric = len(table.columns) - table.numeric
    cells = (
        _tr(_td(c, "num" if i >= numeric else "") for i, c in enumerate(row)) for row in table.rows
    )
    html = (
        f'<div class="scroll"><table class="report-table">{_head(table.columns)}<tbody>'
        f"{''.join(cells)}</tbody></table></div>"
    )
    if table.chart:
        html = f'<div class="with-chart">{html}{_table_chart(table)}</div>'
    return (
        f'<section class="table" id="{_anchor(table.title)}">\n<h2>{escape(table.title)}</h2>'
        f"\n{note}{html}\n</section>"
    )


def _table_chart(table: TextTable) -> str:
    counts: Counter[str] = Counter()
    for row in table.rows:
        counts[row[0] or "(none)"] += int(row[-1])
    return _chart(table.title, counts)


def _anchor(title: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in title.lower()).split()
    return "-".join(words[:4]) or "table"


def _summary(doc: ReportDoc) -> str:
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{_text(v)}</dd>" for k, v in doc.facts)
    counts = "".join(_count_table(t) for t in doc.counts)
    return (
        f'<section id="summary" class="summary">\n<h2>Summary</h2>\n'
        f'<dl class="facts">{facts}</dl>\n<div class="counts">{counts}</div>\n</section>'
    )


def _count_table(table: CountTable) -> str:
    label, *numbers = table.columns
    head = f"<th>{escape(label)}</th>" + "".join(
        f'<th class="num">{escape(n)}</th>' for n in numbers
    )
    rows = "".join(
        f"<tr><th>{escape(name)}</th>"
        + "".join(f'<td class="num">{n}</td>' for n in values)
        + "</tr>"
        for name, values in table.rows
    )
    return (
        f'<table class="count-table"><caption>{escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _problems(doc: ReportDoc) -> str:
    problems = doc.problems
    if not problems:
        return '<section id="problems">\n<h2>Failures and conflicts</h2>\n<p>None.</p>\n</section>'
    columns = ("task", "name", "action", "outcome", "HTTP", "error")
    return (
        f'<section id="problems">\n<h2>Failures and conflicts ({len(problems)})</h2>\n'
        f'<div class="scroll"><table class="problems">{_head(columns)}<tbody>'
        + "".join(_problem_row(r) for r in problems)
        + "</tbody></table></div>\n</section>"
    )


def _side_effects(doc: ReportDoc) -> str:
    rows = doc.side_effects
    head = f"Side effects ({len(rows)})" if rows else "Side effects"
    if not rows:
        return f'<section id="side-effects">\n<h2>{head}</h2>\n<p>None.</p>\n</section>'
    cells = (
        _tr([_td(r.task_id, "id"), _td(r.name), _td(r.action), _td("; ".join(r.side_effects))])
        for r in rows
    )
    return (
        f'<section id="side-effects">\n<h2>{head}</h2>\n<p>Not failures: the task as read '
        "back after the write, where it differs from what the plan expected.</p>\n"
        f'<div class="scroll"><table class="side-effects">'
        f"{_head(('task', 'name', 'action', 'side effect'))}"
        f"<tbody>{''.join(cells)}</tbody></table></div>\n</section>"
    )


def _problem_row(row: Row) -> str:
    return _tr(
        [
            _td(row.task_id, "id"),
            _td(row.name),
            _td(row.action),
            _td(str(row.outcome), f"outcome-{row.outcome}"),
            _td(_status(row), "num"),
            _td(row.error or "", "error"),
        ]
    )


def _charts(rows: Sequence[Row]) -> str:
    if not rows:
        return ""
    charts = [
        _chart("Changes by owner", Counter(r.owner or "(none)" for r in rows)),
        _chart("Changes by app", Counter(r.app or "(none)" for r in rows)),
        _chart("Changes by type", Counter(r.type or "(none)" for r in rows)),
    ]
    return (
        '<section id="charts">\n<h2>Where the changes are</h2>\n<div class="charts">'
        + "".join(charts)
        + "</div>\n</section>"
    )


def _top(counts: Counter[str], limit: int) -> list[tuple[str, int, bool]]:
    """The `limit` biggest entries, then the rest summed as one `other` entry."""
    head = counts.most_common(limit)
    rest = counts.total() - sum(n for _, n in head)
    items = [(label, n, False) for label, n in head]
    return [*items, (f"other ({len(counts) - len(head)})", rest, True)] if rest else items


def _chart(title: str, counts: Counter[str]) -> str:
    items = _top(counts, CHART_TOP)
    peak = max(n for _, n, _ in items)
    width, height = _LABEL_W + _BAR_W + _VALUE_W, len(items) * _ROW_H
    bars = "".join(_bar(i, label, n, peak, other) for i, (label, n, other) in enumerate(items))
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">{bars}</svg></figure>'
    )


def _bar(i: int, label: str, n: int, peak: int, other: bool) -> str:
    y = i * _ROW_H
    w = max(1, round(_BAR_W * n / peak))
    shown = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
    cls = "bar other" if other else "bar"
    return (
        f'<text x="{_LABEL_W - 8}" y="{y + 15}" text-anchor="end">{escape(shown)}</text>'
        f'<rect class="{cls}" x="{_LABEL_W}" y="{y + 3}" width="{w}" height="16">'
        f"<title>{escape(label)}: {n}</title></rect>"
        f'<text class="value" x="{_LABEL_W + w + 6}" y="{y + 15}">{n}</text>'
    )


def _rejected(rejected: Sequence[RejectedRow]) -> str:
    if not rejected:
        return ""
    rows = "\n".join(
        _tr([_td(r.task_id, "id"), _td(r.name), _td(r.owner), _td(r.reason, "error")])
        for r in rejected
    )
    return (
        f'<section id="rejected">\n<h2>Rejected tasks ({len(rejected)})</h2>\n'
        "<p>Values of the wrong type from the tenant: these tasks are not changed.</p>\n"
        f'<div class="scroll"><table class="rejected">'
        f"{_head(('task', 'name', 'owner', 'reason'))}<tbody>\n"
        f"{rows}\n</tbody></table></div>\n</section>"
    )


def _changes(doc: ReportDoc) -> str:
    if not doc.rows:
        return '<section id="changes">\n<h2>Changes</h2>\n<p>No changes.</p>\n</section>'
    columns = RUN_COLUMNS if doc.has_outcomes else PLAN_COLUMNS
    cells: Callable[[Row], list[str]] = _run_cells if doc.has_outcomes else _plan_cells
    return (
        f'<section id="changes">\n<h2>Changes ({len(doc.rows)})</h2>\n'
        f'<div class="scroll cards {"run" if doc.has_outcomes else "plan"}">'
        f'<table class="changes">{_head(columns)}<tbody>\n'
        + "\n".join(_tr(cells(r)) for r in doc.rows)
        + "\n</tbody></table></div>\n</section>"
    )


def _base_cells(row: Row) -> list[str]:
    return [
        _td(str(row.index + 1), "num"),
        _td(row.task_id, "id"),
        _td(row.name),
        _td(row.owner),
        _td(row.app),
        _td(row.type),
    ]


def _plan_cells(row: Row) -> list[str]:
    matched = _td(matched_text(row.matched), "matched")
    return [*_base_cells(row), matched, _td(row.action), _td(row.change_text(), "change")]


def _run_cells(row: Row) -> list[str]:
    return [
        *_base_cells(row),
        _td(row.action),
        _td(row.change_text(), "change"),
        _td(str(row.outcome), f"outcome-{row.outcome}"),
        _td(_status(row), "num"),
        _td(row.error or "", "error"),
    ]


def _status(row: Row) -> str:
    return "" if row.http_status is None else str(row.http_status)


def _head(columns: Iterable[str]) -> str:
    return "<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr></thead>"


def _tr(cells: Iterable[str]) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def _td(text: str, cls: str = "") -> str:
    attr = f' class="{escape(cls)}"' if cls else ""
    return f"<td{attr}>{_text(text)}</td>"


def _text(text: str) -> str:
    """Escaped text whose URLs (the tenant's, or any in tenant data) no mail client or viewer
    turns into links: `<wbr>` splits each scheme from its `://`, and shows and copies as one."""
    return escape(text).replace("://", "<wbr>://")
