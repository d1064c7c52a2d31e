"""Checks every part of a job file shares: each failure names the file, line and dotted key.

`Source.fail` raises the JobFileError; the helpers return the checked value.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn

from bulkshare.errors import JobFileError
from bulkshare.job.locate import KeyLocator, KeyPath

__all__ = [
    "MAX_LIST_ITEMS",
    "Source",
    "boolean",
    "byte_position",
    "check_keys",
    "choice",
    "describe",
    "hint",
    "integer",
    "optional_positive",
    "optional_string",
    "string",
    "string_items",
    "table",
]

MAX_LIST_ITEMS = 10_000


@dataclass(frozen=True)
class Source:
    """The file being validated, so that every check can fail with file, line and key."""

    path: Path
    locator: KeyLocator

    def fail(self, key: KeyPath, message: str) -> NoReturn:
        raise JobFileError(self.path, self.locator.line_of(key), dotted(key), message)


def dotted(key: KeyPath) -> str:
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            bare = re.fullmatch(r"[A-Za-z0-9_-]+", part) is not None
            text += ("." if text else "") + (part if bare else json.dumps(part))
    return text


def optional_string(src: Source, value: Any, at: KeyPath) -> str:
    return "" if value is None else string(src, value, at, allow_empty=True)


def optional_positive(src: Source, value: Any, at: KeyPath) -> int | None:
    return None if value is None else integer(src, value, at, minimum=1)


def check_keys(
    src: Source, table: Mapping[str, Any], allowed: Sequence[str], at: KeyPath, context: str = ""
) -> None:
    for key in table:
        if key not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            message = (
                f"unknown key {json.dumps(key)}{context}{hint(key, allowed)}; allowed: {listed}"
            )
            src.fail((*at, key), message)


def hint(word: str, choices: Sequence[str]) -> str:
    """A ' (did you mean ...?)' suffix naming the closest choice, or ''."""
    folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return f" (did you mean {json.dumps(folded[close[0]])}?)" if close else ""


def table(src: Source, value: Any, at: KeyPath) -> dict[str, Any]:
    if value is None:
        src.fail(at, "missing table")
    if not isinstance(value, dict):
        src.fail(at, f"expected a table, got {describe(value)}")
    return value


def string(src: Source, value: Any, at: KeyPath, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        src.fail(at, f"expected a string, got {describe(value)}")
    if not value and not allow_empty:
        src.fail(at, "empty string")
    return value


def boolean(src: Source, value: Any, at: KeyPath) -> bool:
    if not isinstance(value, bool):
        src.fail(at, f"expected a boolean (true or false), got {describe(value)}")
    return value


def integer(src: Source, value: Any, at: KeyPath, *, minimum: int) -> int:
    # bool is a subclass of int in Python, but `max_changes = true` is a mistake in TOML.
    if isinstance(value, bool) or not isinstance(value, int):
        src.fail(at, f"expected an integer, got {describe(value)}")
    if value < minimum:
        src.fail(at, f"must be at least {minimum}, got {value}")
    return value


def string_items(src: Source, value: Any, at: KeyPath) -> list[tuple[KeyPath, str]]:
    """A string, or a non-empty list of non-empty strings, each with its own key path."""
    if isinstance(value, str):
        return [(at, string(src, value, at))]
    if not isinstance(value, list):
        src.fail(at, f"expected a string or an array of strings, got {describe(value)}")
    if not value:
        src.fail(at, "empty array; give at least one value")
    if len(value) > MAX_LIST_ITEMS:
        src.fail(at, f"{len(value)} items; at most {MAX_LIST_ITEMS:,} are accepted")
    return [((*at, i), string(src, item, (*at, i))) for i, item in enumerate(value)]


def describe(value: Any) -> str:
    """A value's TOML type, with the value itself when it is short."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return f"string {shown if len(shown) <= 40 else shown[:37] + '...'}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


def byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def choice(src: Source, value: Any, at: KeyPath, allowed: Sequence[str], what: str) -> str:
    if value is None:
        src.fail(at, f"missing; one of: {', '.join(allowed)}")
    text = string(src, value, at)
    if text not in allowed:
        suffix = hint(text, allowed)
        src.fail(at, f"unknown {what} {json.dumps(text)}{suffix}; allowed: {', '.join(allowed)}")
    return text
