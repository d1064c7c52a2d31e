"""The `where` filter of a job operation: a predicate over listed sharing tasks.

It also says which part of itself the list endpoint can apply server-side, so fewer pages travel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import orjson

__all__ = [
    "OwnerStatusOf",
    "Where",
    "common_list_params",
    "parse_timestamp",
    "selection_of",
    "where_of_selection",
]

#: Looks up a user's status (active, invited, disabled, deleted, provisioned); None when it 404s.
OwnerStatusOf = Callable[[str], str | None]


@dataclass(frozen=True)
class Where:
    """Filters AND-ed together; a set matches any of its items. Unset (None) filters are ignored.

    A Where with no filter at all matches nothing: selecting every task has to be said out loud
    with `all=True`, the same rule job files follow.
    """

    all: bool = False
    ids: frozenset[str] | None = None
    owner: frozenset[str] | None = None  #: task["owner"]
    owner_name: frozenset[str] | None = None  #: task["ownerName"]
    app_id: frozenset[str] | None = None  #: task["appId"]
    type: frozenset[str] | None = None  #: task["type"]
    status: frozenset[str] | None = None  #: task["statusCode"]
    task_errors: frozenset[str] | None = None  #: any of task["taskErrors"][*]["value"]
    enabled: bool | None = None  #: task["enabled"]
    tags: frozenset[str] | None = None  #: any of task["tags"]
    name: tuple[str, ...] | None = None  #: globs (fnmatchcase) on task["name"]
    not_viewed_for_days: int | None = None  #: lastViewed, else dateCreated, at least N days old
    owner_status: frozenset[str] | None = None  #: the owner's user status; needs a resolver

    @property
    def needs_owner_status(self) -> bool:
        """True when matching has to look the owner up in the users API."""
        return self.owner_status is not None

    @property
    def fields_read(self) -> frozenset[str]:
        """The task fields this filter reads (lastViewed and dateCreated for an age)."""
        return frozenset(
            name
            for key, value in self._filters().items()
            if value is not None
            for name in _FIELDS_OF_KEY[key]
        )

    @property
    def selects_anything(self) -> bool:
        """True when the filter says something: `all=True` or at least one key set."""
        return self.all or any(value is not None for value in self._filters().values())

    def matches(
        self,
        task: Mapping[str, Any],
        now: datetime,
        owner_status_of: OwnerStatusOf | None = None,
    ) -> bool:
        """Whether `task` (as the list endpoint returns it) passes every filter at time `now`."""
        if self.owner_status is not None and owner_status_of is None:
            raise ValueError("Where.owner_status is set but no owner_status_of resolver was given")
        if not self.selects_anything:
            return False
        if not self._matches_fields(task) or not self._matches_age(task, now):
            return False
        # Last, because the resolver may cost a users-API call; cheap checks prune first.
        return self._matches_owner_status(task, owner_status_of)

    def list_params(self) -> dict[str, list[str]]:
        """Query parameters for GET /api/v1/sharing-tasks that apply part of this filter."""
        params: dict[str, list[str]] = {}
        if self.owner is not None and len(self.owner) == 1:
            params["owner"] = sorted(self.owner)
        if self.app_id is not None and len(self.app_id) == 1:
            params["appid"] = sorted(self.app_id)
        if self.type:
            params["type"] = sorted(self.type)
        if self.status is not None and "DELETING" not in self.status:
            params["excludeDeleting"] = ["true"]
        return params

    def _filters(self) -> dict[str, object]:
        return {
            "ids": self.ids,
            "owner": self.owner,
            "owner_name": self.owner_name,
            "app_id": self.app_id,
            "type": self.type,
            "status": self.status,
            "task_errors": self.task_errors,
            "enabled": self.enabled,
            "tags": self.tags,
            "name": self.name,
            "not_viewed_for_days": self.not_viewed_for_days,
            "owner_status": self.owner_status,
        }

    def _matches_fields(self, task: Mapping[str, Any]) -> bool:
        return (
            _one_of(self.ids, task.get("id"))
            and _one_of(self.owner, task.get("owner"))
            and _one_of(self.owner_name, task.get("ownerName"))
            and _one_of(self.app_id, task.get("appId"))
            and _one_of(self.type, task.get("type"))
            and _one_of(self.status, task.get("statusCode"))
            and _any_of(self.task_errors, _error_values(task.get("taskErrors")))
            and _any_of(self.tags, _strings(task.get("tags")))
            and (self.enabled is None or task.get("enabled") is self.enabled)
            and _name_matches(self.name, task.get("name"))
        )

    def _matches_age(self, task: Mapping[str, Any], now: datetime) -> bool:
        if self.not_viewed_for_days is None:
            return True
        seen = _last_seen(task)
        # An unknown age is not "old": a task is never selected for lack of data.
        return seen is not None and _as_utc(now) - seen >= timedelta(days=self.not_viewed_for_days)

    def _matches_owner_status(
        self, task: Mapping[str, Any], owner_status_of: OwnerStatusOf | None
    ) -> bool:
        if self.owner_status is None or owner_status_of is None:
            return True
        owner = task.get("owner")
        if not isinstance(owner, str) or not owner:
            return False
        # The users API answers 404 for some deleted users instead of status "deleted".
        status = owner_status_of(owner) or "deleted"
        return status in self.owner_status


#: where key -> the task fields it reads
_FIELDS_OF_KEY: Mapping[str, tuple[str, ...]] = {
    "ids": ("id",),
    "owner": ("owner",),
    "owner_name": ("ownerName",),
    "app_id": ("appId",),
    "type": ("type",),
    "status": ("statusCode",),
    "task_errors": ("taskErrors",),
    "enabled": ("enabled",),
    "tags": ("tags",),
    "name": ("name",),
    "not_viewed_for_days": ("lastViewed", "dateCreated"),
    "owner_status": ("owner",),
}


#: where keys of a selection (`selection_of`) whose value is a set of strings
_SET_KEYS = frozenset({"owner", "owner_name", "app_id", "type", "status", "task_errors", "tags"})


def selection_of(where: Where, task: Mapping[str, Any], written: Set[str]) -> dict[str, Any]:
    """The part of `where` that `task` could stop matching, as JSON (a where table).

    Left out: `all` and `ids` (a task keeps its id), and keys reading a field in `written`
    (written by an earlier operation of the same change, so matched on a planned value that
    the write guard covers). `owner_status` becomes `owner` = the planned owner: the status
    was read from the users API, and a task given to someone else is no longer that owner's.
    """
    spec: dict[str, Any] = {}
    for key, value in where._filters().items():
        if value is None or key == "ids" or not written.isdisjoint(_FIELDS_OF_KEY[key]):
            continue
        if key == "owner_status":
            key, value = "owner", frozenset({task.get("owner")})
        if isinstance(value, frozenset):
            spec[key] = sorted(value)
        else:
            spec[key] = list(value) if isinstance(value, tuple) else value
    return spec


def where_of_selection(spec: Mapping[str, Any]) -> Where:
    """The Where a selection (as `selection_of` writes it) stands for; ValueError if it is
    not one (a saved plan is read back through this)."""
    return _where_of(orjson.dumps(dict(spec), option=orjson.OPT_SORT_KEYS))


@lru_cache(maxsize=1024)
def _where_of(canonical: bytes) -> Where:
    # a plan repeats a few selections thousands of times: built once each
    spec = orjson.loads(canonical)
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        fields[key] = _selection_value(key, value)
    if not fields:
        raise ValueError("an empty selection")
    return Where(**fields)


def _selection_value(key: str, value: Any) -> Any:
    if key in _SET_KEYS or key == "name":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"selection {key}: expected a list of strings")
        return frozenset(value) if key in _SET_KEYS else tuple(value)
    if key == "enabled" and isinstance(value, bool):
        return value
    if key == "not_viewed_for_days" and type(value) is int and value >= 0:
        return value
    raise ValueError(f"selection key {key!r} with a {type(value).__name__} is no where filter")


def common_list_params(wheres: Sequence[Where]) -> dict[str, list[str]]:
    """The list parameters every Where pushes with identical values.

    Safe for one shared listing: a task outside a filter that all operations share can never be
    touched by any of them. An operation that pushes nothing leaves nothing in common.
    """
    if not wheres:
        return {}
    common = wheres[0].list_params()
    for where in wheres[1:]:
        theirs = where.list_params()
        common = {key: value for key, value in common.items() if theirs.get(key) == value}
    return common


def _one_of(wanted: frozenset[str] | None, value: object) -> bool:
    # isinstance first: a list or dict in the task would make `in frozenset` raise TypeError.
    return wanted is None or (isinstance(value, str) and value in wanted)


def _any_of(wanted: frozenset[str] | None, values: Iterable[str]) -> bool:
    return wanted is None or any(value in wanted for value in values)


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _error_values(errors: object) -> list[str]:
    if not isinstance(errors, list):
        return []
    values = (error.get("value") for error in errors if isinstance(error, Mapping))
    return [value for value in values if isinstance(value, str)]


def _name_matches(globs: tuple[str, ...] | None, name: object) -> bool:
    if globs is None:
        return True
    return isinstance(name, str) and any(fnmatchcase(name, glob) for glob in globs)


def _last_seen(task: Mapping[str, Any]) -> datetime | None:
    """When the task was last viewed, or created when it never was; None when unknown."""
    viewed = _parse_timestamp(task.get("lastViewed"))
    # Go services render "never" as the zero time (year 1) rather than leaving the field out.
    if viewed is not None and viewed.year > 1:
        return viewed
    return _parse_timestamp(task.get("dateCreated"))


def parse_timestamp(value: object) -> datetime | None:
    """A task timestamp as an aware UTC datetime; None when it is not a readable one."""
    return _parse_timestamp(value)


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _as_utc(moment: datetime) -> datetime:
    # The API speaks UTC; a naive timestamp is read as UTC rather than as local time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
