"""What a copy's target tenant already holds: its task ids and the provenance markers on them,
read in one walk of its list (tier 1), by the plan and once per run before its first create.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bulkshare.client import ApiClient
from bulkshare.copy.marker import is_marker
from bulkshare.plan.listing import PAGE_LIMIT, cursor_pages

__all__ = ["TargetIndex", "read_target"]


@dataclass
class TargetIndex:
    """What the target already holds: marker -> task id, and every task id (not DELETING)."""

    markers: dict[str, str] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)


async def read_target(client: ApiClient) -> TargetIndex:
    """One walk of the target's list (tier 1), keeping only ids and markers."""
    index = TargetIndex()
    params = {"limit": PAGE_LIMIT, "excludeDeleting": "true"}
    async for page in cursor_pages(client, params):
        for task in page.items:
            if not isinstance(task, dict) or not isinstance(task.get("id"), str):
                continue
            index.ids.add(task["id"])
            for tag in task.get("tags") or ():
                if is_marker(tag):
                    index.markers.setdefault(tag, task["id"])
    return index
