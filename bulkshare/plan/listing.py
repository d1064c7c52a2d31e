"""The tenant's task list, page by page: offset pages a few at a time, checked for movement.

Offset pages can skip or repeat tasks if the tenant changes meanwhile; any sign of that sends
the planner back to the cursor walk, which cannot.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from bulkshare.client import ApiClient, RequestFailed
from bulkshare.vocab import TASKS_PATH

__all__ = ["PAGE_LIMIT", "ListingChanged", "offset_pages"]

PAGE_LIMIT = 100
#: offset pages requested at once after the first page (tier 1 has room; the server is busy)
PARALLEL_PAGES = 3


class ListingChanged(Exception):
    """totalCount moved while offset pages were read, or the server ignored `offset`."""


async def offset_pages(
    client: ApiClient, params: Mapping[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The first page, then the rest by offset, a few at a time, in order.

    Offset pages can skip or repeat tasks if the tenant changes meanwhile, so totalCount is
    checked on every page and any change sends the caller back to cursor paging.
    """
    first = await _list_page(client, params)
    total = first.get("totalCount")
    yield first["sharingTasks"]
    if not isinstance(total, int) or len(first["sharingTasks"]) >= total:
        return
    offsets = iter(range(PAGE_LIMIT, total, PAGE_LIMIT))
    window: deque[asyncio.Task[dict[str, Any]]] = deque()
    try:
        for offset in itertools.islice(offsets, PARALLEL_PAGES):
            window.append(asyncio.create_task(_list_page(client, {**params, "offset": offset})))
        while window:
            doc = await window.popleft()
            if doc.get("totalCount") != total:
                raise ListingChanged
            if _first_id(doc) == _first_id(first):
                raise ListingChanged  # a server that ignores offset: use the cursor
            following = next(offsets, None)
            if following is not None:
                page = _list_page(client, {**params, "offset": following})
                window.append(asyncio.create_task(page))
            yield doc["sharingTasks"]
    finally:
        for task in window:
            task.cancel()


def _first_id(doc: Mapping[str, Any]) -> Any:
    tasks = doc["sharingTasks"]
    return tasks[0].get("id") if tasks and isinstance(tasks[0], dict) else None


async def _list_page(client: ApiClient, params: Mapping[str, Any]) -> dict[str, Any]:
    doc = await client.get_json(TASKS_PATH, params)
    if not isinstance(doc, dict) or not isinstance(doc.get("sharingTasks", []), list):
        raise RequestFailed(200, "list answer without a 'sharingTasks' list", 1)
    doc.setdefault("sharingTasks", [])
    return doc
