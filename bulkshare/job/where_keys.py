"""The `where` table of an operation -> a Where; each key has its own parser."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bulkshare.job.checks import Source, boolean, check_keys, hint, integer, string_items, table
from bulkshare.job.locate import KeyPath
from bulkshare.job.model import WHERE_KEYS
from bulkshare.job.where import Where
from bulkshare.vocab import OWNER_STATUSES, STATUS_CODES, TASK_ERRORS, TASK_TYPES

__all__ = ["parse_where"]

_Parse = Callable[[Source, Any, KeyPath], Any]


def parse_where(src: Source, value: Any, at: KeyPath) -> Where:
    on_purpose = "to select every task on purpose, use `where.all = true`"
    if value is None:
        src.fail(at, f"missing; say which tasks this operation touches ({on_purpose})")
    found = table(src, value, at)
    if not found:
        src.fail(at, f"empty; an empty filter is refused ({on_purpose})")
    check_keys(src, found, WHERE_KEYS, at)
    fields = {key: _WHERE_FIELDS[key](src, item, (*at, key)) for key, item in found.items()}
    return Where(**fields)


def _all_true(src: Source, value: Any, at: KeyPath) -> bool:
    if boolean(src, value, at) is not True:
        src.fail(at, "only `all = true` is meaningful; remove the key instead")
    return True


def _one_or_more(allowed: Sequence[str] | None, what: str) -> _Parse:
    """A parser for a string or a list of strings, each among `allowed` when given."""

    def parse(src: Source, value: Any, at: KeyPath) -> frozenset[str]:
        items = string_items(src, value, at)
        for item_at, item in items:
            if allowed is not None and item not in allowed:
                suffix = hint(item, allowed)
                quoted = json.dumps(item)
                src.fail(item_at, f"unknown {what} {quoted}{suffix}; allowed: {', '.join(allowed)}")
        return frozenset(item for _, item in items)

    return parse


def _globs(src: Source, value: Any, at: KeyPath) -> tuple[str, ...]:
    items = string_items(src, value, at)
    for item_at, glob in items:
        if problem := _glob_problem(glob):
            src.fail(item_at, f"bad glob {json.dumps(glob)}: {problem}")
    return tuple(dict.fromkeys(glob for _, glob in items))


def _glob_problem(glob: str) -> str | None:
    """Why fnmatch would misread `glob`: it silently treats a stray bracket as a literal."""
    position = 0
    while position < len(glob):
        char = glob[position]
        if char == "]":
            return f"']' at position {position + 1} closes no '['"
        if char == "[":
            # As in fnmatch, a "]" right after "[" or "[!" is a member, not the end of the set.
            end = position + 1 + (glob[position + 1 : position + 2] == "!")
            close = glob.find("]", end + 1)
            if close < 0:
                return f"'[' at position {position + 1} is never closed"
            position = close
        position += 1
    return None


def _non_negative(src: Source, value: Any, at: KeyPath) -> int:
    return integer(src, value, at, minimum=0)


_WHERE_FIELDS: dict[str, _Parse] = {
    "all": _all_true,
    "ids": _one_or_more(None, "id"),
    "owner": _one_or_more(None, "owner"),
    "owner_name": _one_or_more(None, "owner name"),
    "app_id": _one_or_more(None, "app id"),
    "type": _one_or_more(TASK_TYPES, "task type"),
    "status": _one_or_more(STATUS_CODES, "status"),
    "task_errors": _one_or_more(TASK_ERRORS, "task error"),
    "enabled": boolean,
    "tags": _one_or_more(None, "tag"),
    "name": _globs,
    "not_viewed_for_days": _non_negative,
    "owner_status": _one_or_more(OWNER_STATUSES, "owner status"),
}
