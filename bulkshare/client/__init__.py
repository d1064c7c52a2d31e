"""The async client for one tenant: auth, tier budgets, retries, paging, dry-run guard."""

from bulkshare.client.auth import ApiKeyAuth, Auth, OAuthClientCredentials, auth_for
from bulkshare.client.http import ApiClient, RequestFailed, Response
from bulkshare.client.limits import Tier, TierBudgets, WindowBudget, tier_for

__all__ = [
    "ApiClient",
    "ApiKeyAuth",
    "Auth",
    "OAuthClientCredentials",
    "RequestFailed",
    "Response",
    "Tier",
    "TierBudgets",
    "WindowBudget",
    "auth_for",
    "tier_for",
]
