"""The SCIM (RFC 7644) filter subset the users API accepts: eq/ne/co/sw/ew/pr, and/or/not, parens.

`and` binds tighter than `or`; keywords and attribute names are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bulkshare.sim.errors import SimError

__all__ = ["UserFilter", "parse_filter"]

Json = dict[str, Any]
Predicate = Callable[[Json], bool]

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')
_ATTRS = {
    name.lower(): name
    for name in (
        "id", "subject", "name", "email", "status", "clientId", "tenantId",
        "assignedRoles.id", "assignedRoles.name", "assignedGroups.id",
        "assignedGroupsAssignedRoles.name",
    )
}  # fmt: skip
_OPS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "co": lambda a, b: b in a,
    "sw": lambda a, b: a.startswith(b),
    "ew": lambda a, b: a.endswith(b),
}


@dataclass(slots=True)
class UserFilter:
    """A parsed filter: the predicate and the ids it compares with `id eq`."""

    predicate: Predicate
    ids: list[str] = field(default_factory=list)

    def __call__(self, user: Json) -> bool:
        return self.predicate(user)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SimError(400, f"invalid filter near {text[pos : pos + 20]!r}")
        opener, closer, quoted, word = match.groups()
        if quoted is not None:
            tokens.append(("str", re.sub(r"\\(.)", r"\1", quoted)))
        else:
            tokens.append(("(", "(") if opener else (")", ")") if closer else ("word", word))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.ids: list[str] = []

    def parse(self) -> UserFilter:
        if not self.tokens:
            raise SimError(400, "invalid filter: empty")
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise SimError(400, f"invalid filter: unexpected {self.tokens[self.pos][1]!r}")
        return UserFilter(predicate, self.ids)

    def _peek_word(self) -> str:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].lower()
        return ""

    def _next(self, what: str) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise SimError(400, f"invalid filter: expected {what} at the end")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_word() == "or":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda u: any(p(u) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek_word() == "and":
            self.pos += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else lambda u: all(p(u) for p in parts)

    def _unary(self) -> Predicate:
        if self._peek_word() == "not":
            self.pos += 1
            inner = self._unary()
            return lambda u: not inner(u)
        kind, _ = self._next("a comparison")
        if kind == "(":
            inner = self._or()
            if self._next("')'")[0] != ")":
                raise SimError(400, "invalid filter: expected ')'")
            return inner
        self.pos -= 1
        return self._comparison()

    def _comparison(self) -> Predicate:
        kind, raw_attr = self._next("an attribute")
        attr = _ATTRS.get(raw_attr.lower()) if kind == "word" else None
        if attr is None:
            raise SimError(400, f"invalid filter: unknown attribute {raw_attr!r}")
        kind, op = self._next("an operator")
        op = op.lower()
        if kind == "word" and op == "pr":
            return lambda u: bool(_values(u, attr))
        if kind != "word" or op not in _OPS:
            raise SimError(400, f"invalid filter: unsupported operator {op!r}")
        kind, value = self._next("a value")
        if kind not in ("str", "word"):
            raise SimError(400, "invalid filter: expected a value")
        if attr == "id" and op == "eq":
            self.ids.append(value)
        return _compare(attr, _OPS[op], value)


def _values(user: Json, attr: str) -> list[str]:
    head, _, tail = attr.partition(".")
    value = user.get(head)
    if not tail:
        return [] if value is None else [str(value)]
    items = value if isinstance(value, list) else []
    return [str(i[tail]) for i in items if isinstance(i, dict) and tail in i]


def _compare(attr: str, test: Callable[[str, str], bool], value: str) -> Predicate:
    if attr == "id":
        return lambda u: any(test(v, value) for v in _values(u, attr))
    folded = value.casefold()
    return lambda u: any(test(v.casefold(), folded) for v in _values(u, attr))


def parse_filter(text: str) -> UserFilter:
    """Parse a SCIM filter; 400 SimError explaining what is wrong with it."""
    return _Parser(text).parse()
