"""The tenant's task list, page by page, checked to be whole: each task once, as many as the
tenant's `totalCount` says, offset pages a few at a time with the cursor walk as the fallback.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bulkshare.client import ApiClient, Page, RequestFailed
from bulkshare.client.failures import PagingStopped
from bulkshare.client.paging import next_href, total_count
from bulkshare.errors import TenantError
from bulkshare.plan.seen import SeenIds
from bulkshare.vocab import TASKS_PATH

__all__ = [
    "PAGE_LIMIT",
    "Completeness",
    "Listing",
    "ListingChanged",
    "cursor_pages",
    "offset_pages",
]

log = structlog.get_logger("bulkshare.plan")

PAGE_LIMIT = 100
#: offset pages requested at once after the first page (tier 1 has room; the server is busy)
PARALLEL_PAGES = 3


class ListingChanged(Exception):
    """Offset pages cannot be trusted here: totalCount moved, the server ignored `offset`, a
    page came short, or the tenant gave no count to page by. The cursor walk is used instead."""


@dataclass(frozen=True)
class Completeness:
    """What a listing added up to, against what the tenant said it had."""

    listed: int  #: distinct task ids listed
    total: int | None  #: the last `totalCount` the tenant gave; None if it never gave one
    duplicates: int  #: later copies of ids already listed (skipped)

    @property
    def complete(self) -> bool:
        return self.total is not None and self.listed == self.total

    def to_json(self) -> dict[str, Any]:
        return {"listed": self.listed, "total_count": self.total, "duplicates": self.duplicates}


class Listing:
    """Task pages with each id once, counting what they add up to against `totalCount`."""

    __slots__ = ("_by_offset", "_pages", "_seen", "duplicates", "total")

    def __init__(self, pages: AsyncIterator[Page], *, by_offset: bool = False) -> None:
        self._pages = pages
        self._by_offset = by_offset  # offset pages that repeat fall back to the cursor
        self._seen = SeenIds()  # every id listed: a repeat is skipped and counted
        #: later copies of ids already listed
        self.duplicates = 0
        #: the last totalCount given
        self.total: int | None = None

    def __repr__(self) -> str:
        return f"<Listing listed={len(self._seen)} total={self.total} dup={self.duplicates}>"

    async def tasks(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's tasks, less any id an earlier page (or this one) already gave."""
        async for page in self._pages:
            if page.total is not None:
                self.total = page.total
            yield self._fresh(page.items)

    def _fresh(self, items: list[Any]) -> list[dict[str, Any]]:
        seen = self._seen
        fresh: list[dict[str, Any]] = []
        for task in items:
            task_id = task.get("id") if isinstance(task, dict) else None
            # an id that is not a string goes on: the planner refuses it
            if isinstance(task_id, str) and not seen.add(task_id):
                self.duplicates += 1
                continue
            fresh.append(task)
        if items and not fresh:
            if self._by_offset:
                raise ListingChanged  # the order moved under the offsets: the cursor cannot
            # a cursor walk handing back only tasks it gave already is going round in circles
            raise PagingStopped(f"a page of {len(items)} tasks repeats tasks already listed")
        return fresh

    def verdict(self) -> Completeness:
        """What was listed; call once the pages are exhausted."""
        return Completeness(len(self._seen), self.total, self.duplicates)


def check_complete(verdict: Completeness, tenant: str, accept_incomplete: bool) -> None:
    """Warn about duplicates; refuse (TenantError) a listing that does not add up, unless the
    user accepted that explicitly (then warn)."""
    if verdict.duplicates:
        log.warning("duplicate-tasks", tenant=tenant, duplicates=verdict.duplicates)
    if verdict.complete:
        return
    said = "gave no totalCount" if verdict.total is None else f"said {verdict.total:,}"
    if accept_incomplete:
        log.warning(
            "listing-incomplete-accepted", tenant=tenant, listed=verdict.listed, total=verdict.total
        )
        return
    raise TenantError(
        f"tenant {tenant}: the task listing is incomplete: {verdict.listed:,} distinct tasks "
        f"listed, the tenant {said}; nothing planned (plan again, or pass --accept-incomplete "
        "to plan what was listed)"
    )


async def cursor_pages(client: ApiClient, params: Mapping[str, Any]) -> AsyncIterator[Page]:
    """The list by its `links.next` cursor, one page after another (guarded by the client)."""
    async for page in client.pages(TASKS_PATH, params, "sharingTasks"):
        yield page


async def offset_pages(client: ApiClient, params: Mapping[str, Any]) -> AsyncIterator[Page]:
    """The first page, then the rest by offset, a few at a time, in order.

    Offset pages can skip or repeat tasks if the tenant changes meanwhile, so totalCount is
    checked on every page and any change (or a page shorter than a full one before the end)
    sends the caller back to cursor paging (ListingChanged).
    """
    first = await _list_page(client, params)
    total = total_count(first)
    tasks: list[Any] = first["sharingTasks"]
    if total is None:
        if next_href(first) is not None:
            raise ListingChanged  # nothing to count offsets by: the cursor knows the way
        yield Page(tasks, None)
        return
    yield Page(tasks, total)
    if len(tasks) >= total:
        return
    _check_ceiling(client, total)
    async for page in _rest_by_offset(client, params, first, total):
        yield page


def _check_ceiling(client: ApiClient, total: int) -> None:
    pages = math.ceil(total / PAGE_LIMIT)
    if pages > client.max_pages:
        raise PagingStopped(
            f"totalCount {total:,} needs {pages:,} pages, more than {client.max_pages:,} "
            "([defaults] max_pages); raise it if the tenant really is that large"
        )


async def _rest_by_offset(
    client: ApiClient, params: Mapping[str, Any], first: dict[str, Any], total: int
) -> AsyncIterator[Page]:
    offsets = iter(range(PAGE_LIMIT, total, PAGE_LIMIT))
    window: deque[tuple[int, asyncio.Task[dict[str, Any]]]] = deque()

    def request(offset: int) -> None:
        page = _list_page(client, {**params, "offset": offset})
        window.append((offset, asyncio.create_task(page)))

    try:
        for offset in itertools.islice(offsets, PARALLEL_PAGES):
            request(offset)
        while window:
            offset, pending = window.popleft()
            doc = await pending
            _check_offset_page(doc, first, total, offset)
            following = next(offsets, None)
            if following is not None:
                request(following)
            yield Page(doc["sharingTasks"], total)
    finally:
        for _, pending in window:
            pending.cancel()


def _check_offset_page(doc: dict[str, Any], first: dict[str, Any], total: int, offset: int) -> None:
    if total_count(doc) != total:
        raise ListingChanged
    if _first_id(doc) == _first_id(first):
        raise ListingChanged  # a server that ignores offset: use the cursor
    if len(doc["sharingTasks"]) < min(PAGE_LIMIT, total - offset):
        raise ListingChanged  # a short page before the end: the server pages by another size


def _first_id(doc: Mapping[str, Any]) -> Any:
    tasks = doc["sharingTasks"]
    return tasks[0].get("id") if tasks and isinstance(tasks[0], dict) else None


async def _list_page(client: ApiClient, params: Mapping[str, Any]) -> dict[str, Any]:
    doc = await client.get_json(TASKS_PATH, params)
    if not isinstance(doc, dict) or not isinstance(doc.get("sharingTasks", []), list):
        raise RequestFailed(200, "list answer without a 'sharingTasks' list", 1)
    doc.setdefault("sharingTasks", [])
    return doc
