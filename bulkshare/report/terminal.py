"""Text made safe for a terminal: the one place that decides which characters may reach it raw.

Text from the tenant (task names and ids, server error text) can hold escape sequences that clear
a screen or fake a line, and Unicode controls (bidi overrides, zero-width) that disguise text.
"""

from __future__ import annotations

import re

__all__ = ["json_safe", "printable"]

# Every character of the Unicode categories Cc (C0, DEL, C1), Cf (format: bidi embeddings,
# overrides and isolates, the marks U+200E/U+200F/U+061C, zero-width characters, the BOM, tag
# characters...), Zl and Zp (line and paragraph separators) and Cs (lone surrogates, which
# cannot even be encoded). Written out rather than computed from `unicodedata` at import time;
# tests/test_one_line.py checks it against every code point.
_UNSAFE_RANGES = (
    "\x00-\x1f\x7f-\x9f\xad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[{_UNSAFE_RANGES}]")
#: the same, but a line break and a tab may stay (multi-line text: tables, notes)
_UNSAFE_IN_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f" + _UNSAFE_RANGES.removeprefix("\x00-\x1f") + "]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` safe to print on a terminal: every control or format character shown as an
    escape (`\\x1b`, `\\u202e`), never obeyed. One line unless `lines`, which keeps line breaks
    and tabs (a table, a multi-line note)."""
    return (_UNSAFE_IN_LINES if lines else _UNSAFE).sub(_escaped, text)


def _json_escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP, JSON escapes a character as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_safe(encoded: str) -> str:
    """A JSON text with every unsafe character inside its strings written as a `\\uXXXX`
    escape: still valid JSON that decodes to the same data, and nothing a terminal obeys.

    JSON encoders escape C0 controls but leave DEL, C1 and the Unicode format characters raw.
    """
    return _UNSAFE.sub(_json_escaped, encoded)
