"""The service's vocabulary as the engine uses it: task types, status codes, error values,
user statuses, PATCH paths and the endpoints bulkshare calls.

Written once here for the engine; the simulator keeps its own copy (`bulkshare.sim.vocab`), and
a test holds both to the vendored OpenAPI spec, so neither can drift without a failing test.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ME_PATH",
    "OWNER_STATUSES",
    "PATCH_OPS",
    "PATCH_PATHS",
    "PATH_FIELDS",
    "STATUS_CODES",
    "TASKS_PATH",
    "TASK_ERRORS",
    "TASK_TYPES",
    "TRANSPORT_CHANNELS",
    "USERS_FILTER_PATH",
    "field_for_path",
    "task_path",
]

#: the sharing-tasks collection, relative to /api
TASKS_PATH = "/v1/sharing-tasks"
#: the users filter (a POST that only reads), relative to /api
USERS_FILTER_PATH = "/v1/users/actions/filter"
#: the caller's own user, relative to /api
ME_PATH = "/v1/users/me"

TASK_TYPES = ("chart-monitoring", "chart-sharing", "sheet-sharing", "template-sharing")
STATUS_CODES = (
    "CHART_NOT_FOUND", "APP_NOT_FOUND", "STORY_NOT_FOUND", "SHEET_NOT_FOUND",
    "ENGINE_POD_NOT_AVAILABLE", "APP_FORBIDDEN", "CHART_TYPE_NOT_ALLOWED", "FAILED", "DELETING",
    "IN_PROGRESS", "VALID", "MAX_FAILURES_REACHED", "BOOKMARK_NOT_FOUND", "CANCELLING",
    "CANCELLED", "REPORTING_CONSUMPTION_EXCEEDED", "REPORTING_CAPABILITY_NOT_FOUND",
    "REPORTING_DAILY_QUOTA_EXCEEDED",
)  # fmt: skip
TASK_ERRORS = (
    "OWNER_DISABLED", "OWNER_ACCESS", "OWNER_LICENSE", "APP_DELETED", "NO_RECIPIENTS",
    "PARTIAL_ACCESS", "ORPHAN", "PARTIAL_SENT", "FATAL_SENT_ERROR", "SECTION_ACCESS_MODIFIED",
    "INVALID_DISTRIBUTION_LIST", "MAX_DL_RECIPIENTS_LIMIT_REACHED", "TEMPLATE_NOT_FOUND",
    "REPORTING_BOOKMARK_NOT_FOUND", "DATA_CONNECTION_NOT_FOUND", "INVALID_SHAREPOINT_DIRECTORY",
    "GENERIC_FILE_UPLOAD_ERROR", "DISABLED_DUE_TO_OWNERSHIP_CHANGE",
    "REPORTING_CONSUMPTION_EXCEEDED", "REPORTING_CAPABILITY_NOT_FOUND", "EXECUTION_TIME_OUT",
    "OWNER_INSUFFICIENT_PERMISSIONS", "MAX_UNIQUE_REPORTS_LIMIT_REACHED",
    "MISSING_DISTRIBUTION_LIST", "SECTION_ACCESS_NOT_SUPPORTED", "REPORTING_DAILY_QUOTA_EXCEEDED",
    "EMAIL_DELIVERY_FAILURE",
)  # fmt: skip
#: a user's `status` in the users API
OWNER_STATUSES = ("active", "invited", "disabled", "deleted", "provisioned")
PATCH_OPS = ("replace", "remove")
TRANSPORT_CHANNELS = ("email", "sharepoint")

#: PATCH path -> the task field it writes
PATH_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "/name": "name",
        "/tags": "tags",
        "/ownerId": "owner",
        "/enabled": "enabled",
        "/description": "description",
        "/scheduleOptions": "scheduleOptions",
        "/templates": "templates",
        "/recipients": "recipients",
        "/recipient": "recipient",
        "/sharePointFolder": "sharePointFolder",
        "/dataConnectionID": "dataConnectionID",
        "/transportChannels": "transportChannels",
        "/bookmarkId": "bookmarkId",
    }
)
PATCH_PATHS = tuple(PATH_FIELDS)


def field_for_path(path: str) -> str:
    """The task field a PATCH path writes."""
    return PATH_FIELDS[path]


def task_path(task_id: str) -> str:
    """Path of one task, relative to /api."""
    return f"{TASKS_PATH}/{task_id}"
