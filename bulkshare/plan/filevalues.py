"""The values of a plan file, each checked for its type as it is read: a wrong type is a
broken (or edited) file, never coerced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "json_list",
    "mapping",
    "max_changes_value",
    "optional_mapping",
    "optional_text",
    "text",
    "texts",
]


def text(value: Any) -> str:
    """A string, as it is."""
    # never str(): a number where an id is due is a broken file, not an id
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def texts(value: Any) -> tuple[str, ...]:
    """A list of strings."""
    return tuple(text(item) for item in json_list(value))


def json_list(value: Any) -> list[Any]:
    """A list."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def mapping(value: Any) -> Mapping[str, Any]:
    """An object."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def optional_mapping(value: Any) -> Mapping[str, Any] | None:
    """An object or null."""
    return None if value is None else mapping(value)


def optional_text(value: Any) -> str | None:
    """A string or null."""
    return None if value is None else text(value)


def max_changes_value(value: Any) -> int | None:
    """The job's max_changes: an integer (not a boolean) or null."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"max_changes: expected an integer, got {type(value).__name__}")
    return value
