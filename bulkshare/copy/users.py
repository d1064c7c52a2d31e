"""The target tenant's users a copy makes owners: status and display name of each, looked up
through the users filter (100 ids per request) before any write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bulkshare.client import ApiClient
from bulkshare.plan.owners import FILTER_BATCH
from bulkshare.vocab import USERS_FILTER_PATH

__all__ = ["REFUSED_STATUSES", "UserInfo", "owner_problem", "resolve_users"]

#: user statuses that cannot take over a task (`provisioned` can: the user exists, unsigned-in)
REFUSED_STATUSES = ("deleted", "disabled", "invited")


@dataclass(frozen=True)
class UserInfo:
    """One user as the target's users API has it; status None: no such user."""

    status: str | None
    name: str = ""


async def resolve_users(client: ApiClient, ids: Iterable[str]) -> dict[str, UserInfo]:
    """Every id's status and name (an id the API does not return: status None)."""
    wanted = sorted({i for i in ids if i})
    found: dict[str, UserInfo] = {i: UserInfo(None) for i in wanted}
    for start in range(0, len(wanted), FILTER_BATCH):
        batch = wanted[start : start + FILTER_BATCH]
        query = " or ".join(f'id eq "{_quote(i)}"' for i in batch)
        pages = client.pages(
            USERS_FILTER_PATH,
            {"limit": FILTER_BATCH},
            "data",
            method="POST",
            json={"filter": query},
            require_key=True,
        )
        async for page in pages:
            for user in page.items:
                if isinstance(user, dict) and user.get("id") in found:
                    name = user.get("name")
                    found[str(user["id"])] = UserInfo(
                        str(user.get("status") or "active"), name if isinstance(name, str) else ""
                    )
    return found


def owner_problem(info: UserInfo | None) -> str | None:
    """Why a user cannot own a copied task, or None."""
    if info is None or info.status is None:
        return "not a user of the target tenant"
    return info.status if info.status in REFUSED_STATUSES else None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
