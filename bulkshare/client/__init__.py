"""Underneath every step: the async client for one tenant (auth, tier budgets, retries, paging,
the dry-run guard), and `open_tenant`, which starts or reaches a configured tenant.
"""

from bulkshare.client.auth import ApiKeyAuth, Auth, OAuthClientCredentials, auth_for
from bulkshare.client.budget import TierBudgets, WindowBudget
from bulkshare.client.failures import AnswerRefused, PagingStopped, RequestRefused
from bulkshare.client.http import ApiClient, Page, RequestFailed, Response
from bulkshare.client.ledger import MemoryLedger, SqliteLedger
from bulkshare.client.tenant import TenantSession, describe_tenant, open_tenant
from bulkshare.client.tiers import Tier, tier_for

__all__ = [
    "AnswerRefused",
    "ApiClient",
    "ApiKeyAuth",
    "Auth",
    "MemoryLedger",
    "OAuthClientCredentials",
    "Page",
    "PagingStopped",
    "RequestFailed",
    "RequestRefused",
    "Response",
    "SqliteLedger",
    "TenantSession",
    "Tier",
    "TierBudgets",
    "WindowBudget",
    "auth_for",
    "describe_tenant",
    "open_tenant",
    "tier_for",
]
