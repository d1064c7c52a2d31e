"""The service's rate-limit tiers and which tier each request is charged to (`x-qlik-tier`)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Tier", "tier_for"]


class Tier(StrEnum):
    """The service's rate-limit tiers, each counted separately."""

    TIER1 = "tier1"  # every GET
    TIER2 = "tier2"  # every write, and POST /oauth/token
    USERS_FILTER = "users-filter"  # POST /v1/users/actions/filter, its own 200/min tier


def tier_for(method: str, path: str) -> Tier:
    """The tier the service charges for `method path` (path relative to /api), per x-qlik-tier."""
    method = method.upper()
    if method == "GET" or method == "HEAD":
        return Tier.TIER1
    if method == "POST" and path == "/v1/users/actions/filter":  # that path exactly
        return Tier.USERS_FILTER
    return Tier.TIER2
