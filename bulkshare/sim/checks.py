"""Value checks shared by the create and PATCH handlers.

Each check returns None when the value is acceptable, else the reason it is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bulkshare.sim.vocab import TEMPLATE_TYPES, TRANSPORT_CHANNELS, TemplateType

__all__ = [
    "Check",
    "boolean",
    "channels",
    "json_object",
    "max_string",
    "non_empty_string",
    "one_of",
    "recipients",
    "schedule",
    "string",
    "string_list",
    "templates",
]

Check = Callable[[Any], str | None]

_RECIPIENT_KEYS = frozenset(
    {"userIds", "groupIds", "emailAddresses", "DLUsers", "DLGroups", "netRecipientCount"}
)
_CHANNELS_TEXT = " / ".join(f'"{c}"' for c in TRANSPORT_CHANNELS)
_OFFSET = re.compile(r"T.*(Z|[+-]\d\d(:?\d\d)?)$")
_STRING, _INTEGER = "a string", "an integer"
#: template type -> (the member it must carry, that member's required fields and their kinds);
#: sharing-tasks.md: type "chart" validates chartData (appId, sheetId, objectId, widthPx,
#: heightPx), type "story" validates storyData; a multi-sheet template is its multiSheetData
_TEMPLATE_DATA: Mapping[str, tuple[str, Mapping[str, str]]] = {
    TemplateType.CHART: (
        "chartData",
        {
            "appId": _STRING,
            "sheetId": _STRING,
            "objectId": _STRING,
            "widthPx": _INTEGER,
            "heightPx": _INTEGER,
        },
    ),
    TemplateType.STORY: ("storyData", {"appId": _STRING, "storyId": _STRING}),
}
_SHEET_FIELDS: Mapping[str, str] = {"appId": _STRING, "sheetId": _STRING}


def string(value: Any) -> str | None:
    """Any string."""
    return None if isinstance(value, str) else "must be a string"


def non_empty_string(value: Any) -> str | None:
    """A string with at least one character."""
    return None if isinstance(value, str) and value else "must be a non-empty string"


def max_string(limit: int) -> Check:
    """A string of at most `limit` characters."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        return None if len(value) <= limit else f"must be at most {limit} characters"

    return check


def one_of(*allowed: str) -> Check:
    """One of the `allowed` strings."""

    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {list(allowed)}"

    return check


def boolean(value: Any) -> str | None:
    """true or false, nothing else."""
    return None if isinstance(value, bool) else "must be a boolean"


def string_list(value: Any) -> str | None:
    """A list of strings."""
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "must be a list of strings"


def json_object(value: Any) -> str | None:
    """Any JSON object."""
    return None if isinstance(value, dict) else "must be an object"


def channels(value: Any) -> str | None:
    """The transport channels: a list of "email" / "sharepoint"."""
    ok = isinstance(value, list) and all(v in TRANSPORT_CHANNELS for v in value)
    return None if ok else f"must be a list of {_CHANNELS_TEXT}"


def templates(value: Any) -> str | None:
    """A non-empty list of templates, each with a documented type and the data it needs."""
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of templates"
    for index, item in enumerate(value):
        if not isinstance(item, dict) or item.get("type") not in TEMPLATE_TYPES:
            return f"each template needs a type in {sorted(TEMPLATE_TYPES)}"
        problem = _template_data(item)
        if problem:
            return f"[{index}] ({item['type']}) {problem}"
    return None


def _template_data(template: dict[str, Any]) -> str | None:
    if template["type"] == TemplateType.MULTI_SHEET:
        sheets = template.get("multiSheetData")
        if not isinstance(sheets, list) or not sheets:
            return "needs multiSheetData, a non-empty list of sheets"
        problems = (_fields(sheet, _SHEET_FIELDS, "multiSheetData[]") for sheet in sheets)
        return next((p for p in problems if p), None)
    member, fields = _TEMPLATE_DATA.get(template["type"], ("", {}))
    return _fields(template.get(member), fields, member) if member else None


def _fields(data: Any, fields: Mapping[str, str], member: str) -> str | None:
    if not isinstance(data, dict):
        return f"needs {member}, an object"
    for name, kind in fields.items():
        item = data.get(name)
        ok = isinstance(item, str) and bool(item) if kind == _STRING else _is_int(item)
        if not ok:
            return f"{member}.{name} must be {'a non-empty string' if kind == _STRING else kind}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def recipients(value: Any) -> str | None:
    """Persisted recipients: an object of recipient lists."""
    if not isinstance(value, dict):
        return "must be an object"
    unknown = set(value) - _RECIPIENT_KEYS
    if unknown:
        return f"has unknown keys {sorted(unknown)}"
    lists_ok = all(isinstance(v, list) for k, v in value.items() if k != "netRecipientCount")
    return None if lists_ok else "members must be lists"


def schedule(value: Any) -> str | None:
    """scheduleOptions: 1-5 RRULEs, local start/end date times without offsets."""
    if not isinstance(value, dict):
        return "must be an object"
    rules = value.get("recurrence")
    if rules is not None and (string_list(rules) or not 1 <= len(rules) <= 5):
        return "recurrence must be a list of 1 to 5 RRULE strings"
    for key in ("startDateTime", "endDateTime", "timezone"):
        item = value.get(key)
        if item is not None and not isinstance(item, str):
            return f"{key} must be a string"
        if key != "timezone" and item:
            problem = _local_date_time(item)
            if problem:
                return f"{key} {problem}"
    return None


def _local_date_time(text: str) -> str | None:
    if _OFFSET.search(text):
        return "must be a local date time without an offset"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        return "must be a local date time like 2026-01-02T16:04:05"
    return None
