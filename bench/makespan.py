"""Write makespan at the window limit: one apply, then two applies at once on one identity.

The simulator runs the documented limits scaled down (window 3 s, 50 writes and 500 reads per
window); bulkshare is configured with the same limits. Figures: 429s seen by the server, and
the makespan (first write to last) against the window minimum (ceil(W / L) - 1) * window_s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.record import record
from bulkshare.sim import SimConfig, SimTenant, running_sim

WINDOW_S = 3.0
WRITES_PER_WINDOW = 50
KEY_ENV = "BENCH_SIM_KEY"
KEY = "bench-key"


def job_text(name: str, types: list[str], reassign: tuple[str, str] | None) -> str:
    """A job mixing the three seed actions over the given task types."""
    where_type = f"where.type = {types!r}\n".replace("'", '"')
    text = (
        f'[job]\nname = "{name}"\n\n'
        f'[[operations]]\naction = "delete"\nwhere.status = "DELETING"\n{where_type}\n'
        '[[operations]]\naction = "disable"\nwhere.task_errors = ["ORPHAN", "OWNER_DISABLED"]\n'
        f"where.enabled = true\n{where_type}\n"
    )
    if reassign:
        text += (
            f'[[operations]]\naction = "reassign-owner"\nto = "{reassign[1]}"\nenable = true\n'
            f'where.owner = "{reassign[0]}"\n{where_type}\n'
        )
    return text


def busiest_active_owners(tenant: SimTenant) -> tuple[str, str]:
    """The two active users owning the most tasks: (from, to) for a reassignment."""
    owners = Counter(str(t.get("owner")) for t in tenant.tasks.values())
    active = [
        o for o, _ in owners.most_common() if tenant.users.get(o, {}).get("status") == "active"
    ]
    return active[0], active[1]


async def apply(workdir: Path, job: Path) -> int:
    """Run one `bulkshare apply --yes` process; return its exit code."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkshare",
        "apply",
        str(job),
        "--yes",
        "-q",
        "--config",
        str(workdir / "bulkshare.toml"),
        cwd=workdir,
        env={**os.environ, KEY_ENV: KEY},
        stdout=asyncio.subprocess.DEVNULL,
    )
    return await proc.wait()


def write_config(workdir: Path, url: str) -> None:
    tier2 = int(WRITES_PER_WINDOW * 60 / WINDOW_S)
    (workdir / "bulkshare.toml").write_text(
        f'state_dir = "state"\n[tenants.bench]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        f"[tenants.bench.limits]\ntier1_per_minute = {tier2 * 10}\n"
        f"tier2_per_minute = {tier2}\nwindow_s = {WINDOW_S}\n"
    )


def makespan(stats: dict[str, Any]) -> tuple[int, float]:
    """(writes, first write to last write) from the simulator's timeline."""
    times = [
        row[0]
        for row in stats["timeline"]
        if row[1] in ("PATCH", "DELETE") and row[3] not in (429, 401)
    ]
    return len(times), max(times) - min(times)


async def measure(tasks: int, pair: bool) -> dict[str, Any]:
    """Run the scenario once and return its figures."""
    tenant = SimTenant.seed(tasks, 7)
    owners = busiest_active_owners(tenant)
    tier2 = int(WRITES_PER_WINDOW * 60 / WINDOW_S)
    config = SimConfig(
        tier1_per_minute=tier2 * 10, tier2_per_minute=tier2, window_s=WINDOW_S, api_key=KEY
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with running_sim(tenant, config) as url, aiohttp.ClientSession() as http:
            write_config(workdir, url)
            if pair:
                jobs = [
                    ("pair-a", ["sheet-sharing", "chart-monitoring"], None),
                    ("pair-b", ["chart-sharing", "template-sharing"], owners),
                ]
            else:
                jobs = [
                    (
                        "mix",
                        ["sheet-sharing", "chart-monitoring", "chart-sharing", "template-sharing"],
                        owners,
                    )
                ]
            paths = []
            for name, types, reassign in jobs:
                path = workdir / f"{name}.toml"
                path.write_text(job_text(name, types, reassign))
                paths.append(path)
            codes = await asyncio.gather(*(apply(workdir, p) for p in paths))
            async with http.get(f"{url}/__sim/stats") as resp:
                stats = await resp.json()
    writes, span = makespan(stats)
    minimum = (math.ceil(writes / WRITES_PER_WINDOW) - 1) * WINDOW_S
    return {
        "codes": codes,
        "writes": writes,
        "makespan": span,
        "minimum": minimum,
        "ratio": span / minimum if minimum else float("nan"),
        "throttled": stats["throttled"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000)
    args = parser.parse_args()
    for pair in (False, True):
        fig = asyncio.run(measure(args.tasks, pair))
        label = "two applies at once" if pair else "one apply"
        assert all(c == 0 for c in fig["codes"]), fig
        record(
            f"write makespan at the limit, {label}",
            f"python -m bench.makespan --tasks {args.tasks}",
            f"{fig['writes']} writes, {fig['throttled']} 429s, makespan {fig['makespan']:.2f} s "
            f"vs window minimum {fig['minimum']:.0f} s = {fig['ratio']:.3f}x "
            f"(window {WINDOW_S:g} s, {WRITES_PER_WINDOW} writes per window)",
        )


if __name__ == "__main__":
    main()
