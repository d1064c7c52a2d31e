"""List links written absolute (the default), relative or as a bare query, and an empty
`next.href` on the last page when told so: tasks, executions, users and the users filter."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import pytest

from bulkshare.sim import LinkStyle, SimConfig, SimTenant

from .conftest import TASKS, SimClient, StartSim

USERS = "/api/v1/users"


async def walk(sim: SimClient, first: str, key: str, **kwargs: Any) -> tuple[list[str], Any]:
    """Every id of a listing, following next links resolved as RFC 3986 says; the last page."""
    url, method, seen = sim.at(first), kwargs.pop("method", "GET"), []
    while True:
        async with sim.session.request(method, url, **kwargs) as resp:
            assert resp.status == 200
            page = await resp.json()
        seen += [item["id"] for item in page[key]]
        href = page["links"].get("next", {}).get("href")
        if not href:
            return seen, page
        url = urljoin(url, href)


@pytest.mark.parametrize(
    ("style", "prefix"),
    [
        (LinkStyle.ABSOLUTE, "http://127.0.0.1:"),
        (LinkStyle.RELATIVE, "/api/v1/sharing-tasks?"),
        (LinkStyle.QUERY, "?"),
    ],
)
async def test_task_links_in_each_style(
    start_sim: StartSim, tenant: SimTenant, style: LinkStyle, prefix: str
) -> None:
    """Each style writes self, next and prev its way, and following next sees every task."""
    sim = await start_sim(tenant, SimConfig(next_links=style))
    _, page = await sim.call("GET", f"{TASKS}?limit=40&sort=name")
    links = page["links"]
    assert links["self"]["href"].startswith(prefix) and links["next"]["href"].startswith(prefix)
    assert "page=" in links["next"]["href"] and "sort=name" in links["next"]["href"]
    if style is not LinkStyle.ABSOLUTE:
        assert "127.0.0.1" not in links["next"]["href"]
    async with sim.session.get(urljoin(sim.at(TASKS), links["next"]["href"])) as resp:
        second = await resp.json()
    assert second["links"]["prev"]["href"].startswith(prefix)
    seen, last = await walk(sim, f"{TASKS}?limit=40", "sharingTasks")
    assert sorted(seen) == sorted(tenant.tasks) and len(seen) == len(tenant.tasks)
    assert "next" not in last["links"]


@pytest.mark.parametrize("empty", [True, False])
async def test_last_page_next_empty_or_absent(
    start_sim: StartSim, tenant: SimTenant, empty: bool
) -> None:
    """With empty_last_next the last page answers next {"href": ""}; without, no next."""
    sim = await start_sim(tenant, SimConfig(empty_last_next=empty))
    seen, last = await walk(sim, f"{TASKS}?limit=100", "sharingTasks")
    assert len(seen) == len(tenant.tasks)
    assert last["links"].get("next") == ({"href": ""} if empty else None)
    _, users = await sim.call("GET", f"{USERS}?limit=100")
    assert users["links"].get("next") == ({"href": ""} if empty else None)
    _, runs = await sim.call("GET", f"{TASKS}/{next(iter(tenant.tasks))}/executions")
    assert runs["links"].get("next") == ({"href": ""} if empty else None)


@pytest.mark.parametrize("style", [LinkStyle.RELATIVE, LinkStyle.QUERY])
async def test_users_links_follow_the_style(
    start_sim: StartSim, tenant: SimTenant, style: LinkStyle
) -> None:
    """The users list and the filter action write their links in the style too."""
    sim = await start_sim(tenant, SimConfig(next_links=style, empty_last_next=True))
    _, page = await sim.call("GET", f"{USERS}?limit=5")
    assert not page["links"]["next"]["href"].startswith("http")
    seen, last = await walk(sim, f"{USERS}?limit=5", "data")
    assert sorted(seen) == sorted(tenant.users) and last["links"]["next"] == {"href": ""}
    seen, _ = await walk(sim, f"{USERS}/actions/filter?limit=4", "data", method="POST")
    assert sorted(seen) == sorted(tenant.users)


async def test_execution_links_follow_the_style(start_sim: StartSim, tenant: SimTenant) -> None:
    """The executions list writes its next link in the style."""
    sim = await start_sim(tenant, SimConfig(next_links=LinkStyle.RELATIVE))
    tid = next(t for t, x in tenant.tasks.items() if x["statusCode"] != "DELETING")
    for _ in range(3):
        tenant.execute_task(tid)
    _, page = await sim.call("GET", f"{TASKS}/{tid}/executions?limit=2")
    assert page["links"]["next"]["href"].startswith(f"/api/v1/sharing-tasks/{tid}/executions?")
    seen, _ = await walk(sim, f"{TASKS}/{tid}/executions?limit=2", "executions")
    assert len(seen) == 3
