"""The tenant document (`{"sharingTasks": [...], "users": [...]}`): checked before it is loaded,
each problem one ValueError naming the item and field, then taken apart into a tenant's parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bulkshare.sim.ownership import OWNER_ACCESS_ERRORS
from bulkshare.sim.vocab import STATUS_CODES, TASK_ERRORS, TASK_TYPES, USER_STATUSES

__all__ = ["TenantParts", "parse_document", "read_document", "validate_document"]

Json = dict[str, Any]

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


def _one_of(allowed: tuple[str, ...]) -> _Check:
    # a frozenset for speed on big documents; only strings are looked up (lists are unhashable)
    known = frozenset(allowed)
    return lambda value: isinstance(value, str) and value in known


_is_task_type = _one_of(TASK_TYPES)
_is_status_code = _one_of(STATUS_CODES)
_is_task_error = _one_of(TASK_ERRORS)
_is_user_status = _one_of(USER_STATUSES)


def _is_task_errors(value: Any) -> bool:
    return _is_dict_list(value) and all(_is_task_error(e.get("value")) for e in value)


_TASK_FIELDS: Mapping[str, tuple[_Check, str]] = {
    "name": (_is_str, "a string"),
    "type": (_is_task_type, f"one of {sorted(TASK_TYPES)}"),
    "owner": (_is_str, "a string"),
    "ownerName": (_is_str, "a string"),
    "appId": (_is_str, "a string"),
    "tags": (_is_str_list, "a list of strings"),
    "statusCode": (_is_status_code, "a documented statusCode"),
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
_APP_FIELDS: Mapping[str, tuple[_Check, str]] = {
    "name": (_is_str, "a string"),
    "spaceId": (_is_str, "a string"),
}
_is_owner_error = _one_of(OWNER_ACCESS_ERRORS)
_USER_FIELDS: Mapping[str, tuple[_Check, str]] = {
    "name": (_is_str, "a string"),
    "email": (_is_str, "a string"),
    "status": (_is_user_status, f"one of {sorted(USER_STATUSES)}"),
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
    if "apps" in doc:
        if not isinstance(doc["apps"], list):
            raise ValueError("tenant document: 'apps' must be a list of {id, name, spaceId}")
        _check_items(doc["apps"], "apps", _APP_FIELDS, required=("id",))
    _check_executions(doc.get("executions", {}))
    _check_owner_errors(doc.get("ownerTaskErrors", {}))


def _check_owner_errors(errors: Any) -> None:
    if not isinstance(errors, dict):
        raise ValueError("tenant document: 'ownerTaskErrors' must be an object of user id -> list")
    for user_id, values in errors.items():
        if not isinstance(values, list) or not all(_is_owner_error(v) for v in values):
            raise ValueError(
                f"tenant document: ownerTaskErrors[{user_id!r}] must be a list of "
                f"{list(OWNER_ACCESS_ERRORS)}"
            )


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


# -- taking a checked document apart ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantParts:
    """What a tenant is made from: a checked document, its links dropped."""

    tenant_id: str
    tasks: list[Json]
    users: list[Json]
    executions: dict[str, list[Json]] | None = None
    settings: Json | None = None
    admin_id: str | None = None
    #: the tenant's apps; None: the apps its tasks name
    apps: list[Json] | None = None
    #: user id -> task errors a task gets when that user is made its owner
    owner_errors: dict[str, list[str]] | None = None


def parse_document(doc: Any) -> TenantParts:
    """The parts of the tenant `doc` describes; ValueError if it is malformed."""
    validate_document(doc)
    tasks = [_without_links(task) for task in doc["sharingTasks"]]
    users = [_without_links(user) for user in doc["users"]]
    tenant_id = doc.get("tenantId") or _guess_tenant_id(tasks, users)
    return TenantParts(
        tenant_id=str(tenant_id),
        tasks=tasks,
        users=users,
        executions=doc.get("executions"),
        settings=doc.get("settings"),
        admin_id=doc.get("adminUserId"),
        apps=doc.get("apps"),
        owner_errors=doc.get("ownerTaskErrors"),
    )


def read_document(path: Path | str) -> TenantParts:
    """The parts of the tenant document saved at `path`; ValueError naming the file."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    try:
        return parse_document(doc)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _without_links(item: Json) -> Json:
    # links are rendered per request from the host the client used
    return item if "links" not in item else {k: v for k, v in item.items() if k != "links"}


def _guess_tenant_id(tasks: list[Json], users: list[Json]) -> str:
    for item in (*tasks, *users):
        value = item.get("tenant") or item.get("tenantId")
        if isinstance(value, str) and value:
            return value
    return "simtenant000000000000000000000000"
