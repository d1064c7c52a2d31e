"""Two tenants for A -> B: another seed is another tenant (no id shared), two simulators run side
by side in one test, and two `bulkshare sim` processes with two seeds are two tenants."""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bulkshare.sim import SimTenant

from .conftest import TASKS, StartSim
from .test_sim_create import chart_body


def ids_of(tenant: SimTenant) -> set[str]:
    """Every id a tenant holds: its own, its tasks', users' and apps'."""
    return {tenant.tenant_id, *tenant.tasks, *tenant.users, *tenant.apps}


def test_other_seeds_share_no_id() -> None:
    """Tenants seeded 1 to 4 share no tenant, task, user or app id."""
    tenants = [SimTenant.seed(400, seed) for seed in range(1, 5)]
    for one, other in itertools.combinations(tenants, 2):
        assert not ids_of(one) & ids_of(other)
    assert all(len(t.apps) >= 6 for t in tenants)


async def test_two_tenants_side_by_side(start_sim: StartSim) -> None:
    """B accepts a task naming its own app and refuses one naming A's; A is left as it was."""
    a, b = SimTenant.seed(200, 1), SimTenant.seed(200, 2)
    sim_a, sim_b = await start_sim(a), await start_sim(b)
    assert sim_a.url != sim_b.url
    _, apps_a = await sim_a.call("GET", "/__sim/apps")
    _, apps_b = await sim_b.call("GET", "/__sim/apps")
    assert (apps_a["tenantId"], apps_b["tenantId"]) == (a.tenant_id, b.tenant_id)
    app_a, app_b = apps_a["apps"][0]["id"], apps_b["apps"][0]["id"]
    assert {x["id"] for x in apps_b["apps"]} == set(b.apps) and app_a not in b.apps
    status, _ = await sim_b.call("POST", TASKS, json=chart_body(app_a))
    assert status == 400
    status, made = await sim_b.call("POST", TASKS, json=chart_body(app_b))
    assert status == 201 and made["tenant"] == b.tenant_id and made["owner"] == b.admin_id
    assert len(a.tasks) == 200 and len(b.tasks) == 201
    me_a = (await sim_a.call("GET", "/api/v1/users/me"))[1]
    me_b = (await sim_b.call("GET", "/api/v1/users/me"))[1]
    assert (me_a["tenantId"], me_b["tenantId"]) == (a.tenant_id, b.tenant_id)


@asynccontextmanager
async def sim_process(seed: int) -> AsyncIterator[str]:
    """A `bulkshare sim` process of 50 tasks with `seed` on a free port; yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bulkshare", "sim", "--port", "0"),
        *("--tasks", "50", "--seed", str(seed)),
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        match = re.search(r"on (http://\S+)", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.terminate()
        await proc.wait()


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_two_sim_processes_are_two_tenants() -> None:
    """`bulkshare sim --seed 1` and `--seed 2` on two ports serve tenants with no id in common."""
    async with (
        sim_process(1) as url_a,
        sim_process(2) as url_b,
        aiohttp.ClientSession() as session,
    ):
        docs = [await _get(session, f"{url}/__sim/tenant") for url in (url_a, url_b)]
        apps = [await _get(session, f"{url}/__sim/apps") for url in (url_a, url_b)]
    held = [
        {doc["tenantId"], *(t["id"] for t in doc["sharingTasks"]), *(a["id"] for a in app["apps"])}
        for doc, app in zip(docs, apps, strict=True)
    ]
    assert len(docs[0]["sharingTasks"]) == len(docs[1]["sharingTasks"]) == 50
    assert not held[0] & held[1]
    assert docs[0]["tenantId"] == SimTenant.seed(50, 1).tenant_id
