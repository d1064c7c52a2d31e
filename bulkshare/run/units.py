"""How a run hands its changes to workers: grouped by task, so one task's requests stay in
order; and which error of a failed worker group is the run's own.
"""

from __future__ import annotations

from bulkshare.errors import BulkshareError
from bulkshare.plan import Change

__all__ = ["first_error", "units_of"]


def units_of(changes: list[Change], done: frozenset[int]) -> list[list[int]]:
    """Indices of changes not yet done, grouped by task so one task's requests stay in order."""
    by_task: dict[str, list[int]] = {}
    for idx, change in enumerate(changes):
        if idx not in done:
            by_task.setdefault(change.task_id, []).append(idx)
    return list(by_task.values())


def first_error(group: BaseExceptionGroup[BaseException]) -> BulkshareError | None:
    for exc in group.exceptions:
        found = first_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, BulkshareError):
            return found
    return None
