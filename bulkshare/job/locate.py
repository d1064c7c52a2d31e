"""Where a key sits in a TOML document: tomllib gives no positions, so the text is re-read.

Used to name the line of whatever a job file gets wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KeyLocator", "KeyPath"]

KeyPath = tuple[str | int, ...]

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_KEY_PART = re.compile(_KEY)
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")
_HEADER_LINE = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")


@dataclass(frozen=True)
class _Mark:
    path: KeyPath  #: absolute key path, array-of-tables indices resolved
    line: int
    value_at: int | None  #: text offset just after "=" for a key; None for a [table] header


class KeyLocator:
    """Finds the line of a key path such as ("operations", 2, "where", "owner") in TOML text.

    tomllib reports no positions for a valid document, so this re-reads the text line by line:
    [tables], [[arrays of tables]], dotted keys and, inside an inline array, its N-th element.
    A key it cannot find falls back to its nearest located parent, and then to line 1.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._marks = _scan_marks(text)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line defining `path`, else that of its longest located prefix, else 1."""
        wanted = tuple(path)
        best: _Mark | None = None
        for mark in self._marks:
            if wanted[: len(mark.path)] == mark.path and len(mark.path) > _depth(best):
                best = mark
        if best is None:
            return 1
        rest = wanted[len(best.path) :]
        if best.value_at is not None and rest and isinstance(rest[0], int):
            element = _element_offset(self._text, best.value_at, rest[0])
            if element is not None:
                return self._text.count("\n", 0, element) + 1
        return best.line


def _depth(mark: _Mark | None) -> int:
    return -1 if mark is None else len(mark.path)


def _scan_marks(text: str) -> list[_Mark]:
    marks: list[_Mark] = []
    table: KeyPath = ()
    counters: dict[KeyPath, int] = {}
    offset = 0
    open_string: str | None = None  # delimiter of a multi-line string we are inside
    # Only "\n" ends a line, as for tomllib; str.splitlines() would also split on \f, \x1c...
    for number, line in enumerate(text.split("\n"), start=1):
        start, offset = offset, offset + len(line) + 1
        if open_string is not None:
            if line.count(open_string) % 2 == 1:
                open_string = None
        elif header := _HEADER_LINE.match(line):
            is_array = header[1] == "[["
            table = _table_path(_key_parts(header[2]), is_array, counters)
            if is_array and table[-1] == 0:
                marks.append(_Mark(table[:-1], number, None))  # the array itself starts here
            marks.append(_Mark(table, number, None))
        elif key := _KEY_LINE.match(line):
            marks.append(_Mark(table + _key_parts(key[1]), number, start + key.end()))
            open_string = _opens_multiline_string(line[key.end() :])
    return marks


def _key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _KEY_PART.findall(dotted))


def _table_path(parts: tuple[str, ...], is_array: bool, counters: dict[KeyPath, int]) -> KeyPath:
    """Absolute path of a table header; arrays of tables get the index of their latest entry."""
    path: list[str | int] = []
    for position, part in enumerate(parts):
        path.append(part)
        key = tuple(path)
        if is_array and position == len(parts) - 1:
            counters[key] = counters.get(key, -1) + 1
        if key in counters:
            path.append(counters[key])
    return tuple(path)


def _opens_multiline_string(value: str) -> str | None:
    for delimiter in ('"""', "'''"):
        if value.count(delimiter) % 2 == 1:
            return delimiter
    return None


def _element_offset(text: str, at: int, index: int) -> int | None:
    """Offset where element `index` of the inline array starting at `at` begins, if any."""
    depth, count, expecting = 0, -1, False
    position = at
    while position < len(text):
        char = text[position]
        if depth == 0 and char != "[":
            if not char.isspace():
                return None  # a scalar, not an array
            position += 1
            continue
        if depth == 1 and expecting and char not in " \t\r\n,#]":
            count, expecting = count + 1, False
            if count == index:
                return position
        if char == "#":
            position = _end_of_line(text, position)
            continue
        if char in "\"'":
            position = _end_of_string(text, position)
            continue
        if char in "[{":
            depth += 1
            expecting = expecting or depth == 1
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return None
        elif char == "," and depth == 1:
            expecting = True
        position += 1
    return None


def _end_of_line(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _end_of_string(text: str, position: int) -> int:
    for delimiter in ('"""', "'''"):
        if text.startswith(delimiter, position):
            end = text.find(delimiter, position + 3)
            return len(text) if end < 0 else end + 3
    quote, position = text[position], position + 1
    while position < len(text) and text[position] not in (quote, "\n"):
        position += 2 if quote == '"' and text[position] == "\\" else 1
    return position + 1
