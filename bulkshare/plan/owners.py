"""Owner statuses from the users API, fetched in batches of 100 and cached for the run."""

from __future__ import annotations

from collections.abc import Iterable

from bulkshare.client import ApiClient
from bulkshare.vocab import USERS_FILTER_PATH

__all__ = ["FILTER_BATCH", "OwnerDirectory"]

#: the users filter takes at most this many ids per request
FILTER_BATCH = 100


class OwnerDirectory:
    """Maps owner ids to user status; an id the users API does not return is None (404)."""

    __slots__ = ("_client", "_status", "_wanted", "lookups")

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._status: dict[str, str | None] = {}
        self._wanted: set[str] = set()
        #: filter requests sent
        self.lookups = 0

    def __repr__(self) -> str:
        return f"<OwnerDirectory known={len(self._status)} lookups={self.lookups}>"

    def status_of(self, owner_id: str) -> str | None:
        """The cached status; None for an owner the users API does not know."""
        return self._status.get(owner_id)

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
                    self._status[str(user["id"])] = str(user.get("status") or "active")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
