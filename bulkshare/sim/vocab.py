"""The service's closed sets of values (task types, status codes, errors, PATCH paths...) as
the simulator speaks them, written once here and independently of the engine's `bulkshare.vocab`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = [
    "EXECUTION_FILTER_STATUSES", "EXECUTION_SORTS", "LATEST_STATUSES",
    "LIST_ROLES", "PATCH_OPS", "PATCH_PATHS", "SETTINGS_PATCH_OPS",
    "SETTINGS_PATHS", "STATUS_CODES", "SUB_TYPES", "SYSTEM_ROLES", "TASK_ERRORS", "TASK_SORTS",
    "TASK_TYPES", "TEMPLATE_TYPES", "TRANSPORT_CHANNELS", "USERS_FILTER_SORTS", "USER_SORTS",
    "USER_STATUSES", "CleanupStrategy", "ExecutionSort", "ExecutionStatus", "FileTimeStamp",
    "LicenseStatus", "LinkType", "ListRole", "PatchOp", "PatchPath", "ResizeType", "Role",
    "SettingsPath", "StatusCode", "SubType", "SubscriptionStatus", "TaskError", "TaskSort",
    "TaskType", "TemplateSubType", "TemplateType", "TransportChannel", "UserSort", "UserStatus",
    "values",
]  # fmt: skip

# Stored documents hold the plain strings (`.value`), never the members, so that a tenant is
# pure JSON data; the tuples below are those strings, in the order the service lists them.


@enum.unique
class TaskType(enum.StrEnum):
    """A sharing task's `type`."""

    CHART_MONITORING = "chart-monitoring"
    CHART_SHARING = "chart-sharing"
    SHEET_SHARING = "sheet-sharing"
    TEMPLATE_SHARING = "template-sharing"


@enum.unique
class StatusCode(enum.StrEnum):
    """A sharing task's `statusCode`."""

    CHART_NOT_FOUND = "CHART_NOT_FOUND"
    APP_NOT_FOUND = "APP_NOT_FOUND"
    STORY_NOT_FOUND = "STORY_NOT_FOUND"
    SHEET_NOT_FOUND = "SHEET_NOT_FOUND"
    ENGINE_POD_NOT_AVAILABLE = "ENGINE_POD_NOT_AVAILABLE"
    APP_FORBIDDEN = "APP_FORBIDDEN"
    CHART_TYPE_NOT_ALLOWED = "CHART_TYPE_NOT_ALLOWED"
    FAILED = "FAILED"
    DELETING = "DELETING"
    IN_PROGRESS = "IN_PROGRESS"
    VALID = "VALID"
    MAX_FAILURES_REACHED = "MAX_FAILURES_REACHED"
    BOOKMARK_NOT_FOUND = "BOOKMARK_NOT_FOUND"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    REPORTING_CONSUMPTION_EXCEEDED = "REPORTING_CONSUMPTION_EXCEEDED"
    REPORTING_CAPABILITY_NOT_FOUND = "REPORTING_CAPABILITY_NOT_FOUND"
    REPORTING_DAILY_QUOTA_EXCEEDED = "REPORTING_DAILY_QUOTA_EXCEEDED"


@enum.unique
class TaskError(enum.StrEnum):
    """The `value` of one of a sharing task's `taskErrors`."""

    OWNER_DISABLED = "OWNER_DISABLED"
    OWNER_ACCESS = "OWNER_ACCESS"
    OWNER_LICENSE = "OWNER_LICENSE"
    APP_DELETED = "APP_DELETED"
    NO_RECIPIENTS = "NO_RECIPIENTS"
    PARTIAL_ACCESS = "PARTIAL_ACCESS"
    ORPHAN = "ORPHAN"
    PARTIAL_SENT = "PARTIAL_SENT"
    FATAL_SENT_ERROR = "FATAL_SENT_ERROR"
    SECTION_ACCESS_MODIFIED = "SECTION_ACCESS_MODIFIED"
    INVALID_DISTRIBUTION_LIST = "INVALID_DISTRIBUTION_LIST"
    MAX_DL_RECIPIENTS_LIMIT_REACHED = "MAX_DL_RECIPIENTS_LIMIT_REACHED"
    TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"
    REPORTING_BOOKMARK_NOT_FOUND = "REPORTING_BOOKMARK_NOT_FOUND"
    DATA_CONNECTION_NOT_FOUND = "DATA_CONNECTION_NOT_FOUND"
    INVALID_SHAREPOINT_DIRECTORY = "INVALID_SHAREPOINT_DIRECTORY"
    GENERIC_FILE_UPLOAD_ERROR = "GENERIC_FILE_UPLOAD_ERROR"
    DISABLED_DUE_TO_OWNERSHIP_CHANGE = "DISABLED_DUE_TO_OWNERSHIP_CHANGE"
    REPORTING_CONSUMPTION_EXCEEDED = "REPORTING_CONSUMPTION_EXCEEDED"
    REPORTING_CAPABILITY_NOT_FOUND = "REPORTING_CAPABILITY_NOT_FOUND"
    EXECUTION_TIME_OUT = "EXECUTION_TIME_OUT"
    OWNER_INSUFFICIENT_PERMISSIONS = "OWNER_INSUFFICIENT_PERMISSIONS"
    MAX_UNIQUE_REPORTS_LIMIT_REACHED = "MAX_UNIQUE_REPORTS_LIMIT_REACHED"
    MISSING_DISTRIBUTION_LIST = "MISSING_DISTRIBUTION_LIST"
    SECTION_ACCESS_NOT_SUPPORTED = "SECTION_ACCESS_NOT_SUPPORTED"
    REPORTING_DAILY_QUOTA_EXCEEDED = "REPORTING_DAILY_QUOTA_EXCEEDED"
    EMAIL_DELIVERY_FAILURE = "EMAIL_DELIVERY_FAILURE"


@enum.unique
class UserStatus(enum.StrEnum):
    """A user's `status` in the users API."""

    ACTIVE = "active"
    INVITED = "invited"
    DISABLED = "disabled"
    DELETED = "deleted"
    PROVISIONED = "provisioned"


@enum.unique
class Role(enum.StrEnum):
    """A system role of a user (the users API's `roles`; `assignedRoles[].name`)."""

    TENANT_ADMIN = "TenantAdmin"
    DEVELOPER = "Developer"
    ANALYTICS_ADMIN = "AnalyticsAdmin"
    DATA_ADMIN = "DataAdmin"
    DATA_SPACE_CREATOR = "DataSpaceCreator"
    MANAGED_SPACE_CREATOR = "ManagedSpaceCreator"
    SHARED_SPACE_CREATOR = "SharedSpaceCreator"


@enum.unique
class PatchOp(enum.StrEnum):
    """The `op` of a PATCH operation."""

    REPLACE = "replace"
    REMOVE = "remove"


@enum.unique
class PatchPath(enum.StrEnum):
    """The `path` of a sharing task PATCH operation."""

    NAME = "/name"
    TAGS = "/tags"
    OWNER_ID = "/ownerId"
    ENABLED = "/enabled"
    DESCRIPTION = "/description"
    SCHEDULE_OPTIONS = "/scheduleOptions"
    TEMPLATES = "/templates"
    RECIPIENTS = "/recipients"
    RECIPIENT = "/recipient"
    SHARE_POINT_FOLDER = "/sharePointFolder"
    DATA_CONNECTION_ID = "/dataConnectionID"
    TRANSPORT_CHANNELS = "/transportChannels"
    BOOKMARK_ID = "/bookmarkId"


@enum.unique
class SettingsPath(enum.StrEnum):
    """The `path` of a settings PATCH operation (the flag named after the slash)."""

    # the reference's two; the 2025 spec's /enable-reporting-template-subscription is gone

    ENABLE_SHARING = "/enable-sharing"
    ENABLE_REPORT_SUBSCRIPTION = "/enable-report-subscription"


@enum.unique
class TransportChannel(enum.StrEnum):
    """One of a task's `transportChannels`."""

    EMAIL = "email"
    SHAREPOINT = "sharepoint"


@enum.unique
class TemplateType(enum.StrEnum):
    """A template's `type`."""

    FILE = "file"
    CHART = "chart"
    STORY = "story"
    SHEET = "sheet"
    MULTI_SHEET = "multi-sheet"
    EXCEL = "excel"
    PIXEL_PERFECT = "pixel-perfect"
    HTML = "html"
    POWERPOINT = "powerpoint"
    WORD = "word"


@enum.unique
class TemplateSubType(enum.StrEnum):
    """A template's `subType`: the kind of file it renders."""

    IMAGE = "image"
    SNAPSHOT = "snapshot"
    PDF = "pdf"
    PPTX = "pptx"
    XLSX = "xlsx"
    QPXP = "qpxp"


@enum.unique
class SubType(enum.StrEnum):
    """A task's deprecated mashup `subType`."""

    PDF = "pdf"
    PPTX = "pptx"
    XLSX = "xlsx"
    HTML = "html"
    DOCX = "docx"


@enum.unique
class CleanupStrategy(enum.StrEnum):
    """A create request's `cleanupStrategy` (of old bookmarks)."""

    NO_CLEANUP = "noCleanup"
    REMOVE_OLD_BOOKMARKS = "removeOldBookmarks"


@enum.unique
class ResizeType(enum.StrEnum):
    """A multi-sheet template's `resizeType`."""

    NONE = "none"
    FIT = "fit"
    AUTOFIT = "autofit"


@enum.unique
class FileTimeStamp(enum.StrEnum):
    """A template's `fileTimeStamp`: the date format appended to a file name."""

    DATE = "yyyy-MM-dd"
    DATE_TIME = "yyyy-MM-dd_HH-mm"
    COMPACT_DATE = "yyyyMMdd"
    COMPACT_DATE_TIME = "yyyyMMdd_HH-mm"


@enum.unique
class ExecutionStatus(enum.StrEnum):
    """An execution's `status`."""

    INITIALIZED = "initialized"
    IN_PROGRESS = "in-progress"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INVALID = "invalid"
    PRESUCCESSFUL = "presuccessful"
    CANCELLING = "cancelling"


@enum.unique
class ExecutionSort(enum.StrEnum):
    """A `sort` of the executions list (with an optional +/- sign)."""

    START_TIME = "starttime"


@enum.unique
class TaskSort(enum.StrEnum):
    """A `sort` of the sharing tasks list (with an optional +/- sign)."""

    DATE_CREATED = "datecreated"
    NAME = "name"
    OWNER_NAME = "ownername"
    ENABLED = "enabled"
    STATUS = "status"
    TYPE = "type"
    SENT = "sent"
    SCHEDULED = "scheduled"
    APP_NAME = "appname"
    APP_ID = "appid"


@enum.unique
class ListRole(enum.StrEnum):
    """A `role` filter of the sharing tasks list."""

    OWNER = "owner"
    RECIPIENT = "recipient"


@enum.unique
class UserSort(enum.StrEnum):
    """A `sort` of the users list (with an optional +/- sign)."""

    NAME = "name"
    ID = "id"
    LEGACY_ID = "_id"
    TENANT_ID = "tenantId"
    CLIENT_ID = "clientId"
    STATUS = "status"
    SUBJECT = "subject"
    EMAIL = "email"
    INVITE_EXPIRY = "inviteExpiry"
    CREATED_AT = "createdAt"


@enum.unique
class LinkType(enum.StrEnum):
    """The `type` of a page link."""

    PREV = "prev"
    NEXT = "next"


@enum.unique
class SubscriptionStatus(enum.StrEnum):
    """A settings document's report subscription status."""

    NONE = "none"
    ENABLING = "enabling"
    DISABLING = "disabling"


@enum.unique
class LicenseStatus(enum.StrEnum):
    """A settings document's `reporting-service-license-status`."""

    ENABLED = "enabled"
    DISABLED = "disabled"


def values(members: Iterable[enum.StrEnum]) -> tuple[str, ...]:
    """The plain strings of `members`, in their order (what documents and messages hold)."""
    return tuple(member.value for member in members)


TASK_TYPES = values(TaskType)
STATUS_CODES = values(StatusCode)
TASK_ERRORS = values(TaskError)
USER_STATUSES = values(UserStatus)
PATCH_OPS = values(PatchOp)
PATCH_PATHS = values(PatchPath)
#: a settings PATCH only replaces
SETTINGS_PATCH_OPS = values([PatchOp.REPLACE])
SETTINGS_PATHS = values(SettingsPath)
TRANSPORT_CHANNELS = values(TransportChannel)
TEMPLATE_TYPES = values(TemplateType)
SUB_TYPES = values(SubType)
#: the `status` filter of the executions list
EXECUTION_FILTER_STATUSES = values([ExecutionStatus.SUCCESSFUL, ExecutionStatus.FAILED])
#: the `status` of `executions/latest` (and of its files)
LATEST_STATUSES = values(
    [ExecutionStatus.SUCCESSFUL, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED]
)
EXECUTION_SORTS = values(ExecutionSort)
TASK_SORTS = values(TaskSort)
LIST_ROLES = values(ListRole)
USER_SORTS = values(UserSort)
SYSTEM_ROLES = values(Role)
#: the users filter action sorts by name only
USERS_FILTER_SORTS = values([UserSort.NAME])
