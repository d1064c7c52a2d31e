"""Faults, statistics, control routes, persistence, and the server helpers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiohttp
import orjson

from bulkshare import sim as sim_package
from bulkshare.sim import SimConfig, SimTenant, running_sim
from bulkshare.sim.faults import Fault, FaultPlan

from .conftest import TASKS, StartSim


async def test_stats_count_writes_per_task(start_sim: StartSim, tenant: SimTenant) -> None:
    """Stats count requests per method, writes per task, and keep a timeline."""
    sim = await start_sim(tenant)
    a, b = list(tenant.tasks)[:2]
    ops = [{"op": "replace", "path": "/tags", "value": []}]
    await sim.call("PATCH", f"{TASKS}/{a}", json=ops)
    await sim.call("PATCH", f"{TASKS}/{a}", json=ops)
    await sim.call("POST", f"{TASKS}/actions/execute", json={"sharingTaskID": b})
    await sim.call("GET", f"{TASKS}/{b}")
    stats = await sim.stats()
    assert stats["requests"] == 4 and stats["by_method"] == {"PATCH": 2, "POST": 1, "GET": 1}
    assert stats["writes"] == 3 and stats["writes_per_task"] == {a: 2, b: 1}
    assert stats["throttled"] == 0 and stats["throttled_by_tier"] == {}
    assert stats["timeline"][0][1:] == ["PATCH", f"{TASKS}/{a}", 204]
    assert await sim.call("POST", "/__sim/reset-stats") == (204, None)
    assert (await sim.stats())["requests"] == 0


async def test_control_routes_need_no_auth(start_sim: StartSim, tenant: SimTenant) -> None:
    """/__sim/ routes answer without a token and are not counted."""
    sim = await start_sim(tenant, token=None)
    status, doc = await sim.call("GET", "/__sim/tenant")
    assert status == 200 and len(doc["sharingTasks"]) == 300 and doc["users"]
    assert (await sim.stats())["requests"] == 0


async def test_faults_are_deterministic_and_of_three_kinds(start_sim: StartSim) -> None:
    """With fault_rate 1 every write faults: 503 leaves the task, 500 and drops apply the change."""
    tenant = SimTenant.seed(60, 2)
    sim = await start_sim(tenant, SimConfig(fault_rate=1.0, seed=5))
    outcomes: Counter[str] = Counter()
    live = [t for t, task in tenant.tasks.items() if task["statusCode"] != "DELETING"]
    for tid in live[:30]:
        try:
            status, _ = await sim.call(
                "PATCH", f"{TASKS}/{tid}", json=[{"op": "replace", "path": "/name", "value": "X"}]
            )
        except aiohttp.ServerDisconnectedError:
            outcomes["dropped"] += 1
            assert tenant.tasks[tid]["name"] == "X"
            continue
        outcomes[str(status)] += 1
        assert (tenant.tasks[tid]["name"] == "X") == (status == 500)
    assert set(outcomes) == {"503", "500", "dropped"}
    statuses = Counter(row[3] for row in (await sim.stats())["timeline"])
    assert statuses[0] == outcomes["dropped"]


def test_fault_plan_repeats() -> None:
    """The same seed draws the same faults; rate 0 never faults; reads are never drawn."""
    draws = [FaultPlan(0.3, 9).draw("PATCH", f"/t/{i}") for i in range(200)]
    assert draws == [FaultPlan(0.3, 9).draw("PATCH", f"/t/{i}") for i in range(200)]
    assert 30 < sum(d is not Fault.NONE for d in draws) < 90
    assert FaultPlan(0.0, 9).draw("PATCH", "/t/1") is Fault.NONE


async def test_persist_round_trip(tmp_path: Path) -> None:
    """With persist_path, changes reach the file, which loads back as the same tenant."""
    path = tmp_path / "sim-tenant.json"
    tenant = SimTenant.seed(40, 8)
    tid = next(iter(tenant.tasks))
    async with (
        running_sim(tenant, SimConfig(persist_path=path)) as url,
        aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as session,
    ):
        assert path.exists()
        async with session.delete(f"{url}{TASKS}/{tid}") as resp:
            assert resp.status == 204
    saved = SimTenant.load(path)
    assert tid not in saved.tasks
    assert saved.to_document() == orjson.loads(tenant.dumps())


async def test_running_sim_yields_loopback_url() -> None:
    """running_sim serves on 127.0.0.1 and stops on exit."""
    async with running_sim(SimTenant.seed(5, 1)) as url:
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session, session.get(f"{url}/__sim/stats") as resp:
            assert resp.status == 200


def test_public_surface() -> None:
    """The package exports exactly its documented API."""
    assert sorted(sim_package.__all__) == [
        "Answer",
        "LinkStyle",
        "SimCaller",
        "SimConfig",
        "SimTenant",
        "make_app",
        "running_sim",
        "serve",
    ]
