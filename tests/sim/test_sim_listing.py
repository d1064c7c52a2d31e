"""GET /api/v1/sharing-tasks: paging by links.next.href, filters, sorting, parameter checks."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from bulkshare.sim import SimTenant

from .conftest import TASKS, SimClient, StartSim, error_of


async def walk(sim: SimClient, first: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow links.next.href from `first`; return the ids seen and every page body."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    url: str | None = sim.at(first)
    while url:
        async with sim.session.get(url) as resp:
            assert resp.status == 200
            page = await resp.json()
        pages.append(page)
        ids += [t["id"] for t in page["sharingTasks"]]
        url = page["links"].get("next", {}).get("href")
    return ids, pages


async def test_paging_sees_every_task_once(start_sim: StartSim, tenant: SimTenant) -> None:
    """limit=100 pages followed by links.next.href cover every task exactly once."""
    sim = await start_sim(tenant)
    ids, pages = await walk(sim, f"{TASKS}?limit=100")
    assert ids == list(tenant.tasks)
    assert [p["currentPageCount"] for p in pages] == [100, 100, 100]
    assert all(p["totalCount"] == 300 for p in pages)
    assert "next" not in pages[-1]["links"] and "prev" not in pages[0]["links"]


async def test_links_are_absolute(start_sim: StartSim, tenant: SimTenant) -> None:
    """next and prev hrefs are absolute URLs on the host the client used, keeping the filters."""
    sim = await start_sim(tenant)
    _, pages = await walk(sim, f"{TASKS}?limit=50&type=sheet-sharing&type=chart-sharing")
    href = URL(pages[0]["links"]["next"]["href"])
    assert str(href.origin()) == sim.url and href.path == TASKS
    assert href.query.getall("type") == ["sheet-sharing", "chart-sharing"]
    assert pages[0]["links"]["next"]["type"] == "next"
    assert URL(pages[1]["links"]["prev"]["href"]).is_absolute()
    assert pages[0]["sharingTasks"][0]["links"]["self"]["href"].startswith(sim.url + TASKS + "/")


async def test_prev_link_returns_previous_page(start_sim: StartSim, tenant: SimTenant) -> None:
    """Following prev from the second page gives the first page again."""
    sim = await start_sim(tenant)
    _, first = await sim.call("GET", f"{TASKS}?limit=7&sort=-name")
    async with sim.session.get(first["links"]["next"]["href"]) as resp:
        second = await resp.json()
    async with sim.session.get(second["links"]["prev"]["href"]) as resp:
        again = await resp.json()
    assert [t["id"] for t in again["sharingTasks"]] == [t["id"] for t in first["sharingTasks"]]


async def test_paging_is_stable_under_deletes_and_patches(
    start_sim: StartSim, tenant: SimTenant
) -> None:
    """Deleting seen tasks and patching others between pages neither skips nor repeats a task."""
    sim = await start_sim(tenant)
    seen: list[str] = []
    url: str | None = sim.at(f"{TASKS}?limit=40")
    expected = list(tenant.tasks)
    while url:
        async with sim.session.get(url) as resp:
            page = await resp.json()
        batch = [t["id"] for t in page["sharingTasks"]]
        seen += batch
        for tid in batch[:10]:
            assert (await sim.call("DELETE", f"{TASKS}/{tid}"))[0] == 204
        for tid in batch[10:15]:
            ops = [{"op": "replace", "path": "/name", "value": "zz renamed"}]
            deleting = tenant.tasks[tid]["statusCode"] == "DELETING"  # refused: 404
            assert (await sim.call("PATCH", f"{TASKS}/{tid}", json=ops))[0] == (
                404 if deleting else 204
            )
        url = page["links"].get("next", {}).get("href")
    assert seen == expected


async def test_sorted_paging_is_stable_under_deletes(
    start_sim: StartSim, tenant: SimTenant
) -> None:
    """With a sort, deleting the last task of a page does not shift the next page."""
    sim = await start_sim(tenant)
    _, everything = await walk(sim, f"{TASKS}?limit=100&sort=ownername&sort=-datecreated")
    order = [t["id"] for p in everything for t in p["sharingTasks"]]
    _, first = await sim.call("GET", f"{TASKS}?limit=25&sort=ownername&sort=-datecreated")
    await sim.call("DELETE", f"{TASKS}/{first['sharingTasks'][-1]['id']}")
    async with sim.session.get(first["links"]["next"]["href"]) as resp:
        second = await resp.json()
    assert [t["id"] for t in second["sharingTasks"]] == order[25:50]


async def test_sort_orders(start_sim: StartSim, tenant: SimTenant) -> None:
    """sort=name ascends, sort=-name descends, sort=-enabled puts enabled tasks first."""
    sim = await start_sim(tenant)
    _, up = await walk(sim, f"{TASKS}?limit=100&sort=name")
    names = [t["name"] for p in up for t in p["sharingTasks"]]
    assert names == sorted(names)
    _, down = await walk(sim, f"{TASKS}?limit=100&sort=-name")
    assert [t["name"] for p in down for t in p["sharingTasks"]] == sorted(names, reverse=True)
    _, flags = await walk(sim, f"{TASKS}?limit=100&sort=-enabled")
    enabled = [t["enabled"] for p in flags for t in p["sharingTasks"]]
    assert enabled == sorted(enabled, reverse=True)


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("type=chart-monitoring", lambda t: t["type"] == "chart-monitoring"),
        (
            "type[]=chart-sharing&type[]=template-sharing",
            lambda t: t["type"] in ("chart-sharing", "template-sharing"),
        ),
        (  # comma-joined, as Qlik's own @qlik/api client sends arrays
            "type=chart-sharing,sheet-sharing",
            lambda t: t["type"] in ("chart-sharing", "sheet-sharing"),
        ),
        ("excludeDeleting=true", lambda t: t["statusCode"] != "DELETING"),
        ("excludeDeleting=false", lambda t: True),
    ],
)
async def test_filters(start_sim: StartSim, tenant: SimTenant, query: str, keep: Any) -> None:
    """Type and excludeDeleting filters keep exactly the matching tasks; totalCount counts them."""
    sim = await start_sim(tenant)
    ids, pages = await walk(sim, f"{TASKS}?limit=100&{query}")
    expected = [tid for tid, t in tenant.tasks.items() if keep(t)]
    assert ids == expected
    assert pages[0]["totalCount"] == len(expected)


async def test_owner_appid_ownername_filters(start_sim: StartSim, tenant: SimTenant) -> None:
    """owner, ownername and appid filter on the task's owner, ownerName and appId."""
    sim = await start_sim(tenant)
    sample = next(iter(tenant.tasks.values()))
    for param, field in (("owner", "owner"), ("appid", "appId"), ("ownername", "ownerName")):
        ids, _ = await walk(sim, f"{TASKS}?limit=100&{param}={sample[field]}")
        assert ids == [tid for tid, t in tenant.tasks.items() if t[field] == sample[field]]
        assert sample["id"] in ids


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "offset=-1",
        "type=report",
        "type=chart-sharing,report",
        "sort=owner",
        "excludeDeleting=maybe",
        "role=admin",
        "page=not-a-cursor",
        "next=a&prev=b",
    ],
)
async def test_bad_parameters_are_400(start_sim: StartSim, tenant: SimTenant, query: str) -> None:
    """Out-of-range or unknown parameter values answer 400 in the error shape."""
    sim = await start_sim(tenant)
    status, body = await sim.call("GET", f"{TASKS}?{query}")
    assert status == 400
    error_of(body, 400)


async def test_default_limit_and_offset(start_sim: StartSim, tenant: SimTenant) -> None:
    """Without limit a page holds 20 tasks; offset skips tasks."""
    sim = await start_sim(tenant)
    _, page = await sim.call("GET", TASKS)
    assert page["currentPageCount"] == 20
    _, shifted = await sim.call("GET", f"{TASKS}?offset=5&limit=3")
    assert [t["id"] for t in shifted["sharingTasks"]] == list(tenant.tasks)[5:8]
