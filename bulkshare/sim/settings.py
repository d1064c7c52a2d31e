"""The tenant's sharing settings: the document of a fresh tenant, and the checks of the
PATCH and PUT requests that change its flags.
"""

from __future__ import annotations

from typing import Any

from bulkshare.sim.errors import SimError
from bulkshare.sim.vocab import (
    SETTINGS_PATCH_OPS,
    SETTINGS_PATHS,
    LicenseStatus,
    PatchOp,
    SubscriptionStatus,
)

__all__ = ["default_settings", "parse_settings_patch", "parse_settings_put"]

Json = dict[str, Any]


def default_settings(tenant_id: str) -> Json:
    """The sharing settings of a fresh tenant."""
    return {
        "tenantId": tenant_id,
        "maxRecipients": 100,
        "enable-sharing": True,
        "enable-report-subscription": True,
        "enable-reporting-template-subscription": True,
        "reportSubscriptionStatus": SubscriptionStatus.NONE.value,
        "reportingTemplateSubscriptionStatus": SubscriptionStatus.NONE.value,
        "maxSubscriptionRecipients": 100,
        "reporting-service-license-status": LicenseStatus.ENABLED.value,
        "reportSubscriptionStatusChangeTime": "2024-01-01T00:00:00Z",
    }


def parse_settings_patch(body: Any) -> dict[str, bool]:
    """The flags a settings PATCH body sets; 400 SimError naming the first bad operation."""
    if not isinstance(body, list) or not body:
        raise SimError(400, "PATCH body must be a non-empty JSON array of {op, path, value}")
    return dict(_flag(i, item) for i, item in enumerate(body))


def _flag(index: int, item: Any) -> tuple[str, bool]:
    if not isinstance(item, dict) or set(item) - {"op", "path", "value"}:
        raise SimError(400, f"operation {index}: expected an object with op, path, value")
    if item.get("op") not in SETTINGS_PATCH_OPS:
        raise SimError(400, f'operation {index}: op must be "{PatchOp.REPLACE}"')
    if item.get("path") not in SETTINGS_PATHS:
        raise SimError(400, f"operation {index}: path must be one of {list(SETTINGS_PATHS)}")
    if not isinstance(item.get("value"), bool):
        raise SimError(400, f"operation {index}: value must be a boolean")
    return str(item["path"])[1:], bool(item["value"])


def parse_settings_put(body: Any) -> dict[str, bool]:
    """The flags a settings PUT body sets (only enable-sharing); 400 SimError otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("enable-sharing"), bool):
        raise SimError(400, "enable-sharing (boolean) is required")
    return {"enable-sharing": body["enable-sharing"]}
