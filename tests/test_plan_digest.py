"""A plan's content hash taken one change at a time is the hash of its whole document."""

from __future__ import annotations

import pytest

from bulkshare.plan import Change, Plan
from bulkshare.plan.change import Rejected
from bulkshare.plan.digest import content_hash_by_part

#: tenant text that looks like JSON, and like the slot the hash is taken around
HOSTILE = 'x"],"changes":[{"a":1}],"z":"parts-\u0000\u202e'


def a_plan(changes: int) -> Plan:
    """A plan with changes, a rejected task, a description and a copy section."""
    plan = Plan("prod", "handover", "jobs/h.toml", "ab" * 32, "2026-12-01T10:00:00Z")
    plan.description, plan.criteria = HOSTILE, ("owner is gone", HOSTILE)
    plan.copy = {"source": "a", "note": HOSTILE}
    for i in range(changes):
        task_id = f"{i:024x}"
        body = [{"op": "replace", "path": "/enabled", "value": False}]
        task = {"name": f"{HOSTILE} {i}", "owner": "u1"}
        plan.add(
            [
                Change(
                    task_id,
                    ("disable",),
                    "PATCH",
                    f"/v1/sharing-tasks/{task_id}",
                    body,
                    {"enabled": True},
                    {"enabled": False},
                    task,
                    {"enabled": True, "statusCode": "VALID"},
                    ({"enabled": True},),
                )
            ]
        )
    plan.rejected.append(Rejected("f" * 24, "tags is a string, expected a list", {"name": HOSTILE}))
    return plan


@pytest.mark.parametrize("changes", [0, 1, 3, 250])
def test_hash_by_change_is_the_documents_hash(changes: int) -> None:
    plan = a_plan(changes)
    assert plan.hash_of_content() == plan.to_json()["content_hash"]


def test_a_changed_change_changes_the_hash() -> None:
    plan, other = a_plan(3), a_plan(3)
    other.changes[1] = other.changes[1].with_request("PATCH", other.changes[1].path, [])
    assert plan.hash_of_content() != other.hash_of_content()


def test_the_slot_must_be_in_the_body_once() -> None:
    with pytest.raises(ValueError, match="once"):
        content_hash_by_part(lambda slot: {"a": slot, "b": slot}, [])
