"""How fast `bulkshare apply` stops on SIGTERM when Tier 2 is spent for a 300 s window.

A tag job on a simulated tenant (20 ms latency, a 300 s window) is applied with a budget of 60
writes per window (the client's limits) and 16 requests in flight, so once the window's writes
are out every worker waits for budget. SIGTERM is sent with writes still going out, and again
with the window spent; the figure is the time from the signal to the process's exit (130).
Each trial also checks that no write went out after the signal but those in flight, that every
write is recorded, and that `resume` (limits lifted) finishes with each task written once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.record import record
from bulkshare.audit import read_records
from bulkshare.sim import SimConfig, SimTenant, running_sim

KEY = "bench-key"
KEY_ENV = "BULKSHARE_BENCH_KEY"
WINDOW_S = 300
TIER2_PER_MINUTE = 12  # 60 writes per 300 s window
CONCURRENCY = 16
JOB = '[job]\nname = "tag-all"\n[[operations]]\naction = "tag"\ntags = ["stop-bench"]\n'
JOB += "where.all = true\n"


def write_config(workdir: Path, url: str, limited: bool) -> Path:
    """The config naming the simulator as tenant `t`, with the 300 s budget or limits lifted."""
    config = workdir / "bulkshare.toml"
    limits = (
        f"tier2_per_minute = {TIER2_PER_MINUTE}\nwindow_s = {WINDOW_S}\n"
        if limited
        else "tier1_per_minute = 100000000\ntier2_per_minute = 100000000\n"
    )
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        f"[tenants.t.limits]\n{limits}"
    )
    return config


def records(workdir: Path) -> int:
    """Change records in the run's audit log so far."""
    runs = sorted((workdir / "state" / "runs").glob("*/audit.jsonl"))
    if not runs:
        return 0
    return sum(1 for r in read_records(runs[-1]) if r.get("event") == "change")


def run_dir(workdir: Path) -> Path:
    [run] = (workdir / "state" / "runs").iterdir()
    return run


async def bulkshare(workdir: Path, config: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bulkshare", *args, "--config", str(config), "-q",
        cwd=workdir, env={**os.environ, KEY_ENV: KEY}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def until(condition: Callable[[], bool], proc: asyncio.subprocess.Process) -> None:
    while not condition():
        if proc.returncode is not None:
            raise SystemExit(f"apply exited {proc.returncode} early")
        await asyncio.sleep(0.01)


def writes(timeline: list[list[Any]]) -> int:
    return sum(
        1 for _, method, path, _ in timeline if method == "PATCH" and "/sharing-tasks" in path
    )


async def trial(tasks: int, signal_at: int) -> dict[str, float]:
    """One apply stopped after `signal_at` records: stop latency and what was checked."""
    tenant = SimTenant.seed(tasks, 2026)
    # the client's budget is the service's limit here; the simulator lets the resume through
    config = SimConfig(api_key=KEY, latency_ms=20, window_s=WINDOW_S, tier2_per_minute=10**6)
    async with running_sim(tenant, config) as url:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            (workdir / "job.toml").write_text(JOB)
            limited = write_config(workdir, url, limited=True)
            proc = await bulkshare(workdir, limited, "apply", "job.toml", "--yes",
                                   "--concurrency", str(CONCURRENCY))  # fmt: skip
            await until(lambda: records(workdir) >= signal_at, proc)
            before = await _stats(url)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = await proc.communicate()
            stopped_s = time.monotonic() - started
            if proc.returncode != 130:
                raise SystemExit(f"apply exited {proc.returncode}: {err.decode()[-2000:]}")
            after = await _stats(url)
            late = writes(after["timeline"][len(before["timeline"]) :])
            recorded = records(workdir)
            if writes(after["timeline"]) != recorded or late > CONCURRENCY:
                raise SystemExit(f"{late} writes after the signal, {recorded} recorded")
            lifted = write_config(workdir, url, limited=False)
            resume = await bulkshare(workdir, lifted, "resume", run_dir(workdir).name)
            _, err = await resume.communicate()
            if resume.returncode != 0:
                raise SystemExit(f"resume exited {resume.returncode}: {err.decode()[-2000:]}")
            per_task = (await _stats(url))["writes_per_task"]
            if set(per_task.values()) != {1}:
                raise SystemExit("a task written twice")
    return {"stop_s": stopped_s, "late": late, "recorded": recorded, "tasks": len(per_task)}


async def _stats(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/__sim/stats") as resp:
        return await resp.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    budget = TIER2_PER_MINUTE * WINDOW_S // 60
    results: dict[str, list[dict[str, float]]] = {}
    for name, at in (("writes going out", budget // 3), ("window spent", budget)):
        results[name] = [asyncio.run(trial(args.tasks, at)) for _ in range(args.trials)]
        for r in results[name]:
            print(f"{name}: stopped in {r['stop_s']:.2f} s, {r['late']:.0f} in flight finished")
    parts = []
    for name, rs in results.items():
        times = [r["stop_s"] for r in rs]
        parts.append(f"{name}: median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    spent = results["window spent"][0]
    record(
        "stop on SIGTERM, Tier 2 spent in a 300 s window",
        f"python -m bench.stop_fast --tasks {args.tasks} --trials {args.trials}",
        f"{'; '.join(parts)} from the signal to exit 130 ({args.trials} trials each; "
        f"{budget} writes per window, concurrency {CONCURRENCY}, 20 ms latency; the "
        f"{int(spent['tasks']) - budget} writes still planned would otherwise wait ~{WINDOW_S} s "
        "for the window). Each trial: no write after the signal but those in flight, every "
        "write recorded, resume finished with each task written once",
    )


if __name__ == "__main__":
    main()
