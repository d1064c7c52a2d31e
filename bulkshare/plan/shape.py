"""The shape of a listed task: one place decides whether its values have the types the engine
reads. A task that fails is rejected (listed with the reason), never coerced into matching.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from bulkshare.job.where import parse_timestamp

__all__ = ["shape_problem"]

#: the earliest believable timestamp, and how far ahead of our clock one may be (clock skew)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_SKEW = timedelta(days=1)

_Check = Callable[[str, Any], str | None]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else "null"


def _string(name: str, value: Any) -> str | None:
    return None if isinstance(value, str) else f"{name} is {_json_type(value)}, expected a string"


def _boolean(name: str, value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    return f"{name} is {_json_type(value)}, expected a boolean"


def _strings(name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{name} is {_json_type(value)}, expected a list"
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return f"{name}[{index}] is {_json_type(item)}, expected a string"
    return None


def _errors(name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{name} is {_json_type(value)}, expected a list"
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            what = _json_type(item) if not isinstance(item, dict) else "an object"
            return f"{name}[{index}] is {what}, expected an object with a string value"
    return None


#: task field -> its check, in the order problems are reported (the first one is named)
_CHECKS: Mapping[str, _Check] = {
    "id": _string,
    "owner": _string,
    "enabled": _boolean,
    "tags": _strings,
    "taskErrors": _errors,
    "statusCode": _string,
    "type": _string,
    "appId": _string,
    "name": _string,
    "ownerName": _string,
}


def shape_problem(task: Mapping[str, Any], fields: frozenset[str], now: datetime) -> str | None:
    """Why `task` cannot be planned on `fields` (the ones the job reads), or None.

    A missing or null field is no problem: it matches nothing, as an unknown value should.
    """
    for name, check in _checks_for(fields):
        value = task.get(name)
        if value is not None:
            problem = check(name, value)
            if problem is not None:
                return problem
    return _age_problem(task, now) if "lastViewed" in fields else None


@lru_cache(maxsize=64)
def _checks_for(fields: frozenset[str]) -> tuple[tuple[str, _Check], ...]:
    # once per job, not per task: planning a large tenant runs this for every task
    return tuple((name, check) for name, check in _CHECKS.items() if name in fields)


def _age_problem(task: Mapping[str, Any], now: datetime) -> str | None:
    """lastViewed, and dateCreated when the age falls back on it (never viewed), must be dates
    in a believable range: an unreadable age is not an old one."""
    viewed = task.get("lastViewed")
    if viewed not in (None, ""):  # absent, null or empty: never viewed
        seen = parse_timestamp(viewed)
        if seen is None or seen.year != 1:  # year 1 is Go's zero time: never viewed either
            return _date_problem("lastViewed", viewed, seen, now)
    created = task.get("dateCreated")
    if created is None:
        return None
    return _date_problem("dateCreated", created, parse_timestamp(created), now)


def _date_problem(name: str, raw: Any, parsed: datetime | None, now: datetime) -> str | None:
    shown = _shown(raw)
    if parsed is None:
        return f"{name} {shown} is not a date"
    latest = (now if now.tzinfo else now.replace(tzinfo=UTC)) + _SKEW
    if not _EARLIEST <= parsed <= latest:
        return f"{name} {shown} is out of range (before 1970 or in the future)"
    return None


def _shown(value: Any) -> str:
    """A tenant value in a reason: JSON (escapes visible, ASCII only), shortened."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
