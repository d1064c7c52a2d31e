"""A strict reader of the block-YAML subset deploy/*.yaml is written in (no YAML dependency):
mappings, `- ` sequences, plain, quoted and integer scalars, `{}`/`[]`, comments, `---`.

Anything outside the subset (tabs, flow collections, anchors, block scalars, tags, a key
twice, an indentation that fits nowhere) is refused with YamlSubsetError naming the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["YamlSubsetError", "load_all"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_PLAIN = re.compile(r"[A-Za-z0-9/_.:@~+=-][^#]*")


class YamlSubsetError(ValueError):
    """Text outside the subset, or malformed."""


@dataclass(frozen=True)
class _Line:
    number: int
    indent: int
    text: str


def load_all(text: str) -> list[Any]:
    """The documents of `text`, each a dict, list or scalar."""
    docs: list[list[_Line]] = [[]]
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw:
            raise YamlSubsetError(f"line {number}: a tab")
        content = _uncommented(raw, number).rstrip()
        if content == "---":
            docs.append([])
        elif content.strip():
            docs[-1].append(_Line(number, len(content) - len(content.lstrip()), content.strip()))
    return [_document(lines) for lines in docs if lines]


def _document(lines: list[_Line]) -> Any:
    value, end = _block(lines, 0, lines[0].indent)
    if end != len(lines):
        raise YamlSubsetError(f"line {lines[end].number}: indentation fits no parent")
    return value


def _block(lines: list[_Line], i: int, indent: int) -> tuple[Any, int]:
    if lines[i].text.startswith("- ") or lines[i].text == "-":
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _sequence(lines: list[_Line], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines) and lines[i].indent == indent and lines[i].text.startswith("-"):
        line = lines[i]
        rest = line.text[1:].strip()
        if not rest:
            value, i = _child(lines, i, indent)
        elif _KEY.match(rest) and re.match(r"[^:\"']+:( |$)", rest):
            # `- key: value` opens a mapping whose keys line up with `key`
            lines[i] = _Line(line.number, indent + 2, rest)
            value, i = _mapping(lines, i, indent + 2)
        else:
            value, i = _scalar(rest, line.number), i + 1
        items.append(value)
    return items, i


def _mapping(lines: list[_Line], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i].indent == indent:
        line = lines[i]
        key, colon, rest = line.text.partition(":")
        if not colon or not _KEY.fullmatch(key) or (rest and not rest.startswith(" ")):
            raise YamlSubsetError(f"line {line.number}: not a `key: value` line")
        if key in out:
            raise YamlSubsetError(f"line {line.number}: {key!r} twice")
        if rest.strip():
            out[key], i = _scalar(rest.strip(), line.number), i + 1
        else:
            out[key], i = _child(lines, i, indent)
    return out, i


def _child(lines: list[_Line], i: int, indent: int) -> tuple[Any, int]:
    """The block under line i: on the following lines, indented deeper."""
    if i + 1 >= len(lines) or lines[i + 1].indent <= indent:
        raise YamlSubsetError(f"line {lines[i].number}: nothing under it")
    return _block(lines, i + 1, lines[i + 1].indent)


def _scalar(text: str, number: int) -> Any:
    if text in ("{}", "[]"):
        return {} if text == "{}" else []
    if text.startswith('"'):
        try:
            return json.loads(text)  # a double-quoted scalar without escapes beyond JSON's
        except json.JSONDecodeError:
            raise YamlSubsetError(f"line {number}: a bad quoted string") from None
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    if not _PLAIN.fullmatch(text) or ": " in text:
        raise YamlSubsetError(f"line {number}: {text!r} is outside the subset")
    return text


def _uncommented(raw: str, number: int) -> str:
    """The line without its comment (a `#` at its start or after a space, outside quotes)."""
    quote = ""
    for pos, char in enumerate(raw):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (pos == 0 or raw[pos - 1] == " "):
            return raw[:pos]
    if quote:
        raise YamlSubsetError(f"line {number}: an unclosed quote")
    return raw
