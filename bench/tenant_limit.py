"""A 600-write job on a tenant whose tenant-wide limit is below one user's (issue 13).

The simulator runs as `bulkshare sim --tenant-users 2` would, with the documented limits scaled
down (window 3 s, 50 writes per window for each identity); bulkshare is configured with the
per-user limit, which is all an admin can know. With two users the tenant-wide limit is
floor(50 x 2 x 0.5) = 50 writes per window, the same as one user's, so a colleague's script (a
second identity) spends part of it: the share left to bulkshare is below its own limit, and
the 429s it gets are ones it could not foresee. A second round runs alone on
`--tenant-users 1` (25 writes per window). Figures: exit code, changes applied of those
planned, the 429 count in summary.json and at the server, the writes, and the makespan as
writes per window against the share left to bulkshare.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.makespan import KEY_ENV, apply  # one apply process, as makespan runs it
from bench.record import record
from bulkshare.sim import SimConfig, SimTenant, running_sim

WINDOW_S = 3.0
WRITES_PER_WINDOW = 50  #: one identity's tier 2 limit per window
OTHER_KEY = "colleague-key"  #: another identity: the sim tells identities apart by token
MISSING_TASK = "000000000000000000000000"  #: the colleague's PATCHes count, and change nothing


@dataclass(frozen=True)
class Scenario:
    """A tenant's users, and the share of its tenant-wide write limit another identity uses."""

    users: int
    other_per_window: int

    @property
    def tenant_per_window(self) -> int:
        """The tenant-wide writes per window: floor(per-user x users x 0.5)."""
        return math.floor(WRITES_PER_WINDOW * self.users * 0.5)

    @property
    def left_per_window(self) -> int:
        """The tenant-wide writes per window left to bulkshare."""
        return min(WRITES_PER_WINDOW, self.tenant_per_window - self.other_per_window)


def seeded(tasks: int, writes: int, seed: int) -> tuple[SimTenant, list[str]]:
    """A seeded tenant where exactly `writes` tasks are enabled; their ids."""
    tenant = SimTenant.seed(tasks, seed)
    live = [tid for tid, t in tenant.tasks.items() if t.get("statusCode") != "DELETING"]
    if len(live) < writes:
        raise SystemExit(f"--tasks {tasks} seeds only {len(live)} live tasks; need {writes}")
    chosen = live[:writes]
    wanted = set(chosen)
    for tid, task in tenant.tasks.items():
        task["enabled"] = task["enabledByUser"] = tid in wanted
    return tenant, chosen


def job_text(ids: list[str]) -> str:
    """Disable the chosen tasks: one write each."""
    listed = ", ".join(f'"{i}"' for i in ids)
    return (
        f'[job]\nname = "tenant-limit"\nmax_changes = {len(ids)}\n\n'
        f'[[operations]]\naction = "disable"\nwhere.enabled = true\nwhere.ids = [{listed}]\n'
    )


def write_config(workdir: Path, url: str) -> None:
    """bulkshare configured with the per-user limits (the tenant-wide one is unknown to it)."""
    tier2 = int(WRITES_PER_WINDOW * 60 / WINDOW_S)
    (workdir / "bulkshare.toml").write_text(
        f'state_dir = "state"\n[tenants.bench]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        f"[tenants.bench.limits]\ntier1_per_minute = {tier2 * 10}\n"
        f"tier2_per_minute = {tier2}\nwindow_s = {WINDOW_S}\n"
    )


async def colleague(http: aiohttp.ClientSession, url: str, per_window: int) -> None:
    """Another identity's writes, evenly spread: `per_window` of them every window, forever."""
    if per_window <= 0:
        return
    headers = {"Authorization": f"Bearer {OTHER_KEY}"}
    body = [{"op": "replace", "path": "/enabled", "value": False}]
    target = f"{url}/api/v1/sharing-tasks/{MISSING_TASK}"
    while True:
        async with http.patch(target, json=body, headers=headers) as resp:
            await resp.read()
        await asyncio.sleep(WINDOW_S / per_window)


def summary_of(workdir: Path) -> dict[str, Any]:
    """The one run's summary.json."""
    found = list((workdir / "state").rglob("summary.json"))
    if len(found) != 1:
        raise SystemExit(f"expected one summary.json, found {len(found)}")
    doc: dict[str, Any] = orjson.loads(found[0].read_bytes())
    return doc


def write_times(stats: dict[str, Any]) -> Iterator[float]:
    """When each of bulkshare's admitted writes was answered (the colleague's are 404s)."""
    for at, method, _path, status in stats["timeline"]:
        if method == "PATCH" and status not in (429, 401, 404):
            yield at


async def measure(tasks: int, writes: int, scenario: Scenario) -> dict[str, Any]:
    """Run the scenario once and return its figures."""
    tenant, ids = seeded(tasks, writes, 7)
    tier2 = int(WRITES_PER_WINDOW * 60 / WINDOW_S)
    config = SimConfig(
        tier1_per_minute=tier2 * 10,
        tier2_per_minute=tier2,
        window_s=WINDOW_S,
        tenant_users=scenario.users,
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with running_sim(tenant, config) as url, aiohttp.ClientSession() as http:
            write_config(workdir, url)
            job = workdir / "tenant-limit.toml"
            job.write_text(job_text(ids))
            other = asyncio.create_task(colleague(http, url, scenario.other_per_window))
            code = await apply(workdir, job)
            other.cancel()
            with suppress(asyncio.CancelledError):
                await other
            async with http.get(f"{url}/__sim/stats") as resp:
                stats = await resp.json()
        summary = summary_of(workdir)
    times = list(write_times(stats))
    disabled = sum(1 for i in ids if tenant.tasks[i]["enabled"] is False)
    span = max(times) - min(times) if times else 0.0
    return {
        "code": code,
        "applied": summary["counts"].get("applied", 0),
        "planned": summary["planned"],
        "throttled": summary["429s_seen"],
        "server_throttled": stats["throttled"],
        "writes": len(times),
        "disabled": disabled,
        "makespan": span,
        "per_window": (len(times) - 1) * WINDOW_S / span if span else float("nan"),
    }


def describe(fig: dict[str, Any], scenario: Scenario) -> str:
    """The BENCHMARKS.md result text of one round."""
    other = scenario.other_per_window
    colleague = f", a second identity sending {other} of them" if other else ""
    theirs = " (the second identity's included)" if other else ""
    return (
        f"exit {fig['code']}, {fig['applied']}/{fig['planned']} applied "
        f"({fig['disabled']} tasks disabled at the server, {fig['writes']} writes admitted), "
        f"{fig['throttled']} 429s in summary.json, {fig['server_throttled']} at the "
        f"server{theirs}; makespan {fig['makespan']:.1f} s = {fig['per_window']:.1f} writes "
        f"per window against the {scenario.left_per_window} left to bulkshare (tenant-wide "
        f"{scenario.tenant_per_window} writes per {WINDOW_S:g} s window{colleague}; "
        f"per-user {WRITES_PER_WINDOW}, as bulkshare is configured)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=600)
    parser.add_argument(
        "--other-per-window", type=int, default=20, help="the colleague's writes per window"
    )
    args = parser.parse_args()
    rounds = [
        ("two users, a colleague's writes too", Scenario(2, args.other_per_window)),
        ("one user", Scenario(1, 0)),
    ]
    failed = []
    for label, scenario in rounds:
        fig = asyncio.run(measure(args.tasks, args.writes, scenario))
        if fig["code"] != 0 or fig["applied"] != args.writes or fig["disabled"] != args.writes:
            failed.append(label)
        record(
            f"{args.writes} writes, tenant-wide limit below the user's: {label}",
            f"python -m bench.tenant_limit --writes {args.writes}",
            describe(fig, scenario),
        )
    if failed:
        raise SystemExit(f"not every change applied with exit 0: {', '.join(failed)}")


if __name__ == "__main__":
    main()
