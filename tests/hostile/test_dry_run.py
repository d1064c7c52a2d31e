"""Dry run by any route: a read-only client sends GETs and exactly the users-filter POST, and
nothing else, whatever path, method, link or body it is handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bulkshare.client import ApiClient, RequestRefused
from bulkshare.errors import DryRunViolation
from bulkshare.plan import Plan
from bulkshare.vocab import USERS_FILTER_PATH
from tests.conftest import Workdir, bulkshare, error_lines
from tests.hostile.conftest import ClientFor, Origin, Reply, job_file, make_tasks, task_list

TASKS = "/api/v1/sharing-tasks"
FILTER = "/api" + USERS_FILTER_PATH
QUERY = {"filter": 'id eq "u1"'}

Attempt = Callable[[ApiClient], Awaitable[Any]]
ATTEMPTS: dict[str, Attempt] = {
    "patch": lambda c: c.request("PATCH", "/v1/sharing-tasks/t1", json=[]),
    "lower-case delete": lambda c: c.request("delete", "/v1/sharing-tasks/t1"),
    "put": lambda c: c.request("PUT", "/v1/sharing-tasks/t1", json={}),
    "execute": lambda c: c.request(
        "POST", "/v1/sharing-tasks/actions/execute", json={"sharingTaskID": "t1"}
    ),
    "filter-suffixed post": lambda c: c.request(
        "POST", "/v1/sharing-tasks/t1/users/actions/filter", json=QUERY
    ),
    "filter post, extra key": lambda c: c.request(
        "POST", USERS_FILTER_PATH, json={**QUERY, "op": "delete"}
    ),
    "filter post, list body": lambda c: c.request("POST", USERS_FILTER_PATH, json=[QUERY]),
    "filter post, no body": lambda c: c.request("POST", USERS_FILTER_PATH),
    "filter post, trailing slash": lambda c: c.request("POST", USERS_FILTER_PATH + "/", json=QUERY),
    "follow a cancel link as the filter": lambda c: c.follow(
        "/api/v1/sharing-tasks/t1/actions/cancel", USERS_FILTER_PATH, method="POST", json=QUERY
    ),
    "follow the filter with DELETE": lambda c: c.follow(FILTER, USERS_FILTER_PATH, method="DELETE"),
    "follow a task link with PATCH": lambda c: c.follow(
        "/api/v1/sharing-tasks/t1", "/v1/sharing-tasks/t1", method="PATCH", json=[]
    ),
}


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
async def test_a_read_only_client_sends_no_write_by_any_route(
    hostile: Origin, client_for: ClientFor, name: str
) -> None:
    """Every route to a non-read is refused before sending: the tenant receives nothing."""
    hostile.otherwise(Reply(204))
    async with client_for(hostile, read_only=True) as client:
        with pytest.raises((DryRunViolation, RequestRefused)):
            await ATTEMPTS[name](client)
    assert hostile.seen == []


async def test_reads_and_the_exact_users_filter_post_are_sent(
    hostile: Origin, client_for: ClientFor
) -> None:
    """A GET and the users-filter POST with a filter string are what a dry run may send."""
    hostile.on("POST", FILTER, Reply(200, {"data": []}))
    hostile.on("GET", TASKS, Reply(200, {"sharingTasks": [], "totalCount": 0}))
    async with client_for(hostile, read_only=True) as client:
        assert (await client.request("POST", USERS_FILTER_PATH, json=QUERY)).status == 200
        assert (await client.request("GET", "/v1/sharing-tasks")).status == 200
    assert [(s.method, s.path) for s in hostile.seen] == [("POST", FILTER), ("GET", TASKS)]


OWNER_JOB = (
    '[job]\nname = "h"\n[[operations]]\naction = "disable"\nwhere.owner_status = "deleted"\n'
)


def crafted_links(hostile: Origin, elsewhere: Origin) -> list[str]:
    """Users-filter next links that try to turn the lookup into a write, or go elsewhere."""
    return [
        "/api/v1/sharing-tasks/t0000/actions/cancel",
        "../sharing-tasks/t0000/actions/cancel",
        "/api/v1/users/actions/filter/../../sharing-tasks/actions/execute",
        f"{hostile.url}/api/v1/sharing-tasks/actions/execute",
        f"{elsewhere.url}/api/v1/users/actions/filter",
    ]


async def test_a_crafted_users_next_link_in_a_dry_run_sends_no_write(
    hostile: Origin, elsewhere: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` whose users lookup links to a cancel, an execute or elsewhere: exit 4, no write."""
    tasks = [{**t, "owner": "u1"} for t in make_tasks(3)]
    hostile.on("GET", TASKS, task_list(tasks))
    hostile.otherwise(Reply(204))
    for href in crafted_links(hostile, elsewhere):
        hostile.seen.clear()
        doc = {"data": [{"id": "u1", "status": "deleted"}], "links": {"next": {"href": href}}}
        hostile.on("POST", FILTER, Reply(200, doc))
        result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir, OWNER_JOB)))
        assert result.code == 4, (href, result.err)
        [line] = error_lines(result.err)
        assert "refused before sending" in line, line
        assert [(s.method, s.path) for s in hostile.seen if s.method != "GET"] == [
            ("POST", FILTER)
        ], href


async def test_a_users_next_link_to_the_filter_itself_is_followed_with_the_same_post(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """A genuine next page of the users filter is the same POST again, and the plan completes."""
    tasks = [{**t, "owner": f"u{n}"} for n, t in enumerate(make_tasks(2))]
    hostile.on("GET", TASKS, task_list(tasks))
    pages = iter(
        [
            {"data": [{"id": "u0", "status": "deleted"}], "links": {"next": {"href": "?next=p2"}}},
            {"data": [{"id": "u1", "status": "active"}]},
        ]
    )
    hostile.on("POST", FILTER, lambda _request: Reply(200, next(pages)))
    out = hostile_workdir.path / "plan.json"
    job = job_file(hostile_workdir, OWNER_JOB)
    result = await bulkshare(hostile_workdir, "plan", str(job), "--out", str(out))
    assert result.code == 0, result.err
    posts = [s for s in hostile.seen if s.method == "POST"]
    assert [(s.path, s.query) for s in posts] == [(FILTER, "limit=100"), (FILTER, "next=p2")]
    assert posts[0].json == posts[1].json and set(posts[0].json) == {"filter"}
    assert [c.task_id for c in Plan.read(out).changes] == ["t0000"]  # u0 is gone, u1 is not
