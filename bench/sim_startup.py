"""How long a seeded simulator takes to be ready: seed N tasks, serve, answer the first list."""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.record import record
from bulkshare.sim import SimConfig, SimTenant, running_sim


async def ready_seconds(tasks: int, seed: int) -> float:
    """Seconds from nothing to the first answered list request."""
    start = time.perf_counter()
    tenant = SimTenant.seed(tasks, seed)
    async with running_sim(tenant, SimConfig()) as url, aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer bench"}
        async with session.get(f"{url}/api/v1/sharing-tasks?limit=100", headers=headers) as r:
            body = await r.json()
            assert r.status == 200 and body["totalCount"] == tasks
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, nargs="+", default=[10_000, 200_000])
    args = parser.parse_args()
    for n in args.tasks:
        seconds = asyncio.run(ready_seconds(n, 2026))
        record(
            f"sim ready, {n:,} tasks",
            f"python -m bench.sim_startup --tasks {n}",
            f"{seconds:.2f} s",
        )


if __name__ == "__main__":
    main()
