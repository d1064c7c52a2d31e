"""Copy jobs in reports: source → target per task (the created id in runs), owners by name,
the id map a plan applies (and every id no map names), and a run's `id-map.csv`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bulkshare.plan import Plan
from bulkshare.report.model import Row, TextTable

__all__ = ["copy_facts", "copy_tables", "id_map_table"]

#: what becomes of a task with an id no map names, per `unmapped` rule
_UNMAPPED_FATE = {
    "keep": "kept as it is in the copy",
    "skip": "its task is not copied",
    "refuse": "refused (the plan would not be made)",
}


def _info(plan: Plan | None) -> Mapping[str, Any] | None:
    return None if plan is None else plan.copy


def copy_facts(plan: Plan | None) -> tuple[tuple[str, str], ...]:
    """A copy's source, target and rules, in words; () for a plan that copies nothing."""
    info = _info(plan)
    if info is None or plan is None:
        return ()
    not_copied = sum(len(v) for v in (info.get("not_copied") or {}).values())
    return (
        ("copy source", str(info.get("source", "-"))),
        ("copy target", f"tenant {info.get('target', plan.tenant)} ({plan.tenant_url or '-'})"),
        ("source tasks deleted after their copy", "yes" if info.get("delete_source") else "no"),
        ("ids no map names", f"unmapped = {info.get('unmapped_rule', '-')}"),
        ("already in the target (skipped)", str(len(info.get("present") or {}))),
        ("not copied", str(not_copied)),
        ("schedule starts re-based", str(info.get("rebased", 0))),
    )


def copy_tables(plan: Plan | None, rows: Sequence[Row], run: bool) -> tuple[TextTable, ...]:
    """Source → target per task, the id map used, unmapped ids and the tasks not copied."""
    info = _info(plan)
    if info is None or plan is None:
        return ()
    creates = [r for r in rows if r.method == "POST" and r.new_owner_id]
    tables = [
        _source_to_target(creates, plan, run),
        _used_map(creates),
        _unmapped(info),
        _not_copied(info),
    ]
    return tuple(t for t in tables if t is not None)


def _source_to_target(creates: Sequence[Row], plan: Plan, run: bool) -> TextTable | None:
    if not creates:
        return None
    target = f"tenant {plan.tenant}"
    columns: tuple[str, ...] = ("source task", "name", "source owner", "target owner", "target")
    cells: list[tuple[str, ...]] = [
        (r.task_id, r.name, r.owner, r.new_owner, target) for r in creates
    ]
    if run:
        columns += ("created id", "outcome")
        cells = [
            (*c, r.target_id or "-", str(r.outcome)) for c, r in zip(cells, creates, strict=True)
        ]
    return TextTable("Copies: source → target", columns, tuple(cells))


def _used_map(creates: Sequence[Row]) -> TextTable | None:
    """Which ids the copy turns into what: apps and owners, as the planned creates hold them."""
    pairs: Counter[tuple[str, str, str]] = Counter()
    for r in creates:
        pairs[("app", r.app_id, _target_app(r))] += 1
        pairs[("owner", _owner_label(r.owner, r.owner_id), _target_owner(r))] += 1
    if not pairs:
        return None
    cells = tuple(
        (kind, old, new, _how(old, new), str(n)) for (kind, old, new), n in sorted(pairs.items())
    )
    return TextTable(
        "Id map: what each source id becomes",
        ("kind", "source", "target", "how", "tasks"),
        cells,
        numeric=1,
    )


def _how(old: str, new: str) -> str:
    if new == "-":
        return "none: no template names an app"
    return "same id" if old == new else "mapped"


def _owner_label(name: str, owner_id: str) -> str:
    return owner_id if not name or name == owner_id else f"{name} ({owner_id})"


def _target_app(row: Row) -> str:
    return str(row.after.get("appId") or "-")


def _target_owner(row: Row) -> str:
    return _owner_label(row.new_owner, row.new_owner_id)


def _unmapped(info: Mapping[str, Any]) -> TextTable | None:
    unmapped: Mapping[str, Iterable[str]] = info.get("unmapped") or {}
    fate = _UNMAPPED_FATE.get(str(info.get("unmapped_rule")), "-")
    cells = tuple((kind, str(i), fate) for kind, ids in unmapped.items() for i in ids)
    if not cells:
        return None
    return TextTable("Ids no map names", ("kind", "id", "what happens"), cells)


def _not_copied(info: Mapping[str, Any]) -> TextTable | None:
    left: Mapping[str, Sequence[str]] = info.get("not_copied") or {}
    cells = tuple((reason, ", ".join(ids), str(len(ids))) for reason, ids in left.items())
    if not cells:
        return None
    return TextTable("Not copied", ("reason", "source tasks", "count"), cells, numeric=1)


def id_map_table(id_map: Sequence[tuple[str, str]], rows: Sequence[Row]) -> TextTable | None:
    """A run's id-map.csv: each source task and the task created for it."""
    if not id_map:
        return None
    names = {r.task_id: r.name for r in rows}
    cells = tuple((source, target, names.get(source, "")) for source, target in id_map)
    return TextTable(
        "Id map (id-map.csv): source task → created task",
        ("source id", "created id", "name"),
        cells,
        note="The run directory's id-map.csv, as the copy wrote it.",
    )
