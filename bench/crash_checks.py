"""What bench/crash.py checks after each kill point: the work directory it runs in, the tenant
compared with the reference run's, writes and executions counted on the server, the run files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bulkshare.audit import read_records
from bulkshare.copy.body import app_of
from bulkshare.copy.marker import is_marker
from bulkshare.plan import Plan

__all__ = [
    "KEY",
    "KEY_ENV",
    "PER_MINUTE",
    "ClientGone",
    "PointResult",
    "Reference",
    "View",
    "Workdir",
    "check",
    "describe",
    "executions",
    "get_json",
    "phase_of",
    "quiesce",
    "recorded_tasks",
    "successful_writes",
    "summarize",
    "verify_audits",
    "view",
]

KEY_ENV = "BENCH_CRASH_KEY"
KEY = "bench-crash-key"
#: limits high enough that rate limiting plays no part: this bench is about crashes
PER_MINUTE = 600_000
#: the tenant a run writes to; a copy reads its source from tenant `src`
TENANT = "bench"
WRITE_METHODS = ("PATCH", "DELETE")
TASK_WRITE = re.compile(r"^/api/v1/sharing-tasks/([^/]+)$")
TASKS = "/api/v1/sharing-tasks"

View = dict[str, tuple[Any, ...]]


class Workdir:
    """A state directory and a config naming the simulator as tenant `bench` (and `src`)."""

    def __init__(
        self, path: Path, url: str, job: tuple[str, str], concurrency: int, source: str | None
    ) -> None:
        self.path = path
        self.state = path / "state"
        self.config = path / "bulkshare.toml"
        self.job = path / f"{job[0]}.toml"
        self.log = path / "bulkshare.log"
        path.mkdir(parents=True, exist_ok=True)
        tenants = [(TENANT, url)] + ([("src", source)] if source else [])
        self.config.write_text(
            f'state_dir = "state"\n[defaults]\nconcurrency = {concurrency}\n'
            + "".join(
                f'[tenants.{name}]\nurl = "{at}"\napi_key_env = "{KEY_ENV}"\n'
                f"[tenants.{name}.limits]\ntier1_per_minute = {PER_MINUTE}\n"
                f"tier2_per_minute = {PER_MINUTE}\n"
                for name, at in tenants
            )
        )
        self.job.write_text(job[1])

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
        return ("apply", str(self.job), "--yes", "--tenant", TENANT)

    def run_dirs(self) -> list[Path]:
        """Run directories that `resume` can find (their run.json exists), oldest first."""
        root = self.state / "runs"
        return (
            sorted(p for p in root.iterdir() if (p / "run.json").is_file()) if root.exists() else []
        )


def view(doc: dict[str, Any]) -> View:
    """The compared fields of every task present, with its executions: a copy keyed by its
    provenance marker (its id differs from run to run), any other task by its id."""
    runs = doc.get("executions") or {}
    return {
        _key(t): (
            t.get("owner"),
            t.get("enabled"),
            tuple(tag for tag in t.get("tags") or [] if not is_marker(tag)),
            app_of(t),
            len(runs.get(t["id"]) or []),
        )
        for t in doc["sharingTasks"]
    }


def _key(task: dict[str, Any]) -> str:
    """A copy's source task (its marker's last part: the source's port differs per point)."""
    marker = next((str(t) for t in task.get("tags") or () if is_marker(t)), None)
    return str(task["id"]) if marker is None else f"copy of {marker.rsplit(':', 1)[1]}"


def doubled_markers(doc: dict[str, Any]) -> list[str]:
    """Provenance markers carried by more than one task (a copy made twice)."""
    found = Counter(_key(t) for t in doc["sharingTasks"] if _key(t) != t["id"])
    return [m for m, n in found.items() if n > 1]


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


def successful_creates(stats: dict[str, Any]) -> int:
    """The creates (POST of the task list) the server answered 2xx."""
    return sum(
        1 for _, m, p, s in stats["timeline"] if m == "POST" and p == TASKS and s // 100 == 2
    )


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
    #: tasks the target gained (the copies): each made by exactly one create
    created: int = 0


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
    problems = _tenant_problems(doc, stats, ref)
    for run_id, code in verified.items():
        if code != 0:
            problems.append(f"audit verify {run_id} exited {code}")
    finished = [d for d in wd.run_dirs() if (d / "summary.json").exists()]
    if len(finished) != 1:
        problems.append(f"{len(finished)} finished runs, expected 1")
        return problems
    return problems + _run_problems(finished[0])


def _tenant_problems(doc: dict[str, Any], stats: dict[str, Any], ref: Reference) -> list[str]:
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
    if doubled := doubled_markers(doc):
        problems.append(f"{len(doubled)} task(s) copied more than once: {doubled[:3]}")
    if (creates := successful_creates(stats)) != ref.created:
        problems.append(f"{creates} creates landed, expected {ref.created}")
    return problems


def _run_problems(run_dir: Path) -> list[str]:
    problems: list[str] = []
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


def _doubled(problem: str) -> bool:
    return "more than once" in problem or "creates landed" in problem


def summarize(job: str, results: list[PointResult], ref: Reference, setting: str) -> str:
    """One line of figures for one job's points; `setting` names the tenant and its rules."""
    ok = sum(1 for r in results if not r.problems)
    phases = Counter(r.phase for r in results)
    in_doubt = sum(r.landed_unrecorded for r in results)
    doubles = sum(
        1
        for r in results
        if any("more than once" in p or "creates landed" in p for p in r.problems)
    )
    audits_ok = all(not any("audit verify" in p for p in r.problems) for r in results)
    resume_kills = sum(1 for r in results if r.resume_killed)
    sealed = sum(r.sealed for r in results)
    landed = ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items()))
    what = {"execute": "executes", "copy": "creates or writes"}.get(job, "writes")
    return (
        f"{ok}/{len(results)} exact, audit {'verified' if audits_ok else 'FAILED'}, "
        f"{doubles} double {what} (kills: {landed}; {in_doubt} {what} landed unrecorded, "
        f"settled by resume without resending; "
        f"{resume_kills} resumes killed too; {sealed} torn audit lines sealed; "
        f"{ref.changes} changes per run ({job} job), {setting})"
    )
