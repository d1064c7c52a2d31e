"""Value checks shared by the create and PATCH handlers.

Each check returns None when the value is acceptable, else the reason it is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bulkshare.sim.vocab import TEMPLATE_TYPES, TRANSPORT_CHANNELS

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
    """A non-empty list of templates, each with a documented type."""
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of templates"
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in TEMPLATE_TYPES:
            return f"each template needs a type in {sorted(TEMPLATE_TYPES)}"
    return None


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
        if key != "timezone" and isinstance(item, str) and _OFFSET.search(item):
            return f"{key} must be a local date time without an offset"
    return None
