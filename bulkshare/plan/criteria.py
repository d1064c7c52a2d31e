"""A job's criteria in words: what each operation does to which tasks, as a plan records it
so that an approver reads the selection beside the changes it produced.
"""

from __future__ import annotations

from collections.abc import Iterable

from bulkshare.job.model import ActionKind, Job, Operation
from bulkshare.job.where import Where

__all__ = ["job_criteria", "where_text"]

#: ids or values named per filter before "and N more"
_SHOWN = 5


def job_criteria(job: Job) -> tuple[str, ...]:
    """One line per operation (a copy job: one line for its source selection)."""
    if job.copy is not None:
        source = job.copy.source_tenant or f"export file {job.copy.source_file}"
        return (f"copy from {source}: {where_text(job.copy.where)}",)
    return tuple(f"{i + 1}. {_operation_text(op)}" for i, op in enumerate(job.operations))


def _operation_text(op: Operation) -> str:
    return f"{op.action.value}{_action_detail(op)} where {where_text(op.where)}"


def _action_detail(op: Operation) -> str:
    if op.action is ActionKind.REASSIGN_OWNER:
        mapped = len(op.mapping or {})
        target = f" to {op.to}" if op.to else f" of {mapped} mapped owners, each to its new owner"
        extras = [w for w, on in (("enable", op.enable), ("keep_enabled", op.keep_enabled)) if on]
        return target + (f" ({', '.join(extras)})" if extras else "")
    if op.action in (ActionKind.TAG, ActionKind.UNTAG):
        return f" {_values(op.tags)}"
    if op.action is ActionKind.PATCH:
        return " " + ", ".join(f"{p.op} {p.path}" for p in op.ops)
    return ""


def where_text(where: Where) -> str:
    """The filter in words: its conditions joined by `and`; `every task` for `all`."""
    parts = [text for text in _conditions(where) if text]
    if where.all and not parts:
        return "every task"
    return " and ".join(parts) if parts else "nothing (no filter)"


def _conditions(w: Where) -> list[str]:
    age = w.not_viewed_for_days
    return [
        _one_of("id", w.ids),
        _one_of("owner", w.owner),
        _one_of("owner name", w.owner_name),
        _one_of("app", w.app_id),
        _one_of("type", w.type),
        _one_of("status", w.status),
        _any_of("task errors include", w.task_errors),
        "" if w.enabled is None else f"enabled is {str(w.enabled).lower()}",
        _any_of("tags include", w.tags),
        "" if w.name is None else f"name matches {_values(w.name, sort=False)}",
        "" if age is None else f"not viewed for {age} days or more",
        _one_of("owner status", w.owner_status),
    ]


def _one_of(label: str, values: frozenset[str] | None) -> str:
    if values is None:
        return ""
    return f"{label} {'is' if len(values) == 1 else 'is one of'} {_values(values)}"


def _any_of(label: str, values: frozenset[str] | None) -> str:
    if values is None:
        return ""
    return f"{label} {'' if len(values) == 1 else 'any of '}{_values(values)}"


def _values(values: Iterable[str], *, sort: bool = True) -> str:
    items = sorted(values) if sort else list(values)
    shown = ", ".join(f'"{v}"' for v in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")
