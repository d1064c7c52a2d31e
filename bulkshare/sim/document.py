"""Checks a tenant document (`{"sharingTasks": [...], "users": [...]}`) before it is loaded.

Each problem is reported as one ValueError naming the offending item and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "TASK_ERRORS",
    "TASK_STATUSES",
    "TASK_TYPES",
    "USER_STATUSES",
    "validate_document",
]

TASK_TYPES = frozenset({"chart-monitoring", "chart-sharing", "sheet-sharing", "template-sharing"})
USER_STATUSES = frozenset({"active", "invited", "disabled", "deleted", "provisioned"})
TASK_STATUSES = frozenset(
    {
        "CHART_NOT_FOUND", "APP_NOT_FOUND", "STORY_NOT_FOUND", "SHEET_NOT_FOUND",
        "ENGINE_POD_NOT_AVAILABLE", "APP_FORBIDDEN", "CHART_TYPE_NOT_ALLOWED", "FAILED",
        "DELETING", "IN_PROGRESS", "VALID", "MAX_FAILURES_REACHED", "BOOKMARK_NOT_FOUND",
        "CANCELLING", "CANCELLED", "REPORTING_CONSUMPTION_EXCEEDED",
        "REPORTING_CAPABILITY_NOT_FOUND", "REPORTING_DAILY_QUOTA_EXCEEDED",
    }
)  # fmt: skip
TASK_ERRORS = frozenset(
    {
        "OWNER_DISABLED", "OWNER_ACCESS", "OWNER_LICENSE", "APP_DELETED", "NO_RECIPIENTS",
        "PARTIAL_ACCESS", "ORPHAN", "PARTIAL_SENT", "FATAL_SENT_ERROR", "SECTION_ACCESS_MODIFIED",
        "INVALID_DISTRIBUTION_LIST", "MAX_DL_RECIPIENTS_LIMIT_REACHED", "TEMPLATE_NOT_FOUND",
        "REPORTING_BOOKMARK_NOT_FOUND", "DATA_CONNECTION_NOT_FOUND",
        "INVALID_SHAREPOINT_DIRECTORY", "GENERIC_FILE_UPLOAD_ERROR",
        "DISABLED_DUE_TO_OWNERSHIP_CHANGE", "REPORTING_CONSUMPTION_EXCEEDED",
        "REPORTING_CAPABILITY_NOT_FOUND", "EXECUTION_TIME_OUT", "OWNER_INSUFFICIENT_PERMISSIONS",
        "MAX_UNIQUE_REPORTS_LIMIT_REACHED", "MISSING_DISTRIBUTION_LIST",
        "SECTION_ACCESS_NOT_SUPPORTED", "REPORTING_DAILY_QUOTA_EXCEEDED", "EMAIL_DELIVERY_FAILURE",
    }
)  # fmt: skip

_Check = Callable[[Any], bool]


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _is_dict_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _is_task_errors(value: Any) -> bool:
    return _is_dict_list(value) and all(e.get("value") in TASK_ERRORS for e in value)


_TASK_FIELDS: Mapping[str, tuple[_Check, str]] = {
    "name": (_is_str, "a string"),
    "type": (TASK_TYPES.__contains__, f"one of {sorted(TASK_TYPES)}"),
    "owner": (_is_str, "a string"),
    "ownerName": (_is_str, "a string"),
    "appId": (_is_str, "a string"),
    "tags": (_is_str_list, "a list of strings"),
    "statusCode": (TASK_STATUSES.__contains__, "a documented statusCode"),
    "taskErrors": (_is_task_errors, "a list of {value: <documented task error>}"),
    "enabled": (_is_bool, "a boolean"),
    "enabledByUser": (_is_bool, "a boolean"),
    "enabledBySystem": (_is_bool, "a boolean"),
    "templates": (_is_dict_list, "a list of objects"),
    "recipients": (_is_dict, "an object"),
    "scheduleOptions": (_is_dict, "an object"),
    "transportChannels": (_is_str_list, "a list of strings"),
    "failedExecutionsCount": (_is_int, "an integer"),
}
_USER_FIELDS: Mapping[str, tuple[_Check, str]] = {
    "name": (_is_str, "a string"),
    "email": (_is_str, "a string"),
    "status": (USER_STATUSES.__contains__, f"one of {sorted(USER_STATUSES)}"),
    "tenantId": (_is_str, "a string"),
}


def validate_document(doc: Any) -> None:
    """Raise ValueError with a precise message unless `doc` is a loadable tenant document."""
    if not isinstance(doc, dict):
        raise ValueError("tenant document: expected a JSON object with sharingTasks and users")
    for key in ("sharingTasks", "users"):
        if not isinstance(doc.get(key), list):
            raise ValueError(f"tenant document: {key!r} must be a list")
    _check_items(doc["sharingTasks"], "sharingTasks", _TASK_FIELDS, required=("id", "name", "type"))
    _check_items(doc["users"], "users", _USER_FIELDS, required=("id", "name"))
    if "settings" in doc and not isinstance(doc["settings"], dict):
        raise ValueError("tenant document: 'settings' must be an object")
    _check_executions(doc.get("executions", {}))


def _check_executions(executions: Any) -> None:
    if not isinstance(executions, dict):
        raise ValueError("tenant document: 'executions' must be an object of task id -> list")
    for task_id, runs in executions.items():
        ok = isinstance(runs, list) and all(
            isinstance(r, dict) and _is_str(r.get("id")) for r in runs
        )
        if not ok:
            raise ValueError(
                f"tenant document: executions[{task_id!r}] must be a list of {{id, ...}}"
            )


def _check_items(
    items: list[Any],
    where: str,
    fields: Mapping[str, tuple[_Check, str]],
    required: tuple[str, ...],
) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = f"tenant document: {where}[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{label}: expected an object")
        for key in required:
            if key not in item:
                raise ValueError(f"{label}: missing required field {key!r}")
        if not isinstance(item["id"], str) or not item["id"]:
            raise ValueError(f"{label}: 'id' must be a non-empty string")
        if item["id"] in seen:
            raise ValueError(f"{label}: duplicate id {item['id']!r}")
        seen.add(item["id"])
        _check_fields(item, label, fields)


def _check_fields(
    item: dict[str, Any], label: str, fields: Mapping[str, tuple[_Check, str]]
) -> None:
    for key, (check, expected) in fields.items():
        if key in item and not check(item[key]):
            raise ValueError(f"{label} (id {item['id']!r}): {key!r} must be {expected}")
