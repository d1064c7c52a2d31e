"""Owner statuses and names from the users API, fetched in batches of 100 and cached for the run."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from bulkshare.client import ApiClient
from bulkshare.vocab import USERS_FILTER_PATH

__all__ = ["FILTER_BATCH", "OWNER_WAIT_TASKS", "OwnerDirectory", "owners_known"]

#: the users filter takes at most this many ids per request
FILTER_BATCH = 100
#: tasks that may wait for their owners' statuses while a users-filter batch fills up
OWNER_WAIT_TASKS = 5_000

_Page = list[dict[str, Any]]


class OwnerDirectory:
    """Maps user ids to status and display name; an id the users API does not return has
    status None (404)."""

    __slots__ = ("_client", "_names", "_status", "_wanted", "lookups")

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._status: dict[str, str | None] = {}
        self._names: dict[str, str] = {}
        self._wanted: set[str] = set()
        #: filter requests sent
        self.lookups = 0

    def __repr__(self) -> str:
        return f"<OwnerDirectory known={len(self._status)} lookups={self.lookups}>"

    def status_of(self, owner_id: str) -> str | None:
        """The cached status; None for an owner the users API does not know."""
        return self._status.get(owner_id)

    def name_of(self, user_id: str) -> str | None:
        """The cached display name; None for a user without one, or not known."""
        return self._names.get(user_id)

    def knows(self, owner_ids: Iterable[str]) -> bool:
        """True when every id has been looked up."""
        return all(i in self._status for i in owner_ids if i)

    def want(self, owner_ids: Iterable[str]) -> None:
        """Queue ids not seen yet for the next lookups."""
        self._wanted.update(i for i in owner_ids if i and i not in self._status)

    async def lookup_wanted(self, *, full_batches_only: bool = False) -> None:
        """Look the queued ids up, 100 per request; leave a last part-batch queued if asked."""
        while len(self._wanted) >= FILTER_BATCH or (self._wanted and not full_batches_only):
            batch = sorted(self._wanted)[:FILTER_BATCH]
            self._wanted.difference_update(batch)
            await self._lookup(batch)

    async def _lookup(self, ids: list[str]) -> None:
        query = " or ".join(f'id eq "{_quote(i)}"' for i in ids)
        for i in ids:
            self._status[i] = None
        self.lookups += 1
        # a next page is the same filter POST again: the client refuses a link to any other
        # endpoint, so a crafted `next` can never turn this read into a write
        pages = self._client.pages(
            USERS_FILTER_PATH,
            {"limit": FILTER_BATCH},
            "data",
            method="POST",
            json={"filter": query},
            require_key=True,
        )
        async for page in pages:
            for user in page.items:
                if isinstance(user, dict) and user.get("id") in self._status:
                    self._remember(str(user["id"]), user)

    def _remember(self, user_id: str, user: dict[str, Any]) -> None:
        self._status[user_id] = str(user.get("status") or "active")
        name = user.get("name")
        if isinstance(name, str) and name:  # tenant text: kept as data, escaped where shown
            self._names[user_id] = name[:256]


async def owners_known(
    pages: AsyncIterator[_Page],
    owners: OwnerDirectory,
    ids_of: Callable[[_Page], set[str]],
    wait_tasks: int = OWNER_WAIT_TASKS,
) -> AsyncIterator[_Page]:
    """Each page, in order, once `owners` knows the statuses of the ids `ids_of` names in it.

    Pages wait so that each users-filter request carries a full batch of 100 owners; at most
    `wait_tasks` tasks wait at a time, so memory stays bounded.
    """
    waiting: deque[tuple[_Page, set[str]]] = deque()
    waiting_tasks = 0
    async for page in pages:
        ids = ids_of(page)
        owners.want(ids)
        waiting.append((page, ids))
        waiting_tasks += len(page)
        await owners.lookup_wanted(full_batches_only=waiting_tasks < wait_tasks)
        while waiting and owners.knows(waiting[0][1]):
            ready, _ = waiting.popleft()
            waiting_tasks -= len(ready)
            yield ready
    await owners.lookup_wanted()
    for ready, _ in waiting:
        yield ready


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
