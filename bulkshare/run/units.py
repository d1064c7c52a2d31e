"""How a run hands its changes to workers: grouped by task, so one task's requests stay in
order (a failed worker group is made one line by `errors.failure_of`).
"""

from __future__ import annotations

from bulkshare.plan import Change

__all__ = ["units_of"]


def units_of(changes: list[Change], done: frozenset[int]) -> list[list[int]]:
    """Indices of changes not yet done, grouped by task so one task's requests stay in order."""
    by_task: dict[str, list[int]] = {}
    for idx, change in enumerate(changes):
        if idx not in done:
            by_task.setdefault(change.task_id, []).append(idx)
    return list(by_task.values())
