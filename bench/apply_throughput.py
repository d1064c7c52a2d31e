"""Apply throughput with the limits lifted: bulkshare against a bare aiohttp loop.

Both send the same PATCHes (from one saved plan), each followed by a read of its task (the
read-back every write gets), at the same concurrency to the same simulator process; the rate
is PATCHes per second between the first and the last PATCH the server saw, so neither
start-up nor the summary at the end counts. The two take turns for a few rounds and the
figure is the median round: on a shared two-core machine one round alone says little.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.plan_scale import KEY, KEY_ENV, start_sim
from bench.record import record


def tag_all_job(workdir: Path) -> Path:
    """A job that tags every task: one PATCH per task."""
    job = workdir / "tag-all.toml"
    job.write_text(
        '[job]\nname = "tag-all"\n[[operations]]\naction = "tag"\n'
        'tags = ["bench"]\nwhere.all = true\n'
    )
    return job


def write_config(workdir: Path, url: str) -> Path:
    config = workdir / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.big]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        "[tenants.big.limits]\ntier1_per_minute = 100000000\ntier2_per_minute = 100000000\n"
    )
    return config


def bulkshare(config: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulkshare", *args, "--config", str(config), "-q"],
        env={**os.environ, KEY_ENV: KEY},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bulkshare {args[0]} failed: {done.stderr[-2000:]}")


async def bare_loop(url: str, changes: list[dict[str, Any]], concurrency: int) -> None:
    """The careful hand-written loop: a semaphore, a session, each PATCH and then the read of
    its task that the contract asks of every write (what the task really became)."""
    slots = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(change: dict[str, Any]) -> None:
            req = change["request"]
            # one slot for the write and its read, as a worker holds: released in between,
            # the slot would go to the next PATCH and every read would wait for the last one
            async with slots:
                async with session.patch(
                    f"{url}/api{req['path']}", data=orjson.dumps(req["body"]), headers=headers
                ) as resp:
                    await resp.read()
                    assert resp.status == 204, resp.status
                async with session.get(f"{url}/api{req['path']}", headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

        await asyncio.gather(*(send(c) for c in changes))


async def patch_rate(url: str) -> tuple[int, float]:
    """(PATCHes, PATCHes per second) from the server's timeline since the last reset."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/__sim/stats") as resp:
            stats = await resp.json()
        async with session.post(f"{url}/__sim/reset-stats"):
            pass
    times = [row[0] for row in stats["timeline"] if row[1] == "PATCH" and row[3] == 204]
    return len(times), len(times) / (max(times) - min(times))


async def reset(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/__sim/reset-stats"):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="bare loop, then bulkshare, N times")
    args = parser.parse_args()
    proc, url = start_sim(args.tasks)
    rounds: list[tuple[float, float, float]] = []  # (bare rate, bulkshare rate, bulkshare wall)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            config = write_config(workdir, url)
            job = tag_all_job(workdir)
            plan_file = workdir / "plan.json"
            bulkshare(config, "plan", str(job), "--out", str(plan_file), "--format", "json")
            changes = orjson.loads(plan_file.read_bytes())["changes"]
            for _ in range(args.rounds):
                rounds.append(one_round(url, config, plan_file, changes, args.concurrency))
    finally:
        proc.terminate()
        proc.wait()
    ratios = [ours / bare for bare, ours, _ in rounds]
    bare_rate = statistics.median(bare for bare, _, _ in rounds)
    ours_rate = statistics.median(ours for _, ours, _ in rounds)
    wall = statistics.median(wall for _, _, wall in rounds)
    each = ", ".join(f"{r:.2f}x" for r in ratios)
    record(
        f"apply throughput, limits lifted, concurrency {args.concurrency}",
        f"python -m bench.apply_throughput --tasks {args.tasks}",
        f"bulkshare {ours_rate:,.0f} PATCH/s vs bare aiohttp loop {bare_rate:,.0f} PATCH/s = "
        f"{statistics.median(ratios):.2f}x (each PATCH read back by both; median of "
        f"{len(rounds)} rounds, one of each per round: {each}; {len(changes):,} PATCHes "
        f"each; bulkshare process {wall:.1f} s in all)",
    )


def one_round(
    url: str, config: Path, plan_file: Path, changes: list[dict[str, Any]], concurrency: int
) -> tuple[float, float, float]:
    """The bare loop, then `bulkshare apply` of the same plan: (bare rate, our rate, our wall)."""
    asyncio.run(reset(url))
    asyncio.run(bare_loop(url, changes, concurrency))
    bare_n, bare_rate = asyncio.run(patch_rate(url))
    start = time.perf_counter()
    bulkshare(
        config, "apply", str(plan_file), "--yes", "--no-verify", "--concurrency", str(concurrency)
    )
    wall = time.perf_counter() - start
    ours_n, ours_rate = asyncio.run(patch_rate(url))
    assert bare_n == ours_n == len(changes), (bare_n, ours_n, len(changes))
    return bare_rate, ours_rate, wall


if __name__ == "__main__":
    main()
