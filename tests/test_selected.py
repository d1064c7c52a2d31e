"""A change's selected values, held as their JSON (`plan.guard.Selected`): read back exactly as
planned, equal to the dict they came from, and saved as that dict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bulkshare.job import ActionKind, Operation, Where
from bulkshare.plan import Change, plan_task
from bulkshare.plan.guard import Selected

VALUES: dict[str, Any] = {
    "statusCode": "VALID",
    "enabled": True,
    "taskErrors": [{"value": "ORPHAN", "timestamp": "2024-08-15T17:00:21.000Z"}],
    "tags": ["ünïcode", 'a"quote', "line\nbreak"],
    "owner": None,
    "ratio": 0.1,
    "big": 2**63 - 1,
    "nested": {"a": [1, 2.5, {"b": []}]},
}


def test_selected_reads_back_what_it_was_given() -> None:
    """Every JSON value comes back equal and of its type; the dict methods answer as a dict's."""
    held = Selected(VALUES)
    plain = dict(VALUES)
    assert held == plain and plain == held and dict(held) == plain == dict(held.items())
    assert held["ratio"] == 0.1 and type(held["big"]) is int and held["owner"] is None
    assert held.get("missing", "x") == "x" and held.get("enabled") is True
    assert "taskErrors" in held and "missing" not in held and len(held) == len(VALUES)
    assert list(held) == list(VALUES) and list(held.values()) == list(VALUES.values())
    assert held != {**VALUES, "enabled": False} and held != Selected({}) and held != ["x"]
    with pytest.raises(KeyError):
        held["missing"]
    with pytest.raises(TypeError):
        hash(held)


def test_selected_values_are_fresh_copies() -> None:
    """What a reader does with a value it was given does not change what the plan holds."""
    held = Selected(VALUES)
    held["taskErrors"].append({"value": "APP_DELETED"})
    assert held["taskErrors"] == VALUES["taskErrors"]


def test_a_planned_change_holds_its_selects_compactly_and_saves_them_as_a_dict() -> None:
    """A planned change's selects are a Selected; its JSON form and a saved copy are the same."""
    task = {
        "id": "t1",
        "name": "n",
        "owner": "gone",
        "enabled": True,
        "statusCode": "VALID",
        "taskErrors": [{"value": "ORPHAN", "timestamp": "2024-08-15T17:00:21.000Z"}],
    }
    where = Where(task_errors=frozenset({"ORPHAN"}), enabled=True)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    planned = plan_task(task, [Operation(0, 1, ActionKind.DISABLE, where)], now, None)
    (change,) = planned.changes
    assert isinstance(change.selects, Selected)
    saved = orjson.loads(orjson.dumps(change.to_json()))
    assert saved["selects"] == {
        "enabled": True,
        "statusCode": "VALID",
        "taskErrors": task["taskErrors"],
    }
    again = Change.from_json(saved)
    assert again.selects == change.selects and again == change
