"""A run's trouble, grouped for reading: failures by error text (51 identical failures are one
line with their count and ids), and each conflict with the field that moved, planned vs found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulkshare.report.model import Row, TextTable, short_value

__all__ = ["conflict_table", "failure_groups_table", "moved_fields"]

#: task ids listed per group before "+N more"; each cut to this many characters
_IDS_SHOWN, _ID_CHARS = 5, 12
_VALUE_CHARS = 40


def moved_fields(row: Row) -> list[tuple[str, Any, Any, Any]]:
    """A conflict's written fields that moved elsewhere: (field, planned before, planned
    after, found). Empty when the run recorded no found values (an older record)."""
    found = row.found
    if found is None:
        return []
    return [
        (name, row.before.get(name), wanted, found.get(name))
        for name, wanted in row.after.items()
        if found.get(name) not in (wanted, row.before.get(name))
    ]


def _group_key(row: Row) -> tuple[str, str]:
    """(outcome, what went wrong): the error text, or for a conflict the fields that moved."""
    if row.outcome == "conflict":
        moved = [name for name, *_ in moved_fields(row)]
        return "conflict", f"{', '.join(moved)} changed since planning" if moved else (
            row.error or "changed since planning"
        )
    if row.outcome == "absent":
        return "absent", "the task was gone"
    return str(row.outcome), row.error or "(no error text)"


def _ids(task_ids: Sequence[str]) -> str:
    shown = [i if len(i) <= _ID_CHARS else i[: _ID_CHARS - 1] + "…" for i in task_ids[:_IDS_SHOWN]]
    more = len(task_ids) - _IDS_SHOWN
    return ", ".join(shown) + (f" +{more} more" if more > 0 else "")


def failure_groups_table(problems: Sequence[Row]) -> TextTable | None:
    """Failures, conflicts and gone tasks grouped by what went wrong, biggest group first."""
    if not problems:
        return None
    groups: dict[tuple[str, str], list[str]] = {}
    for row in problems:
        groups.setdefault(_group_key(row), []).append(row.task_id)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    cells = tuple((out, err, _ids(ids), str(len(ids))) for (out, err), ids in ordered)
    return TextTable("Failures by error", ("outcome", "error", "tasks", "count"), cells, numeric=1)


def _value(name: str, value: Any, names: Mapping[str, str]) -> str:
    if name == "owner" and isinstance(value, str) and value in names:
        return f"{names[value]} ({short_value(value, _ID_CHARS)})"
    return short_value(value, _VALUE_CHARS)


def conflict_table(problems: Sequence[Row]) -> TextTable | None:
    """Each conflict's moved field: what the plan saw and wrote, and what the run found."""
    rows: list[tuple[str, ...]] = []
    for row in problems:
        if row.outcome != "conflict":
            continue
        moved = moved_fields(row) or [("?", None, None, row.error)]
        for name, before, after, found in moved:
            shown = [_value(name, v, row.names) for v in (before, after, found)]
            rows.append((row.task_id, row.name, name, *shown))
    if not rows:
        return None
    return TextTable(
        "Conflicts: the task changed since planning, left untouched",
        ("task", "name", "field", "planned before", "planned after", "found"),
        tuple(rows),
    )
