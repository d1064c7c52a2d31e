"""A change's guard: the selections that chose its task and the values they read, kept
once for all the changes that share them (a large plan holds one guard per change).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from bulkshare.job import where_of_selection

__all__ = ["Guard", "shared"]


@dataclass(frozen=True)
class Guard:
    """What a change depends on besides the fields it writes: its operations' selections
    (empty ones left out) and the planned value of every field they read."""

    selects: Mapping[str, Any]
    selection: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, task: Mapping[str, Any], selections: Iterable[Mapping[str, Any]]) -> Guard:
        common = _shared_selection(orjson.dumps([s for s in selections if s]))
        return cls({name: shared(task.get(name)) for name in common.names}, common.selection)


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


def shared(value: Any) -> Any:
    """One copy of a text many changes repeat (an app, an owner, a status), not one per task:
    a large plan keeps these for every change."""
    return sys.intern(value) if type(value) is str else value
