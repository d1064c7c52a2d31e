"""POST of a sharing task: the create request checked field by field and turned into a task.

The stored task has the persisted shape; recipients are converted to their persisted form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bulkshare.sim import checks
from bulkshare.sim.errors import SimError
from bulkshare.sim.vocab import SUB_TYPES, TASK_TYPES, CleanupStrategy, StatusCode, values

__all__ = ["build_task", "check_create_body"]

Json = dict[str, Any]


def _is_user_ref(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("value"), str)


def _create_recipients(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    users = value.get("userIds", [])
    if not isinstance(users, list) or not all(_is_user_ref(u) for u in users):
        return "userIds must be a list of {value: user id}"
    if checks.string_list(value.get("emailAddresses", [])):
        return "emailAddresses must be a list of strings"
    return None


def _trigger(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    return (
        "recurrence must be a list of strings"
        if checks.string_list(value.get("recurrence"))
        else None
    )


_REQUIRED: Mapping[str, checks.Check] = {
    "name": checks.non_empty_string,
    "type": checks.one_of(*sorted(TASK_TYPES)),
    "state": checks.json_object,
    "templates": checks.templates,
}
_OPTIONAL: Mapping[str, checks.Check] = {
    "tags": checks.string_list,
    "appName": checks.non_empty_string,
    "enabled": checks.boolean,
    "message": checks.max_string(280),
    "spaceId": checks.max_string(255),
    "subType": checks.one_of(*SUB_TYPES),
    "trigger": _trigger,
    "startTime": checks.string,
    "expiration": checks.string,
    "recipients": _create_recipients,
    "description": checks.max_string(255),
    "emailContent": checks.json_object,
    "cleanupStrategy": checks.one_of(*values(CleanupStrategy)),
    "retentionPolicy": checks.json_object,
    "scheduleOptions": checks.schedule,
    "dataConnectionID": checks.string,
    "sharePointFolder": checks.string,
    "executeOnCreation": checks.boolean,
    "transportChannels": checks.channels,
    "distributionListId": checks.string,
}


def check_create_body(body: Any) -> Json:
    """Return the create request if valid, else raise a 400 SimError naming the field."""
    if not isinstance(body, dict):
        raise SimError(400, "request body must be a JSON object")
    for key, check in _REQUIRED.items():
        if key not in body:
            raise SimError(400, f"{key} is required")
        _check(key, body[key], check)
    for key, check in _OPTIONAL.items():
        if key in body:
            _check(key, body[key], check)
    return body


def _check(key: str, value: Any, check: checks.Check) -> None:
    problem = check(value)
    if problem:
        raise SimError(400, f"{key} {problem}")


def build_task(
    body: Any,
    *,
    task_id: str,
    owner: Json,
    tenant_id: str,
    now: str,
    app_name: Callable[[str], str],
) -> Json:
    """A new task in the persisted shape from a create request (checked here)."""
    request = check_create_body(body)
    task: Json = {key: request[key] for key in _OPTIONAL if key in request and key != "recipients"}
    task |= _identity(request, task_id, tenant_id, app_name)
    task |= _stamps(owner, now)
    task |= _initial_state(request)
    # the service applies a cleanup strategy at creation; it is not part of the stored task
    task.pop("cleanupStrategy", None)
    return task


def _identity(request: Json, task_id: str, tenant_id: str, app_name: Callable[[str], str]) -> Json:
    app_id = _app_id(request["templates"])
    return {
        "id": task_id,
        "name": request["name"],
        "type": request["type"],
        "state": request["state"],
        "templates": request["templates"],
        "tags": request.get("tags", []),
        "tenant": tenant_id,
        "appId": app_id,
        "appName": request.get("appName") or app_name(app_id),
    }


def _stamps(owner: Json, now: str) -> Json:
    return {
        "owner": owner["id"],
        "ownerName": owner.get("name", ""),
        "createdBy": owner["id"],
        "updatedBy": owner["id"],
        "dateCreated": now,
        "lastUpdated": now,
    }


def _initial_state(request: Json) -> Json:
    enabled = request.get("enabled", True)
    return {
        "recipients": _persisted_recipients(request.get("recipients", {})),
        "statusCode": StatusCode.VALID.value,
        "taskErrors": [],
        "enabled": enabled,
        "enabledByUser": enabled,
        "enabledBySystem": True,
        "executeOnCreation": request.get("executeOnCreation", True),
        "failedExecutionsCount": 0,
    }


def _app_id(templates: list[Json]) -> str:
    for template in templates:
        for key in ("chartData", "sheetData", "storyData"):
            data = template.get(key)
            if isinstance(data, dict) and isinstance(data.get("appId"), str):
                return str(data["appId"])
        sheets = template.get("multiSheetData")
        if isinstance(sheets, list) and sheets and isinstance(sheets[0], dict):
            return str(sheets[0].get("appId", ""))
    return ""


def _persisted_recipients(recipients: Json) -> Json:
    user_ids = [
        {
            "value": u["value"],
            "groups": u.get("groups", ["addedIndividually"]),
            "subscribed": u.get("subscribed", True),
            "enabledByUser": u.get("enabled", True),
            "enabledBySystem": True,
            "taskRecipientErrors": [],
        }
        for u in recipients.get("userIds", [])
    ]
    emails = [{"value": e, "enabled": True} for e in recipients.get("emailAddresses", [])]
    return {
        "userIds": user_ids,
        "groupIds": [],
        "emailAddresses": emails,
        "DLUsers": [],
        "DLGroups": [],
    }
