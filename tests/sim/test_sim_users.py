"""The users read subset: list with SCIM filters, get by id, and the filter action."""

from __future__ import annotations

from typing import Any

import pytest

from bulkshare.sim import SimTenant

from .conftest import StartSim, error_of

USERS = "/api/v1/users"


async def test_list_users_pages(start_sim: StartSim, tenant: SimTenant) -> None:
    """Following links.next.href lists every user once, sorted by name."""
    sim = await start_sim(tenant)
    seen: list[dict[str, Any]] = []
    url: str | None = sim.at(f"{USERS}?limit=7")
    while url:
        async with sim.session.get(url) as resp:
            page = await resp.json()
        seen += page["data"]
        url = page["links"].get("next", {}).get("href")
    assert sorted(u["id"] for u in seen) == sorted(tenant.users)
    assert [u["name"] for u in seen] == sorted(u["name"] for u in seen)
    assert seen[0]["links"]["self"]["href"] == f"{sim.url}{USERS}/{seen[0]['id']}"


async def test_scim_filter(start_sim: StartSim, tenant: SimTenant) -> None:
    """filter supports id eq, status eq, and / or with parentheses."""
    sim = await start_sim(tenant)
    ids = list(tenant.users)[:3]
    text = f'(id eq "{ids[0]}" or id eq "{ids[1]}" or id eq "{ids[2]}") and status eq "active"'
    _, page = await sim.call("GET", USERS, params={"filter": text, "limit": "100"})
    expected = {u for u in ids if tenant.users[u]["status"] == "active"}
    assert {u["id"] for u in page["data"]} == expected
    _, disabled = await sim.call(
        "GET", USERS, params={"filter": 'status eq "disabled"', "limit": "100"}
    )
    assert disabled["data"] and all(u["status"] == "disabled" for u in disabled["data"])


async def test_get_user(start_sim: StartSim, tenant: SimTenant) -> None:
    """A listed user is returned; an absent one is a 404."""
    sim = await start_sim(tenant)
    uid = next(iter(tenant.users))
    status, body = await sim.call("GET", f"{USERS}/{uid}")
    assert status == 200 and body["id"] == uid
    status, body = await sim.call("GET", f"{USERS}/no-such-user")
    assert status == 404
    error_of(body, 404)


async def test_orphan_owner_may_be_404(start_sim: StartSim, tenant: SimTenant) -> None:
    """Some ORPHAN tasks' owners are absent from the users API entirely."""
    sim = await start_sim(tenant)
    owner = next(t["owner"] for t in tenant.tasks.values() if t["owner"] not in tenant.users)
    assert (await sim.call("GET", f"{USERS}/{owner}"))[0] == 404


async def test_filter_action(start_sim: StartSim, tenant: SimTenant) -> None:
    """POST /users/actions/filter resolves up to 100 ids at once."""
    sim = await start_sim(tenant)
    ids = list(tenant.users)[:25]
    text = " or ".join(f'id eq "{u}"' for u in ids)
    status, page = await sim.call(
        "POST", f"{USERS}/actions/filter?limit=100", json={"filter": text}
    )
    assert status == 200
    assert {u["id"] for u in page["data"]} == set(ids)


async def test_filter_action_refuses_over_100_ids(start_sim: StartSim, tenant: SimTenant) -> None:
    """A filter naming more than 100 ids answers 400."""
    sim = await start_sim(tenant)
    text = " or ".join(f'id eq "u{i}"' for i in range(101))
    status, body = await sim.call("POST", f"{USERS}/actions/filter", json={"filter": text})
    assert status == 400
    assert "100" in error_of(body, 400)["detail"]


@pytest.mark.parametrize(
    "text", ["id eq", 'id eq "a" or', 'bogus eq "a"', 'id gt "a"', '(id eq "a"']
)
async def test_bad_filters_are_400(start_sim: StartSim, tenant: SimTenant, text: str) -> None:
    """Malformed SCIM filters answer 400."""
    sim = await start_sim(tenant)
    status, body = await sim.call("GET", USERS, params={"filter": text})
    assert status == 400
    error_of(body, 400)
