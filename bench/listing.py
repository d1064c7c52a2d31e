"""Listing a large tenant: sequential cursor paging against offset pages fetched in parallel.

Both walk the whole list of a `bulkshare sim` with limits lifted, through bulkshare's client;
the planner keeps offset paging (falling back to the cursor if the tenant changes meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator

from bench.plan_scale import KEY, start_sim
from bench.record import record
from bulkshare.client import ApiClient, ApiKeyAuth, Page, Tier, TierBudgets
from bulkshare.plan.listing import PAGE_LIMIT, PARALLEL_PAGES, offset_pages
from bulkshare.vocab import TASKS_PATH


async def count(pages: AsyncIterator[Page]) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    async for page in pages:
        n += len(page.items)
    return n, n / (time.perf_counter() - start)


async def measure(url: str) -> tuple[tuple[int, float], tuple[int, float]]:
    budgets = TierBudgets.from_limits({Tier.TIER1: 10**8, Tier.TIER2: 10**8}, 300.0)
    async with ApiClient(url, ApiKeyAuth(KEY), budgets) as client:
        params = {"limit": PAGE_LIMIT}
        cursor = await count(client.pages(TASKS_PATH, params, "sharingTasks"))
        offset = await count(offset_pages(client, params))
    return cursor, offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200_000)
    args = parser.parse_args()
    proc, url = start_sim(args.tasks)
    try:
        (n1, cursor), (n2, offset) = asyncio.run(measure(url))
    finally:
        proc.terminate()
        proc.wait()
    assert n1 == n2 == args.tasks, (n1, n2)
    record(
        f"list {args.tasks:,} tasks: cursor vs offset pages",
        f"python -m bench.listing --tasks {args.tasks}",
        f"cursor {cursor:,.0f} tasks/s; offset, {PARALLEL_PAGES} pages in flight, "
        f"{offset:,.0f} tasks/s ({offset / cursor:.2f}x): the planner uses offset pages",
    )


if __name__ == "__main__":
    main()
