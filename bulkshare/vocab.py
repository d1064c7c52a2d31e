"""The service's vocabulary as the engine uses it: task types, status codes, error values,
user statuses, PATCH paths and the endpoints bulkshare calls.

Written once here for the engine; the simulator keeps its own copy (`bulkshare.sim.vocab`), and
a test holds both to the vendored OpenAPI spec, so neither can drift without a failing test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import quote

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
    "UnsafeId",
    "check_id",
    "field_for_path",
    "path_segment",
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


#: the longest id accepted in a path
MAX_ID_LENGTH = 255
#: an id as a path segment: 1 to 255 visible ASCII characters (0x21-0x7E). Real ids are
#: 24-hex ObjectIds or UUIDs; anything else in that range is accepted and percent-encoded.
#: No space, no control character, nothing outside ASCII (no bidi tricks in a request line).
_ID = re.compile(r"[\x21-\x7e]{1,255}").fullmatch
#: ids that need no encoding (the unreserved characters of RFC 3986; no leading dot, so never
#: a dot-segment)
_PLAIN_ID = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254}").fullmatch


class UnsafeId(ValueError):
    """An id from data that bulkshare will not put into a request path."""


def check_id(value: object, what: str = "task id") -> str:
    """`value` if it is an id bulkshare puts into a path; UnsafeId naming what is wrong."""
    if not isinstance(value, str):
        raise UnsafeId(f"{what} is not a string ({type(value).__name__})")
    if not value:
        raise UnsafeId(f"{what} is empty")
    if len(value) > MAX_ID_LENGTH:
        raise UnsafeId(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if not _ID(value):
        raise UnsafeId(f"{what} {ascii(value)[:80]} has a character outside visible ASCII")
    if value in (".", ".."):
        # a dot-segment: %2E is unreserved, so a server may decode it and climb a level
        raise UnsafeId(f"{what} {value!r} is a dot-segment")
    return value


def path_segment(value: object, what: str = "task id") -> str:
    """`value` checked and percent-encoded as one path segment (`/ ? # %` cannot escape it)."""
    if isinstance(value, str) and _PLAIN_ID(value):
        return value  # the common case, a hex or UUID id: nothing to encode
    return quote(check_id(value, what), safe="")


def task_path(task_id: str) -> str:
    """Path of one task, relative to /api; UnsafeId for an id that cannot be a path segment."""
    return f"{TASKS_PATH}/{path_segment(task_id)}"
