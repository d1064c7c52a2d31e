"""Tests for bulkshare.job.where: task matching, list-parameter pushdown and its intersection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bulkshare.job import Where, common_list_params

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

TASK: dict[str, Any] = {
    "id": "t1",
    "name": "Weekly Sales Report",
    "owner": "u1",
    "ownerName": "Harley Kiffe",
    "appId": "app-1",
    "type": "template-sharing",
    "statusCode": "VALID",
    "taskErrors": [{"value": "ORPHAN"}, {"value": "OWNER_DISABLED"}],
    "enabled": True,
    "tags": ["finance", "weekly"],
    "lastViewed": "2025-05-01T12:00:00.000Z",
    "dateCreated": "2024-01-01T00:00:00Z",
}


def fs(*items: str) -> frozenset[str]:
    return frozenset(items)


@pytest.mark.parametrize(
    ("hit", "miss"),
    [
        (Where(ids=fs("t1", "t9")), Where(ids=fs("t2"))),
        (Where(owner=fs("u1")), Where(owner=fs("u2"))),
        (Where(owner_name=fs("Harley Kiffe")), Where(owner_name=fs("harley kiffe"))),
        (Where(app_id=fs("app-1")), Where(app_id=fs("app-2"))),
        (Where(type=fs("template-sharing")), Where(type=fs("chart-sharing"))),
        (Where(status=fs("VALID", "FAILED")), Where(status=fs("FAILED"))),
        (Where(task_errors=fs("OWNER_DISABLED")), Where(task_errors=fs("APP_DELETED"))),
        (Where(enabled=True), Where(enabled=False)),
        (Where(tags=fs("weekly", "other")), Where(tags=fs("daily"))),
        (Where(name=("Weekly *",)), Where(name=("weekly *",))),
        (Where(not_viewed_for_days=31), Where(not_viewed_for_days=32)),
    ],
)
def test_each_key_matches_and_rejects(hit: Where, miss: Where) -> None:
    """Every filter key accepts the task when its value fits and rejects it otherwise."""
    assert hit.matches(TASK, NOW)
    assert not miss.matches(TASK, NOW)


def test_all_matches_everything() -> None:
    """`all=True` alone selects any task, even an empty one."""
    assert Where(all=True).matches(TASK, NOW)
    assert Where(all=True).matches({}, NOW)


def test_all_is_still_anded_with_other_keys() -> None:
    """`all=True` combined with another key still requires that key."""
    assert Where(all=True, enabled=True).matches(TASK, NOW)
    assert not Where(all=True, enabled=False).matches(TASK, NOW)


def test_empty_where_matches_nothing() -> None:
    """A Where with no filter selects nothing, so selecting everything is always explicit."""
    assert not Where().matches(TASK, NOW)
    assert not Where().selects_anything
    assert Where(enabled=False).selects_anything


def test_keys_are_anded() -> None:
    """A task must pass every key: one failing key rejects it."""
    assert Where(owner=fs("u1"), enabled=True, tags=fs("finance")).matches(TASK, NOW)
    assert not Where(owner=fs("u1"), enabled=True, tags=fs("hr")).matches(TASK, NOW)


def test_name_globs_are_case_sensitive_and_any_of() -> None:
    """Name globs use fnmatchcase, and any one of several globs is enough."""
    assert Where(name=("*Report", "nothing")).matches(TASK, NOW)
    assert Where(name=("Weekly [ST]ales*",)).matches(TASK, NOW)
    assert not Where(name=("*report",)).matches(TASK, NOW)


def test_task_errors_match_any_error_value() -> None:
    """task_errors matches when any entry of taskErrors carries one of the wanted values."""
    task = {"taskErrors": [{"value": "NO_RECIPIENTS"}, {"value": "ORPHAN"}]}
    assert Where(task_errors=fs("ORPHAN")).matches(task, NOW)
    assert not Where(task_errors=fs("ORPHAN")).matches({"taskErrors": []}, NOW)


@pytest.mark.parametrize(
    "task_errors", [None, "ORPHAN", ["ORPHAN"], [None, 3, {"timestamp": "x"}], {"value": "ORPHAN"}]
)
def test_malformed_task_errors_never_crash(task_errors: object) -> None:
    """taskErrors of an unexpected shape simply does not match."""
    assert not Where(task_errors=fs("ORPHAN")).matches({"taskErrors": task_errors}, NOW)


@pytest.mark.parametrize(
    "where",
    [
        Where(ids=fs("t1")),
        Where(owner=fs("u1")),
        Where(owner_name=fs("x")),
        Where(app_id=fs("a")),
        Where(type=fs("chart-sharing")),
        Where(status=fs("VALID")),
        Where(task_errors=fs("ORPHAN")),
        Where(enabled=True),
        Where(enabled=False),
        Where(tags=fs("x")),
        Where(name=("*",)),
        Where(not_viewed_for_days=0),
        Where(owner_status=fs("deleted")),
    ],
)
def test_missing_fields_do_not_match(where: Where) -> None:
    """A task lacking the filtered field is not selected, and matching does not crash."""
    assert not where.matches({}, NOW, owner_status_of=lambda _: None)


@pytest.mark.parametrize(
    ("where", "task"),
    [
        (Where(owner=fs("u1")), {"owner": ["u1"]}),
        (Where(type=fs("chart-sharing")), {"type": {"a": 1}}),
        (Where(enabled=True), {"enabled": "true"}),
        (Where(tags=fs("x")), {"tags": "x"}),
        (Where(name=("*",)), {"name": 5}),
    ],
)
def test_wrongly_typed_fields_do_not_match(where: Where, task: dict[str, Any]) -> None:
    """A field of an unexpected type (list, dict, string for bool) is a mismatch, not a crash."""
    assert not where.matches(task, NOW)


def test_not_viewed_for_days_boundary() -> None:
    """A task viewed exactly N days ago counts as not viewed for N days."""
    task = {"lastViewed": "2025-05-22T12:00:00Z"}
    assert Where(not_viewed_for_days=10).matches(task, NOW)
    assert not Where(not_viewed_for_days=11).matches(task, NOW)


def test_never_viewed_falls_back_to_date_created() -> None:
    """Without lastViewed (or with Go's zero time) the task's age comes from dateCreated."""
    created = "2025-01-01T00:00:00Z"
    for task in (
        {"dateCreated": created},
        {"lastViewed": "0001-01-01T00:00:00Z", "dateCreated": created},
    ):
        assert Where(not_viewed_for_days=100).matches(task, NOW)
        assert not Where(not_viewed_for_days=200).matches(task, NOW)


def test_unknown_age_never_matches() -> None:
    """An unparseable or absent timestamp does not make a task look old."""
    assert not Where(not_viewed_for_days=0).matches({"lastViewed": "yesterday"}, NOW)
    assert not Where(not_viewed_for_days=0).matches({"lastViewed": None}, NOW)


def test_naive_now_and_timestamps_are_read_as_utc() -> None:
    """A naive `now` or timestamp is taken as UTC instead of raising on comparison."""
    naive_now = datetime(2025, 6, 1, 12, 0)
    assert Where(not_viewed_for_days=1).matches({"lastViewed": "2025-05-31T12:00:00"}, naive_now)


def test_owner_status_uses_the_resolver() -> None:
    """owner_status matches on the status the resolver reports for the owner id."""
    statuses = {"u1": "disabled"}
    where = Where(owner_status=fs("disabled", "deleted"))
    assert where.needs_owner_status
    assert where.matches(TASK, NOW, owner_status_of=statuses.get)
    assert not Where(owner_status=fs("active")).matches(TASK, NOW, owner_status_of=statuses.get)


def test_owner_that_404s_counts_as_deleted() -> None:
    """A resolver answering None (the user 404s) matches `deleted`, and only `deleted`."""
    assert Where(owner_status=fs("deleted")).matches(TASK, NOW, owner_status_of=lambda _: None)
    assert not Where(owner_status=fs("active")).matches(TASK, NOW, owner_status_of=lambda _: None)


def test_owner_status_without_resolver_is_a_programming_error() -> None:
    """Asking for owner_status without a resolver raises ValueError."""
    with pytest.raises(ValueError, match="owner_status_of"):
        Where(owner_status=fs("deleted")).matches(TASK, NOW)


def test_resolver_is_not_called_when_cheaper_keys_fail() -> None:
    """The users lookup is skipped for tasks other keys already rejected."""
    calls: list[str] = []

    def resolver(owner: str) -> str | None:
        calls.append(owner)
        return "deleted"

    where = Where(enabled=False, owner_status=fs("deleted"))
    assert not where.matches(TASK, NOW, owner_status_of=resolver)
    assert calls == []
    assert not Where(enabled=True).needs_owner_status


def test_list_params_push_single_owner_and_app() -> None:
    """Exactly one owner or app id is pushed to the list endpoint; several are not."""
    assert Where(owner=fs("u1"), app_id=fs("a1")).list_params() == {
        "owner": ["u1"],
        "appid": ["a1"],
    }
    assert Where(owner=fs("u1", "u2"), app_id=fs("a1", "a2")).list_params() == {}


def test_list_params_push_types_sorted() -> None:
    """Task types are pushed as a sorted repeated `type` parameter."""
    where = Where(type=fs("sheet-sharing", "chart-sharing"))
    assert where.list_params() == {"type": ["chart-sharing", "sheet-sharing"]}


def test_list_params_exclude_deleting_only_when_status_excludes_it() -> None:
    """excludeDeleting is sent when a status filter is given that does not allow DELETING."""
    assert Where(status=fs("FAILED")).list_params() == {"excludeDeleting": ["true"]}
    assert Where(status=fs("FAILED", "DELETING")).list_params() == {}
    assert Where(all=True).list_params() == {}


def test_common_list_params_keep_identical_pushdown() -> None:
    """Parameters every operation pushes with the same values are kept."""
    first = Where(owner=fs("u1"), status=fs("VALID"))
    second = Where(owner=fs("u1"), status=fs("FAILED"), enabled=True)
    assert common_list_params([first, second]) == {"owner": ["u1"], "excludeDeleting": ["true"]}


def test_common_list_params_is_an_intersection() -> None:
    """A parameter with different values, or missing from one operation, is dropped."""
    first = Where(owner=fs("u1"), type=fs("chart-sharing"))
    second = Where(owner=fs("u2"), type=fs("chart-sharing"), app_id=fs("a1"))
    assert common_list_params([first, second]) == {"type": ["chart-sharing"]}


def test_common_list_params_with_a_pushless_operation_is_empty() -> None:
    """One operation that pushes nothing, like `all`, leaves nothing in common."""
    assert common_list_params([Where(owner=fs("u1")), Where(all=True)]) == {}
    assert common_list_params([Where(status=fs("FAILED")), Where(status=fs("DELETING"))]) == {}
    assert common_list_params([]) == {}


def test_fields_read_names_what_each_key_reads() -> None:
    """fields_read lists the task fields of the keys set, so only those are shape-checked."""
    where = Where(owner=frozenset({"u"}), tags=frozenset({"t"}), not_viewed_for_days=3)
    assert where.fields_read == {"owner", "tags", "lastViewed", "dateCreated"}
    assert Where(all=True).fields_read == frozenset()
    assert Where(owner_status=frozenset({"deleted"})).fields_read == {"owner"}
