"""Which tasks an export takes (every one, or those a job's `where` selects), read page by page
from the tenant straight into a writer: the tenant is never held in memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from bulkshare.client import ApiClient, RequestFailed
from bulkshare.export.fileformat import DROPPED_FIELDS
from bulkshare.export.writer import TaskSink
from bulkshare.job import Job, OwnerStatusOf, Where, common_list_params
from bulkshare.plan.listing import (
    PAGE_LIMIT,
    Listing,
    ListingChanged,
    check_complete,
    cursor_pages,
    offset_pages,
)
from bulkshare.plan.owners import OwnerDirectory, owners_known

__all__ = ["ExportStats", "Selection", "describe_where", "export_tasks"]

_Page = list[dict[str, Any]]


@dataclass(frozen=True)
class Selection:
    """The tasks any of `wheres` selects, judged at `now` (for `not_viewed_for_days`)."""

    wheres: tuple[Where, ...]
    now: datetime

    @classmethod
    def of_job(cls, job: Job, now: datetime) -> Selection:
        """Every operation's `where`: a task any operation would look at is exported."""
        return cls(tuple(op.where for op in job.operations), now)

    @property
    def needs_owner_status(self) -> bool:
        return any(w.needs_owner_status for w in self.wheres)

    def list_params(self) -> dict[str, list[str]]:
        """The filters every `where` shares, for the server to apply."""
        return common_list_params(self.wheres)

    def matches(self, task: Mapping[str, Any], owner_status_of: OwnerStatusOf | None) -> bool:
        return any(w.matches(task, self.now, owner_status_of) for w in self.wheres)

    def describe(self) -> str:
        """The criteria as the job file says them; `or` between operations."""
        parts = [describe_where(w) for w in self.wheres]
        return parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)


def describe_where(where: Where) -> str:
    """`key = value` for each filter set, `and` between them, values as in a job file."""
    parts = []
    for field in fields(where):
        value = getattr(where, field.name)
        if value is None or (field.name == "all" and not value):
            continue
        parts.append(f"{field.name} = {_value_text(value)}")
    return " and ".join(parts)


def _value_text(value: object) -> str:
    if isinstance(value, frozenset | tuple):
        return json.dumps(sorted(value) if isinstance(value, frozenset) else list(value))
    return json.dumps(value)


@dataclass
class ExportStats:
    """What an export read from the tenant."""

    scanned: int = 0  #: tasks listed
    restarts: int = 0  #: times the tenant moved under the offset pages and the export began again


async def export_tasks(
    client: ApiClient, sink: TaskSink, selection: Selection | None = None, tenant: str = "?"
) -> ExportStats:
    """Stream the tenant's tasks (those `selection` takes; None: every one) into `sink`.

    Offset pages are fastest; if the tenant changes under them, a restartable sink starts
    over on the cursor walk, which cannot skip or repeat a task. A sink that cannot restart
    (standard output) takes the cursor walk from the start.
    """
    params: dict[str, Any] = {"limit": PAGE_LIMIT}
    if selection is not None:
        params.update(selection.list_params())
    stats = ExportStats()
    if sink.restartable:
        listing = Listing(offset_pages(client, params), by_offset=True)
        try:
            await _drain(listing.tasks(), client, sink, selection, stats)
        except ListingChanged:
            sink.restart()
            stats.scanned, stats.restarts = 0, stats.restarts + 1
        else:
            # a backup that silently misses tasks is worse than none: refused like a plan
            check_complete(listing.verdict(), tenant, accept_incomplete=False)
            return stats
    listing = Listing(cursor_pages(client, params))
    await _drain(listing.tasks(), client, sink, selection, stats)
    check_complete(listing.verdict(), tenant, accept_incomplete=False)
    return stats


async def _drain(
    pages: AsyncIterator[_Page],
    client: ApiClient,
    sink: TaskSink,
    selection: Selection | None,
    stats: ExportStats,
) -> None:
    if selection is None or not selection.needs_owner_status:
        async for page in pages:
            _write_page(page, sink, selection, None, stats)
        return
    owners = OwnerDirectory(client)
    async for page in owners_known(pages, owners, _page_owners):
        _write_page(page, sink, selection, owners.status_of, stats)


def _write_page(
    page: _Page,
    sink: TaskSink,
    selection: Selection | None,
    status_of: OwnerStatusOf | None,
    stats: ExportStats,
) -> None:
    for task in page:
        if not isinstance(task, dict) or not isinstance(task.get("id"), str) or not task["id"]:
            raise RequestFailed(200, f"list item {stats.scanned + 1} is not a task with an id", 1)
        stats.scanned += 1
        for field in DROPPED_FIELDS:
            task.pop(field, None)  # the page is ours: dropped here, the writer need not copy
        if selection is None or selection.matches(task, status_of):
            sink.write(task)


def _page_owners(page: _Page) -> set[str]:
    return {str(t["owner"]) for t in page if isinstance(t, dict) and t.get("owner")}
