"""Crash test: SIGKILL a real `bulkshare apply` at random points, `resume`, and check the result.

Three jobs, each killed at `--points` points (`--job mix|execute|copy|both`; `both`, the
default, is mix and execute): `mix` deletes, disables, reassigns and tags (PATCHes and DELETEs);
`execute` runs report tasks (POST actions/execute, which nothing can compare: a resent one mails
the report twice); `copy` copies every live task of a second simulated tenant into the first
with app, user and space maps (POST creates, which a resend would double, then PATCHes).
`--owner-change-disables yes|no|both` sets the simulator's rule for an owner change (the
service's is not established), so the outcomes are proven under either.

For each point a fresh simulator serves the same seeded tenant (with a little latency, so the
run takes long enough for kills to land mid-run) and a fresh state directory is used. The apply
process is killed with SIGKILL after a random delay, the server is left to finish whatever it
had already received, and then the run is resumed (or, when the kill came before the run's
directory existed, applied again) until it exits 0. Some resumes are themselves killed first.

Kill points: an uninterrupted reference run on an identical tenant measures when the run
directory appears (startup and planning end) and when the process exits. A tenth of the points
(at least one) are drawn from the start-up phase, the rest stratified over the run phase: point
k of m gets a uniform delay in the k-th of m equal slices, so the run's start, middle and end
are all covered whatever the seed. A run-phase delay counts from the moment the point's own
run directory appears, so a slower start-up (a loaded machine) does not move it out of the run.

After each point: the tenant equals the reference run's final tenant (owner, enabled, tags,
app, executions and presence of every task; a copy is known by its provenance marker);
`bulkshare audit verify` exits 0 for every run; no task received more than one successful
write (PATCH or DELETE answered 2xx, per the simulator's timeline, which includes requests the
killed process never saw answered) and no task was executed more than once (the simulator's
executions, which likewise include executes never answered); every planned change has exactly
one `change` record; summary.json's counts equal the counts of those records. For a copy also:
no marker twice in the target, as many creates landed as the reference made, and `id-map.csv`
names every copy's source and target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.crash_checks import (
    KEY,
    PER_MINUTE,
    ClientGone,
    PointResult,
    Reference,
    Workdir,
    check,
    describe,
    executions,
    get_json,
    phase_of,
    quiesce,
    recorded_tasks,
    successful_creates,
    successful_writes,
    summarize,
    verify_audits,
    view,
)
from bench.crash_copy import copy_job_text, id_map_problems, target_tenant
from bench.makespan import busiest_active_owners
from bench.record import record
from bulkshare.audit import SEAL_EVENT, read_records
from bulkshare.plan import Plan
from bulkshare.sim import SimConfig, SimTenant, running_sim

TAG = "crash-bench"
JOBS = ("mix", "execute", "copy")
_YES_NO = {"yes": True, "no": False}


def job_text(owners: tuple[str, str]) -> str:
    """Deletes, disables, a reassignment and a tag: PATCHes (some merged) and DELETEs."""
    return (
        '[job]\nname = "crash-mix"\n\n'
        '[[operations]]\naction = "delete"\nwhere.status = "DELETING"\n\n'
        '[[operations]]\naction = "disable"\nwhere.task_errors = ["ORPHAN", "OWNER_DISABLED"]\n'
        "where.enabled = true\n\n"
        f'[[operations]]\naction = "reassign-owner"\nto = "{owners[1]}"\nenable = true\n'
        f'where.owner = "{owners[0]}"\n\n'
        f'[[operations]]\naction = "tag"\ntags = ["{TAG}"]\n'
        'where.type = ["chart-monitoring", "template-sharing"]\n'
    )


def execute_job_text() -> str:
    """Run every enabled report task now: one POST actions/execute each, none to be repeated."""
    return (
        '[job]\nname = "crash-execute"\n\n'
        '[[operations]]\naction = "execute"\nwhere.type = "template-sharing"\n'
        "where.enabled = true\n"
    )


@dataclass(frozen=True)
class Setup:
    """What every point shares: the tenant's recipe, the job and the simulator's behaviour."""

    kind: str  #: one of JOBS
    tasks: int
    seed: int
    latency_ms: int
    concurrency: int
    owner_change_disables: bool = True

    def tenant(self) -> SimTenant:
        """The tenant the job writes to (for a copy, the target)."""
        if self.kind == "copy":
            return target_tenant(self.seed)
        return SimTenant.seed(self.tasks, self.seed)

    def source(self) -> SimTenant | None:
        """The tenant a copy reads (None for the other jobs)."""
        return SimTenant.seed(self.tasks, self.seed) if self.kind == "copy" else None

    def job(self) -> tuple[str, str]:
        """The job's name and text."""
        if self.kind == "execute":
            return "crash-execute", execute_job_text()
        source = self.source()
        if source is not None:
            return "crash-copy", copy_job_text(source, self.tenant())
        return "crash-mix", job_text(busiest_active_owners(self.tenant()))

    def sim_config(self) -> SimConfig:
        return SimConfig(
            api_key=KEY,
            latency_ms=self.latency_ms,
            tier1_per_minute=PER_MINUTE,
            tier2_per_minute=PER_MINUTE,
            owner_change_disables=self.owner_change_disables,
        )

    @contextlib.asynccontextmanager
    async def sims(self, root: Path) -> AsyncIterator[tuple[Workdir, str]]:
        """Fresh simulators (the tenant, and a copy's source) and a work directory naming them."""
        source = self.source()
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(running_sim(self.tenant(), self.sim_config()))
            source_url = None
            if source is not None:
                source_url = await stack.enter_async_context(running_sim(source, self.sim_config()))
            yield Workdir(root, url, self.job(), self.concurrency, source_url), url

    @property
    def setting(self) -> str:
        """The tenant and its rules, as the figures name them."""
        size = (
            f"{self.tasks} source tasks copied into {self.tenant().tasks.__len__()}"
            if self.kind == "copy"
            else f"{self.tasks} tasks"
        )
        rule = "disables" if self.owner_change_disables else "keeps enabled"
        return (
            f"{size}, {self.latency_ms} ms latency, concurrency {self.concurrency}, "
            f"owner change {rule}"
        )


def point_problems(wd: Workdir, doc: dict[str, object], stats: dict[str, object], ref: Reference,
                   verified: dict[str, int]) -> list[str]:  # fmt: skip
    """check(), and for a copy the finished run's id map."""
    problems = check(wd, doc, stats, ref, verified)
    finished = [d for d in wd.run_dirs() if (d / "summary.json").exists()]
    return problems + (id_map_problems(finished[0], doc) if len(finished) == 1 else [])


async def reference_run(setup: Setup, root: Path) -> Reference:
    """Apply uninterrupted once, timing the start of the run and the end of the process."""
    async with setup.sims(root / "reference") as (wd, url), aiohttp.ClientSession() as http:
        start = time.monotonic()
        proc = await wd.spawn(*wd.apply_args())
        run_dir_at = None
        while proc.returncode is None:
            if run_dir_at is None and wd.run_dirs():
                run_dir_at = time.monotonic() - start
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.005)
        duration = time.monotonic() - start
        if proc.returncode != 0 or run_dir_at is None:
            raise SystemExit(f"reference apply exited {proc.returncode}; see {wd.log}")
        doc = await get_json(http, f"{url}/__sim/tenant")
        stats = await get_json(http, f"{url}/__sim/stats")
        plan = Plan.read(wd.run_dirs()[0] / "plan.json")
        methods = Counter(c.method for c in plan.changes)
        ref = Reference(
            view(doc), len(plan.changes), methods, run_dir_at, duration, successful_creates(stats)
        )
        problems = point_problems(wd, doc, stats, ref, await verify_audits(wd))
        if problems:
            raise SystemExit(f"the reference run itself fails its checks: {problems}")
        return ref


def kill_delays(ref: Reference, points: int, rng: random.Random) -> list[float]:
    """A tenth of the points (at least one) in start-up, the rest stratified over the run."""
    early = max(1, round(points / 10))
    late = points - early
    delays = [rng.uniform(k, k + 1) * ref.run_dir_at / early for k in range(early)]
    span = ref.duration - ref.run_dir_at
    delays += [ref.run_dir_at + rng.uniform(k, k + 1) * span / late for k in range(late)]
    return delays


async def crash_point(
    setup: Setup, root: Path, index: int, delay: float, resume_kill: float | None, ref: Reference
) -> PointResult:
    """Kill one apply after `delay` s, recover it, and check everything."""
    started = time.monotonic()
    where = root / f"point-{index:02d}"
    async with setup.sims(where) as (wd, url), aiohttp.ClientSession() as http:
        proc = await wd.spawn(*wd.apply_args())
        if delay < ref.run_dir_at:
            await asyncio.sleep(delay)
        else:
            # a run-phase point counts from the run's start here, not from the spawn: start-up
            # time varies with the machine's load, and the point should land in the run
            await _run_started(wd, proc)
            await asyncio.sleep(delay - ref.run_dir_at)
        exited_first = proc.returncode is not None
        if not exited_first:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        phase, records = phase_of(wd, exited_first)
        await quiesce(http, url, setup.latency_ms)
        in_doubt = landed_unrecorded(
            wd,
            await get_json(http, f"{url}/__sim/stats"),
            await get_json(http, f"{url}/__sim/tenant"),
        )
        recovery, resume_killed = await recover(wd, http, url, setup, resume_kill)
        doc = await get_json(http, f"{url}/__sim/tenant")
        stats = await get_json(http, f"{url}/__sim/stats")
        result = PointResult(index, delay, phase, records, in_doubt, recovery, resume_killed)
        if recovery[-1][1] != 0:
            result.problems.append(f"recovery never exited 0: {recovery}; see {wd.log}")
        result.problems += point_problems(wd, doc, stats, ref, await verify_audits(wd))
        result.sealed = sum(
            1
            for d in wd.run_dirs()
            if (d / "audit.jsonl").exists()
            for r in read_records(d / "audit.jsonl")
            if r.get("event") == SEAL_EVENT
        )
    result.seconds = time.monotonic() - started
    return result


async def _run_started(wd: Workdir, proc: asyncio.subprocess.Process) -> None:
    """Wait (polling, bounded) until the run directory exists or the process has ended."""
    for _ in range(24_000):
        if wd.run_dirs() or proc.returncode is not None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.005)


def landed_unrecorded(wd: Workdir, stats: dict[str, Any], doc: dict[str, Any]) -> int:
    """Writes, executes and creates the server applied that the killed run had not recorded."""
    recorded = recorded_tasks(wd)
    creates = successful_creates(stats)
    if creates:  # a copy: its records name the source tasks, its writes the copies
        return max(0, creates - len(recorded))
    landed = successful_writes(stats) + executions(doc)
    return len(set(landed) - recorded)


async def recover(
    wd: Workdir, http: aiohttp.ClientSession, url: str, setup: Setup, resume_kill: float | None
) -> tuple[list[tuple[str, int]], bool]:
    """Resume (or apply again, if no run began) until exit 0; the first resume maybe killed."""
    recovery: list[tuple[str, int]] = []
    resume_killed = False
    for _ in range(6):
        dirs = wd.run_dirs()
        args = ("resume", dirs[-1].name) if dirs else wd.apply_args()
        proc = await wd.spawn(*args)
        if resume_kill is not None and not resume_killed:
            await asyncio.sleep(resume_kill)
            resume_killed = proc.returncode is None
            if resume_killed:
                proc.send_signal(signal.SIGKILL)
        code = await proc.wait()
        recovery.append((args[0], code))
        if resume_killed and code == -signal.SIGKILL:
            await quiesce(http, url, setup.latency_ms)
            continue
        if code == 0:
            break
    return recovery, resume_killed


async def bench(setup: Setup, points: int) -> tuple[list[PointResult], Reference]:
    rng = random.Random(setup.seed)
    root = Path(tempfile.mkdtemp(prefix=f"bulkshare-crash-{setup.kind}-"))
    ref = await reference_run(setup, root)
    print(
        f"{setup.kind} reference ({setup.setting}): {ref.changes} changes "
        f"({dict(ref.methods)}), run dir after {ref.run_dir_at:.2f} s, "
        f"exit after {ref.duration:.2f} s",
        flush=True,
    )
    results = []
    for index, delay in enumerate(kill_delays(ref, points, rng)):
        # every fourth point also kills the first resume, somewhere in its run
        resume_kill = rng.uniform(0, ref.duration) if index % 4 == 3 else None
        result = await crash_point(setup, root, index, delay, resume_kill, ref)
        print(describe(result), flush=True)
        results.append(result)
    if all(not r.problems for r in results):
        shutil.rmtree(root)
    else:
        print(f"state directories and logs kept in {root}")
    return results, ref


def figure_name(job: str, disables: bool) -> str:
    """The BENCHMARKS.md row of a job under one owner-change rule."""
    name = "crash points survived" + ("" if job == "mix" else f", {job} job")
    return name + ("" if disables else ", owner change keeps enabled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20, help="kill points per job")
    parser.add_argument(
        "--job", choices=(*JOBS, "both"), default="both", help="both: mix and execute"
    )
    parser.add_argument(
        "--owner-change-disables",
        choices=(*_YES_NO, "both"),
        default="yes",
        help="the simulator's rule for an owner change (bulkshare sim --owner-change-disables)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--tasks", type=int, default=None, help="tenant size (default 1500; a copy's source 200)"
    )
    parser.add_argument("--latency-ms", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    if args.points < 2:
        parser.error("--points must be at least 2")
    logging.getLogger("bulkshare.sim.app").addFilter(ClientGone())
    command = "python -m bench.crash" + "".join(
        f" --{name.replace('_', '-')} {value}"
        for name, value in vars(args).items()
        if name == "points" or (name != "no_record" and value != parser.get_default(name))
    )
    failed = False
    rules = (
        (True, False)
        if args.owner_change_disables == "both"
        else (_YES_NO[args.owner_change_disables],)
    )
    for job in ("mix", "execute") if args.job == "both" else (args.job,):
        for disables in rules:
            start = time.monotonic()
            tasks = args.tasks or (200 if job == "copy" else 1500)
            setup = Setup(job, tasks, args.seed, args.latency_ms, args.concurrency, disables)
            results, ref = asyncio.run(bench(setup, args.points))
            summary = summarize(job, results, ref, setup.setting)
            print(f"crash points, {job}: {summary}; {time.monotonic() - start:.0f} s in all")
            if not args.no_record:
                record(figure_name(job, disables), command, summary)
            failed = failed or any(r.problems for r in results)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
