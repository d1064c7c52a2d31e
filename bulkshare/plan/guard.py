"""A change's guard: the selections that chose its task and the values they read, kept
once for all the changes that share them (a large plan holds one guard per change).
"""

from __future__ import annotations

import sys
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from bulkshare.job import where_of_selection

__all__ = ["Guard", "Selected", "exact", "shared"]


@dataclass(frozen=True)
class Guard:
    """What a change depends on besides the fields it writes: its operations' selections
    (empty ones left out) and the planned value of every field they read."""

    selects: Mapping[str, Any]
    selection: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, task: Mapping[str, Any], selections: Iterable[Mapping[str, Any]]) -> Guard:
        common = _shared_selection(orjson.dumps([s for s in selections if s]))
        return cls(Selected({name: task.get(name) for name in common.names}), common.selection)


class Selected(Mapping[str, Any]):
    """The planned values of the fields a change's selections read, held as their JSON.

    A plan keeps one per change, and what they read is often a list of objects (taskErrors:
    each error a dict with its own timestamp): as one byte string it takes a third of the
    memory, and it is read back whole, exactly (JSON in, JSON out), when a change is judged
    or saved. The values come from the tenant's JSON, so each has a JSON form.
    """

    __slots__ = ("_json",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._json = exact(orjson.dumps(values))

    def _values(self) -> dict[str, Any]:
        values: dict[str, Any] = orjson.loads(self._json)
        return values

    def __getitem__(self, name: str) -> Any:
        return self._values()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    # each read decodes once, not once per key as Mapping's own methods would
    def get(self, name: str, default: Any = None) -> Any:
        return self._values().get(name, default)

    def items(self) -> ItemsView[str, Any]:
        return self._values().items()

    def keys(self) -> KeysView[str]:
        return self._values().keys()

    def values(self) -> ValuesView[Any]:
        return self._values().values()

    def __contains__(self, name: object) -> bool:
        return name in self._values()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Selected):
            return self._json == other._json or self._values() == other._values()
        return isinstance(other, Mapping) and self._values() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, so unhashable as one

    def __repr__(self) -> str:
        return f"Selected({self._values()!r})"


@dataclass(frozen=True)
class _Selection:
    """Selections as many changes of a plan share them, with the task fields they read."""

    selection: tuple[Mapping[str, Any], ...]
    names: tuple[str, ...]  #: sorted


@lru_cache(maxsize=1024)
def _shared_selection(specs: bytes) -> _Selection:
    """One copy of a selection for every change it guards: the operations of a job select
    most tasks by the same `where`, and a large plan would otherwise keep one per change.
    Never changed once made (guards are read, never written)."""
    kept = tuple(orjson.loads(specs))
    # statusCode always: every operation leaves a DELETING task alone unless it asks for it
    names = {"statusCode"}.union(*(where_of_selection(s).fields_read for s in kept))
    return _Selection(kept, tuple(sorted(names)))


def exact(data: bytes) -> bytes:
    """`data` in a bytes object of its own size, to keep: what orjson.dumps answers holds its
    whole working buffer (about 4 KB however short the JSON), which is fine for bytes written
    out at once and 30 times too much for bytes a plan keeps per change."""
    return bytes(memoryview(data))


def shared(value: Any) -> Any:
    """One copy of a text many changes repeat (an app, an owner, a status), not one per task:
    a large plan keeps these for every change."""
    return sys.intern(value) if type(value) is str else value
