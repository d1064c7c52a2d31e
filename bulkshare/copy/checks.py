"""A create change read back from a saved plan, checked before it is sent: only the create
request's fields, quiet (disabled, never executed on creation) and marked with its source.

What a saved copy plan may create is thereby bounded: never a task that mails at once.
"""

from __future__ import annotations

from typing import Any

from bulkshare.copy.body import CREATE_FIELDS
from bulkshare.copy.marker import is_marker
from bulkshare.copy.step import DELETE_SOURCE
from bulkshare.vocab import TASKS_PATH

__all__ = ["CREATE_ACTIONS", "create_problem"]

#: the action labels a create change may carry
CREATE_ACTIONS = frozenset({("copy",), ("copy", DELETE_SOURCE), ("restore",)})


def create_problem(
    task_id: str, actions: tuple[str, ...], method: str, path: str, body: Any, after: Any
) -> str | None:
    """Why this is no create change bulkshare makes, or None."""
    if actions not in CREATE_ACTIONS:
        return f"actions {'+'.join(actions)} do not create"
    if method != "POST" or path != TASKS_PATH:
        return "a create is POST of the task list"
    if not isinstance(body, dict) or set(body) - CREATE_FIELDS:
        return "the create body holds fields the create request does not take"
    if body.get("enabled") is not False or body.get("executeOnCreation") is not False:
        return "a copy is created disabled and not executed on creation"
    tags = body.get("tags")
    markers = [t for t in tags if is_marker(t)] if isinstance(tags, list) else []
    if len(markers) != 1 or not str(markers[0]).endswith(f":{task_id}"):
        return "the create body carries no provenance marker of its source task"
    if not isinstance(after, dict) or not isinstance(after.get("owner"), str):
        return "a create names its target owner"
    if not isinstance(after.get("enabled"), bool):
        return "a create names the enabled it ends with"
    return None
