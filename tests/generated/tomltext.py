"""TOML text from Python values, and hypothesis strategies that mutate a valid document: the
structure-aware half of the job-file and config generators (the other half is raw bytes).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from typing import Any

import orjson
from hypothesis import strategies as st

__all__ = ["ODD_TEXT", "ODD_VALUES", "document", "mutated", "toml_value"]


def toml_value(value: Any) -> str:
    """`value` as a TOML inline value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped too
        return orjson.dumps(value).decode().replace("\x7f", "\\u007f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value).__name__)


def _key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else toml_value(key)


def document(doc: dict[str, Any]) -> str:
    """A whole TOML document: plain keys first, then each table (and array of tables) under its
    own header, as people write them; what cannot be written so, inline."""
    lines = [f"{_key(k)} = {toml_value(v)}" for k, v in doc.items() if not _is_table(v)]
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"\n[{_key(key)}]")
            lines += [f"{_key(k)} = {toml_value(v)}" for k, v in value.items()]
        elif _is_table(value):
            for item in value:
                lines.append(f"\n[[{_key(key)}]]")
                lines += [f"{_key(k)} = {toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


#: text a user or an attacker might put anywhere: escape sequences, bidi, NUL-free controls,
#: very long, non-Latin, path-like
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "x",
        "\x1b[2J\x1b[Hbulkshare: ok",
        "ab\u202ecd",
        "\u2066evil\u2069",
        "zero\u200bwidth",
        "tab\tand\nnewline",
        "del\x7f",
        "c1\x85\x9b",
        "ünïcödé",
        "日本語のタスク",
        "../../etc/passwd",
        "/dev/zero",
        "%2e%2e",
        "a" * 5000,
        "{{x}}",
        "*[",
        "]",
        "=HYPERLINK(1)",
        "😀" * 10,
    ]
)

#: values of every TOML type, and the odd ones among them
ODD_VALUES: st.SearchStrategy[Any] = st.one_of(
    ODD_TEXT,
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**63 - 1,
            -(2**63),
            0.5,
            -0.0,
            math.nan,
            math.inf,
            -math.inf,
            1e300,
            True,
            False,
            [],
            {},
            [1, "a"],
            [[[[[[[[[[[]]]]]]]]]]],
            {"a": {"b": {"c": {"d": {}}}}},
            ["s"] * 12_000,
            list(range(300)),
            date(1, 1, 1),
            date(9999, 12, 31),
            datetime(1970, 1, 1, 0, 0),
            time(12, 0),
        ]
    ),
    st.lists(ODD_TEXT, max_size=4),
    st.dictionaries(ODD_TEXT, ODD_TEXT, max_size=3),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in `doc` a value sits (dict keys and list indices)."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list) and len(doc) <= 20:
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """`base` with one to three changes: a value replaced by an odd one, a key dropped, a
    known or unknown key added anywhere, or a list made huge."""
    doc: dict[str, Any] = _copy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        how = draw(st.sampled_from(["replace", "replace", "drop", "add", "grow"]))
        if how == "replace":
            # a copy: a later change must not reach the strategy's own constants
            parent[last] = _copy(draw(ODD_VALUES))
        elif how == "drop" and isinstance(parent, dict):
            del parent[last]
        elif how == "add" and isinstance(parent[last], dict):
            key = draw(st.sampled_from([*keys, "zzz", "Name", ""]))
            parent[last][key] = _copy(draw(ODD_VALUES))
        elif how == "grow" and isinstance(parent[last], list) and parent[last]:
            parent[last] = parent[last] * draw(st.sampled_from([2, 50, 3000]))
    return doc
