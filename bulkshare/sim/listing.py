"""GET /api/v1/sharing-tasks: query parsing, filters, sorting and stable cursor paging, where
a cursor is a place in an order ending in creation sequence, so edits between pages shift nothing.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import MultiMapping

from bulkshare.sim.errors import SimError
from bulkshare.sim.tenant import SimTenant
from bulkshare.sim.vocab import LIST_ROLES, TASK_TYPES, StatusCode, TaskSort

__all__ = [
    "Cursor",
    "Page",
    "TaskLister",
    "TaskQuery",
    "decode_token",
    "encode_cursor",
    "encode_token",
    "parse_bool",
    "parse_int",
    "parse_limit",
    "parse_task_query",
]

Json = dict[str, Any]
_Key = tuple[Any, ...]

#: sort parameter name -> (task field, is boolean)
SORT_FIELDS: Mapping[str, tuple[str, bool]] = {
    TaskSort.DATE_CREATED: ("dateCreated", False),
    TaskSort.NAME: ("name", False),
    TaskSort.OWNER_NAME: ("ownerName", False),
    TaskSort.ENABLED: ("enabled", True),
    TaskSort.STATUS: ("statusCode", False),
    TaskSort.TYPE: ("type", False),
    TaskSort.SENT: ("lastExecutionDate", False),
    TaskSort.SCHEDULED: ("nextScheduledRun", False),
    TaskSort.APP_NAME: ("appName", False),
    TaskSort.APP_ID: ("appId", False),
}
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_CACHE_SIZE = 16
_DELETING = StatusCode.DELETING.value  # bound once: matches() runs for every task of a view


@dataclass(frozen=True, slots=True)
class SortKey:
    """One `sort` parameter: a task field, its direction, and whether it is boolean."""

    field: str
    descending: bool
    boolean: bool


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a listing: the boundary task's sort values and sequence, and a direction."""

    forward: bool
    values: tuple[Any, ...]
    seq: int


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """A parsed, checked list request."""

    limit: int = 20
    offset: int = 0
    cursor: Cursor | None = None
    owner: str | None = None
    owner_name: str | None = None
    app_id: str | None = None
    types: frozenset[str] = frozenset()
    template_ids: frozenset[str] = frozenset()
    exclude_deleting: bool = False
    sort: tuple[SortKey, ...] = ()
    #: a caller without an admin role sees only the tasks it owns
    scope_owner: str | None = None

    def view_key(self) -> tuple[Any, ...]:
        """What selects and orders the tasks (not where the page starts)."""
        filters = (self.owner, self.owner_name, self.app_id, self.types, self.template_ids)
        return (*filters, self.exclude_deleting, self.sort, self.scope_owner)

    def matches(self, task: Json) -> bool:
        """Whether `task` passes every filter of the query."""
        if self.owner and task.get("owner") != self.owner:
            return False
        if self.scope_owner is not None and task.get("owner") != self.scope_owner:
            return False
        if self.owner_name and task.get("ownerName") != self.owner_name:
            return False
        if self.app_id and task.get("appId") != self.app_id:
            return False
        if self.types and task.get("type") not in self.types:
            return False
        if self.exclude_deleting and task.get("statusCode") == _DELETING:
            return False
        return not self.template_ids or bool(self.template_ids & _template_ids(task))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of tasks, the filtered total, and the cursors to the neighbouring pages."""

    tasks: list[Json]
    total: int
    next: Cursor | None
    prev: Cursor | None


def _template_ids(task: Json) -> set[str]:
    ids = {t.get("templateId") for t in task.get("templates", []) if isinstance(t, dict)}
    ids.add(task.get("templateId"))
    return {i for i in ids if isinstance(i, str)}


# -- tokens ------------------------------------------------------------------------------


def encode_token(payload: Any) -> str:
    """An opaque URL-safe page token for `payload`."""
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The payload of a token made by encode_token; 400 SimError if it is not one."""
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise SimError(400, "invalid page cursor") from exc


def encode_cursor(cursor: Cursor) -> str:
    """The page token of `cursor`."""
    return encode_token(
        {"d": "n" if cursor.forward else "p", "v": list(cursor.values), "s": cursor.seq}
    )


def _decode_cursor(token: str, sort: tuple[SortKey, ...]) -> Cursor:
    payload = decode_token(token)
    try:
        forward = {"n": True, "p": False}[payload["d"]]
        values, seq = tuple(payload["v"]), payload["s"]
    except (KeyError, TypeError) as exc:
        raise SimError(400, "invalid page cursor") from exc
    if not isinstance(seq, int) or len(values) != len(sort):
        raise SimError(400, "page cursor does not match the sort of the request")
    return Cursor(forward, values, seq)


# -- query parsing -----------------------------------------------------------------------


def parse_bool(name: str, raw: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it; 400 otherwise."""
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SimError(400, f"query parameter {name}: {raw!r} is not a boolean")


def parse_int(name: str, raw: str | None, default: int, low: int, high: int | None) -> int:
    """An integer query parameter within [low, high]; 400 otherwise."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimError(400, f"query parameter {name}: {raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise SimError(400, f"query parameter {name}: must be {bound}, got {value}")
    return value


def parse_limit(query: MultiMapping[str], default: int = 20) -> int:
    """`limit` between 1 and 100."""
    return parse_int("limit", query.get("limit"), default, 1, 100)


def _all(query: MultiMapping[str], name: str) -> list[str]:
    # repeated (type=a&type=b, type[]=a) as the spec's form style says, or comma-joined
    # (type=a,b) as Qlik's own @qlik/api client sends them
    raw = [*query.getall(name, []), *query.getall(f"{name}[]", [])]
    return [part for value in raw for part in value.split(",") if part]


def _enum_values(
    query: MultiMapping[str], name: str, allowed: Sequence[str] | frozenset[str]
) -> list[str]:
    values = _all(query, name)
    for value in values:
        if value not in allowed:
            raise SimError(
                400, f"query parameter {name}: {value!r} is not one of {sorted(allowed)}"
            )
    return values


def _sort_keys(query: MultiMapping[str]) -> tuple[SortKey, ...]:
    allowed = [f"{sign}{name}" for name in SORT_FIELDS for sign in ("", "+", "-")]
    keys = []
    for raw in _enum_values(query, "sort", allowed):
        field, boolean = SORT_FIELDS[raw.lstrip("+-")]
        keys.append(SortKey(field, raw.startswith("-"), boolean))
    return tuple(keys)


def _cursor_token(query: MultiMapping[str]) -> str | None:
    if "next" in query and "prev" in query:
        raise SimError(400, "only one of next or prev may be specified")
    return query.get("page") or query.get("next") or query.get("prev")


def parse_task_query(query: MultiMapping[str]) -> TaskQuery:
    """Check the list endpoint's query parameters; 400 SimError on the first bad one."""
    sort = _sort_keys(query)
    _enum_values(query, "role", LIST_ROLES)
    token = _cursor_token(query)
    exclude = query.get("excludeDeleting")
    return TaskQuery(
        limit=parse_limit(query),
        offset=parse_int("offset", query.get("offset"), 0, 0, None),
        cursor=_decode_cursor(token, sort) if token else None,
        owner=query.get("owner") or None,
        owner_name=query.get("ownername") or None,
        app_id=query.get("appid") or None,
        types=frozenset(_enum_values(query, "type", TASK_TYPES)),
        template_ids=frozenset(_all(query, "templateId")),
        exclude_deleting=parse_bool("excludeDeleting", exclude) if exclude is not None else False,
        sort=sort,
    )


# -- ordering and pages ------------------------------------------------------------------


def _raw_values(task: Json, sort: tuple[SortKey, ...]) -> tuple[Any, ...]:
    return tuple(
        bool(task.get(k.field)) if k.boolean else str(task.get(k.field) or "") for k in sort
    )


def _descending(text: str) -> tuple[int, ...]:
    # negated code points order strings backwards; the trailing 1 puts longer strings first
    return (*(-ord(c) for c in text), 1)


def _order_key(values: tuple[Any, ...], seq: int, sort: tuple[SortKey, ...]) -> _Key:
    parts: list[Any] = []
    for key, value in zip(sort, values, strict=True):
        if key.boolean:
            parts.append(-int(value) if key.descending else int(value))
        else:
            parts.append(_descending(str(value)) if key.descending else str(value))
    parts.append(seq)
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class _View:
    version: int
    keys: list[_Key]
    ids: list[str]


class TaskLister:
    """Answers list queries from ordered views of the tenant, rebuilt when the tenant changes."""

    __slots__ = ("_cache", "tenant")

    def __init__(self, tenant: SimTenant) -> None:
        #: the tenant listed
        self.tenant = tenant
        self._cache: dict[tuple[Any, ...], _View] = {}

    def __repr__(self) -> str:
        return f"<TaskLister views={len(self._cache)} tenant_v={self.tenant.version}>"

    def page(self, query: TaskQuery) -> Page:
        """The page `query` asks for."""
        view = self._view(query)
        start, end = self._bounds(view, query)
        ids = view.ids[start:end]
        tasks = [self.tenant.tasks[i] for i in ids]
        more_after = end < len(view.ids)
        next_cursor = self._cursor(tasks[-1], query, True) if tasks and more_after else None
        prev_cursor = self._cursor(tasks[0], query, False) if tasks and start > 0 else None
        return Page(tasks, len(view.ids), next_cursor, prev_cursor)

    def _bounds(self, view: _View, query: TaskQuery) -> tuple[int, int]:
        cursor = query.cursor
        if cursor is None:
            start = query.offset
            return start, start + query.limit
        key = _order_key(cursor.values, cursor.seq, query.sort)
        if cursor.forward:
            start = bisect_right(view.keys, key) + query.offset
            return start, start + query.limit
        end = bisect_left(view.keys, key)
        return max(0, end - query.limit), end

    def _cursor(self, task: Json, query: TaskQuery, forward: bool) -> Cursor:
        return Cursor(forward, _raw_values(task, query.sort), self.tenant.seq(task["id"]))

    def _view(self, query: TaskQuery) -> _View:
        cache_key = query.view_key()
        view = self._cache.get(cache_key)
        if view is None or view.version != self.tenant.version:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            view = self._cache[cache_key] = self._build(query)
        return view

    def _build(self, query: TaskQuery) -> _View:
        seq, sort = self.tenant.seq, query.sort
        entries = [
            (_order_key(_raw_values(task, sort), seq(tid), sort), tid)
            for tid, task in self.tenant.tasks.items()
            if query.matches(task)
        ]
        if query.sort:
            entries.sort()
        return _View(self.tenant.version, [k for k, _ in entries], [i for _, i in entries])
