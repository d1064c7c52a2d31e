"""Crash test: SIGKILL a real `bulkshare apply` at random points, `resume`, and check the result.

Two jobs, each killed at `--points` points (`--job mix|execute|both`, both by default): `mix`
deletes, disables, reassigns and tags (PATCHes and DELETEs); `execute` runs report tasks
(POST actions/execute, which nothing can compare: a resent one mails the report twice).

For each point a fresh simulator serves the same seeded tenant (with a little latency, so the
run takes long enough for kills to land mid-run) and a fresh state directory is used. The apply
process is killed with SIGKILL after a random delay, the server is left to finish whatever it
had already received, and then the run is resumed (or, when the kill came before the run's
directory existed, applied again) until it exits 0. Some resumes are themselves killed first.

Kill points: an uninterrupted reference run on an identical tenant measures when the run
directory appears (startup and planning end) and when the process exits. A tenth of the points
(at least one) are drawn from the start-up phase, the rest stratified over the run phase: point
k of m gets a uniform delay in the k-th of m equal slices, so the run's start, middle and end
are all covered whatever the seed.

After each point: the tenant equals the reference run's final tenant (owner, enabled, tags,
executions and presence of every task); `bulkshare audit verify` exits 0 for every run; no task
received more than one successful write (PATCH or DELETE answered 2xx, per the simulator's
timeline, which includes requests the killed process never saw answered) and no task was
executed more than once (the simulator's executions, which likewise include executes never
answered); every planned change has exactly one `change` record; summary.json's counts equal
the counts of those records.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.makespan import busiest_active_owners
from bench.record import record
from bulkshare.audit import SEAL_EVENT, read_records
from bulkshare.plan import Plan
from bulkshare.sim import SimConfig, SimTenant, running_sim

KEY_ENV = "BENCH_CRASH_KEY"
KEY = "bench-crash-key"
#: limits high enough that rate limiting plays no part: this bench is about crashes
PER_MINUTE = 600_000
TAG = "crash-bench"
WRITE_METHODS = ("PATCH", "DELETE")
TASK_WRITE = re.compile(r"^/api/v1/sharing-tasks/([^/]+)$")

View = dict[str, tuple[Any, ...]]
JOBS = ("mix", "execute")


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

    tasks: int
    seed: int
    latency_ms: int
    concurrency: int
    job: str

    def tenant(self) -> SimTenant:
        return SimTenant.seed(self.tasks, self.seed)

    @property
    def job_name(self) -> str:
        return "crash-execute" if "crash-execute" in self.job else "crash-mix"

    def sim_config(self) -> SimConfig:
        return SimConfig(
            api_key=KEY,
            latency_ms=self.latency_ms,
            tier1_per_minute=PER_MINUTE,
            tier2_per_minute=PER_MINUTE,
        )


class Workdir:
    """A state directory and a config naming the simulator as tenant `bench`."""

    def __init__(self, path: Path, url: str, setup: Setup) -> None:
        self.path = path
        self.state = path / "state"
        self.config = path / "bulkshare.toml"
        self.job = path / f"{setup.job_name}.toml"
        self.log = path / "bulkshare.log"
        path.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'state_dir = "state"\n[defaults]\nconcurrency = {setup.concurrency}\n'
            f'[tenants.bench]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
            f"[tenants.bench.limits]\ntier1_per_minute = {PER_MINUTE}\n"
            f"tier2_per_minute = {PER_MINUTE}\n"
        )
        self.job.write_text(setup.job)

    async def spawn(self, *args: str) -> asyncio.subprocess.Process:
        """Start `python -m bulkshare args... --config <config>`; stderr goes to the log."""
        env = {**os.environ, KEY_ENV: KEY}
        env.pop("BULKSHARE_CONFIG", None)
        with self.log.open("ab") as log:
            log.write(f"$ bulkshare {' '.join(args)}\n".encode())
            log.flush()
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bulkshare",
                *args,
                "--config",
                str(self.config),
                cwd=self.path,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    async def run(self, *args: str) -> int:
        proc = await self.spawn(*args)
        return await proc.wait()

    def apply_args(self) -> tuple[str, ...]:
        return ("apply", str(self.job), "--yes")

    def run_dirs(self) -> list[Path]:
        """Run directories that `resume` can find (their run.json exists), oldest first."""
        root = self.state / "runs"
        return (
            sorted(p for p in root.iterdir() if (p / "run.json").is_file()) if root.exists() else []
        )


def view(doc: dict[str, Any]) -> View:
    """The compared fields of every task present in a tenant document, with its executions."""
    runs = doc.get("executions") or {}
    return {
        t["id"]: (
            t.get("owner"),
            t.get("enabled"),
            tuple(t.get("tags") or []),
            len(runs.get(t["id"]) or []),
        )
        for t in doc["sharingTasks"]
    }


def executions(doc: dict[str, Any]) -> Counter[str]:
    """Per task, the executions the simulator recorded (answered or not)."""
    return Counter({k: len(v) for k, v in (doc.get("executions") or {}).items() if v})


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def quiesce(http: aiohttp.ClientSession, url: str, latency_ms: int) -> None:
    """Wait until the server has answered every request it received (two equal counts)."""
    gap = 3 * latency_ms / 1000 + 0.02
    last = -1
    for _ in range(200):
        now = (await get_json(http, f"{url}/__sim/stats"))["requests"]
        if now == last:
            return
        last = now
        await asyncio.sleep(gap)


def successful_writes(stats: dict[str, Any]) -> Counter[str]:
    """Per task, the PATCHes and DELETEs the server answered 2xx (seen or not by the client)."""
    writes: Counter[str] = Counter()
    for _, method, path, status in stats["timeline"]:
        match = TASK_WRITE.match(path)
        if method in WRITE_METHODS and match and 200 <= status < 300:
            writes[match.group(1)] += 1
    return writes


def recorded_tasks(wd: Workdir) -> set[str]:
    """Task ids with a `change` record in any run's audit log."""
    return {
        str(r["task_id"])
        for d in wd.run_dirs()
        if (d / "audit.jsonl").exists()
        for r in read_records(d / "audit.jsonl")
        if r.get("event") == "change"
    }


def phase_of(wd: Workdir, exited_first: bool) -> tuple[str, int]:
    """Where a kill landed, and how many change records the run had by then."""
    dirs = wd.run_dirs()
    records = len(recorded_tasks(wd))
    if exited_first:
        return "after-exit", records
    if not dirs:
        return "before-run", 0
    if (dirs[-1] / "summary.json").exists():
        return "finishing", records
    return ("run-start" if records == 0 else "mid-run"), records


@dataclass
class Reference:
    """The uninterrupted run: its final tenant, its size and its timing."""

    tenant: View
    changes: int
    methods: Counter[str]
    run_dir_at: float  #: seconds from spawn until run.json exists
    duration: float  #: seconds from spawn until exit


@dataclass
class PointResult:
    """What one kill point did and found."""

    index: int
    delay: float
    phase: str
    records_at_kill: int
    #: writes the server applied (2xx) that the killed process had not recorded
    landed_unrecorded: int
    recovery: list[tuple[str, int]]
    resume_killed: bool
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sealed: int = 0  #: audit lines torn by the kill and sealed on resume


def check(
    wd: Workdir,
    doc: dict[str, Any],
    stats: dict[str, Any],
    ref: Reference,
    verified: dict[str, int],
) -> list[str]:
    """Every property a point must have; the problems found (empty when all hold)."""
    problems: list[str] = []
    tenant = view(doc)
    if tenant != ref.tenant:
        differ = sorted(
            k for k in tenant.keys() | ref.tenant.keys() if tenant.get(k) != ref.tenant.get(k)
        )
        problems.append(f"tenant differs from the reference on {len(differ)} task(s): {differ[:3]}")
    doubles = {t: n for t, n in successful_writes(stats).items() if n > 1}
    if doubles:
        problems.append(
            f"{len(doubles)} task(s) written more than once: {list(doubles.items())[:3]}"
        )
    twice = {t: n for t, n in executions(doc).items() if n > 1}
    if twice:
        problems.append(f"{len(twice)} task(s) executed more than once: {list(twice.items())[:3]}")
    for run_id, code in verified.items():
        if code != 0:
            problems.append(f"audit verify {run_id} exited {code}")
    finished = [d for d in wd.run_dirs() if (d / "summary.json").exists()]
    if len(finished) != 1:
        problems.append(f"{len(finished)} finished runs, expected 1")
        return problems
    run_dir = finished[0]
    changes = [r for r in read_records(run_dir / "audit.jsonl") if r.get("event") == "change"]
    indices = Counter(r["index"] for r in changes)
    planned = len(Plan.read(run_dir / "plan.json").changes)
    if set(indices) != set(range(planned)) or max(indices.values(), default=1) != 1:
        dup = [i for i, n in indices.items() if n > 1]
        problems.append(
            f"change records cover {len(indices)} of {planned} planned changes, "
            f"duplicated: {dup[:5]}"
        )
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    counts = dict(Counter(r["outcome"] for r in changes))
    if summary["counts"] != counts:
        problems.append(f"summary counts {summary['counts']} != audit counts {counts}")
    if summary["exit_code"] != 0 or summary["planned"] != planned:
        problems.append(f"summary exit {summary['exit_code']}, planned {summary['planned']}")
    return problems


async def verify_audits(wd: Workdir) -> dict[str, int]:
    """`bulkshare audit verify` of every run that has an audit log: run id -> exit code."""
    return {
        d.name: await wd.run("audit", "verify", d.name)
        for d in wd.run_dirs()
        if (d / "audit.jsonl").exists()
    }


async def reference_run(setup: Setup, root: Path) -> Reference:
    """Apply uninterrupted once, timing the start of the run and the end of the process."""
    async with (
        running_sim(setup.tenant(), setup.sim_config()) as url,
        aiohttp.ClientSession() as http,
    ):
        wd = Workdir(root / "reference", url, setup)
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
        ref = Reference(
            view(doc),
            len(plan.changes),
            Counter(c.method for c in plan.changes),
            run_dir_at,
            duration,
        )
        problems = check(wd, doc, stats, ref, await verify_audits(wd))
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
    async with (
        running_sim(setup.tenant(), setup.sim_config()) as url,
        aiohttp.ClientSession() as http,
    ):
        wd = Workdir(root / f"point-{index:02d}", url, setup)
        proc = await wd.spawn(*wd.apply_args())
        await asyncio.sleep(delay)
        exited_first = proc.returncode is not None
        if not exited_first:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        phase, records = phase_of(wd, exited_first)
        await quiesce(http, url, setup.latency_ms)
        landed = successful_writes(await get_json(http, f"{url}/__sim/stats"))
        landed += executions(await get_json(http, f"{url}/__sim/tenant"))
        in_doubt = len(set(landed) - recorded_tasks(wd))
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
        doc = await get_json(http, f"{url}/__sim/tenant")
        stats = await get_json(http, f"{url}/__sim/stats")
        result = PointResult(index, delay, phase, records, in_doubt, recovery, resume_killed)
        if recovery[-1][1] != 0:
            result.problems.append(f"recovery never exited 0: {recovery}; see {wd.log}")
        result.problems += check(wd, doc, stats, ref, await verify_audits(wd))
        result.sealed = sum(
            1
            for d in wd.run_dirs()
            if (d / "audit.jsonl").exists()
            for r in read_records(d / "audit.jsonl")
            if r.get("event") == SEAL_EVENT
        )
    result.seconds = time.monotonic() - started
    return result


class ClientGone(logging.Filter):
    """Drop the simulator's log of a request whose client was killed while it was being read."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionResetError)


def describe(p: PointResult) -> str:
    steps = " ".join(f"{cmd}={code}" for cmd, code in p.recovery)
    where = f"{p.phase}" + (
        f" ({p.records_at_kill} recorded, {p.landed_unrecorded} landed unrecorded)"
        if p.phase in ("mid-run", "run-start", "finishing")
        else ""
    )
    verdict = "ok" if not p.problems else "FAIL: " + "; ".join(p.problems)
    return (
        f"point {p.index + 1:2d}: kill at {p.delay:6.3f} s, {where}; "
        f"{'resume killed too; ' if p.resume_killed else ''}"
        f"{f'{p.sealed} torn line(s) sealed; ' if p.sealed else ''}"
        f"{steps}; {verdict} ({p.seconds:.1f} s)"
    )


async def bench(
    job: str, points: int, seed: int, tasks: int, latency_ms: int, concurrency: int
) -> tuple[list[PointResult], Reference]:
    tenant = SimTenant.seed(tasks, seed)
    text = execute_job_text() if job == "execute" else job_text(busiest_active_owners(tenant))
    setup = Setup(tasks, seed, latency_ms, concurrency, text)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"bulkshare-crash-{job}-"))
    ref = await reference_run(setup, root)
    print(
        f"{job} reference: {ref.changes} changes ({dict(ref.methods)}), run dir after "
        f"{ref.run_dir_at:.2f} s, exit after {ref.duration:.2f} s",
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


def summarize(job: str, results: list[PointResult], ref: Reference, args: Any) -> str:
    """One line of figures for one job's points."""
    ok = sum(1 for r in results if not r.problems)
    phases = Counter(r.phase for r in results)
    in_doubt = sum(r.landed_unrecorded for r in results)
    doubles = sum(1 for r in results if any("more than once" in p for p in r.problems))
    audits_ok = all(not any("audit verify" in p for p in r.problems) for r in results)
    resume_kills = sum(1 for r in results if r.resume_killed)
    sealed = sum(r.sealed for r in results)
    landed = ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items()))
    what = "executes" if job == "execute" else "writes"
    return (
        f"{ok}/{len(results)} exact, audit {'verified' if audits_ok else 'FAILED'}, "
        f"{doubles} double {what} (kills: {landed}; {in_doubt} {what} landed unrecorded, "
        f"settled by resume without resending; "
        f"{resume_kills} resumes killed too; {sealed} torn audit lines sealed; "
        f"{ref.changes} changes per run ({job} job), "
        f"{args.tasks} tasks, {args.latency_ms} ms latency, concurrency {args.concurrency})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20, help="kill points per job")
    parser.add_argument("--job", choices=(*JOBS, "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=1500)
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
    for job in JOBS if args.job == "both" else (args.job,):
        start = time.monotonic()
        results, ref = asyncio.run(
            bench(job, args.points, args.seed, args.tasks, args.latency_ms, args.concurrency)
        )
        summary = summarize(job, results, ref, args)
        print(f"crash points, {job}: {summary}; {time.monotonic() - start:.0f} s in all")
        if not args.no_record:
            figure = "crash points survived" + ("" if job == "mix" else f", {job} job")
            record(figure, command, summary)
        failed = failed or any(r.problems for r in results)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
