"""The target tenant's users a copy makes owners: status and display name of each, looked up
through the users filter (100 ids per request) before any write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bulkshare.client import ApiClient
from bulkshare.plan.owners import OwnerDirectory

__all__ = ["REFUSED_STATUSES", "UserInfo", "owner_problem", "resolve_users"]

#: user statuses that cannot take over a task (`provisioned` can: the user exists, unsigned-in)
REFUSED_STATUSES = ("deleted", "disabled", "invited")


@dataclass(frozen=True)
class UserInfo:
    """One user as the target's users API has it; status None: no such user."""

    status: str | None
    name: str = ""


async def resolve_users(client: ApiClient, ids: Iterable[str]) -> dict[str, UserInfo]:
    """Every id's status and name (an id the API does not return: status None), through the
    planner's OwnerDirectory: the same batched users-filter read, written once."""
    wanted = sorted({i for i in ids if i})
    directory = OwnerDirectory(client)
    directory.want(wanted)
    await directory.lookup_wanted()
    return {i: UserInfo(directory.status_of(i), directory.name_of(i) or "") for i in wanted}


def owner_problem(info: UserInfo | None) -> str | None:
    """Why a user cannot own a copied task, or None."""
    if info is None or info.status is None:
        return "not a user of the target tenant"
    return info.status if info.status in REFUSED_STATUSES else None
