"""Copy of 1,000 tasks between two `bulkshare sim` processes with app and user maps, at the limit.

Source a and target b are separate `bulkshare sim` processes with the documented limits scaled
down (a short window); bulkshare is configured with the same limits. Checked: every selected
task exists exactly once in b (by its provenance marker) with mapped app, owner and recipients
and `enabled` as in a; no execution triggered; 0 x 429; `id-map.csv` complete; a rerun writes
nothing. Figure: the write makespan (first write to last) against the window minimum
(ceil(W / L) - 1) * window_s for the W writes it needed (as bench/makespan.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.record import record
from bulkshare.copy.body import app_of
from bulkshare.copy.marker import MARKER_PREFIX, marker_for, source_name
from bulkshare.sim import SimTenant

KEY_ENV = "BENCH_COPY_KEY"
KEY = "bench-copy-key"
SOURCE_SEED, TARGET_SEED = 1, 2
#: tasks the target has before the copy (its users are the user map's targets)
TARGET_TASKS = 200
WRITES = ("POST", "PATCH", "DELETE")
TASKS = "/api/v1/sharing-tasks"

Json = dict[str, Any]


@dataclass(frozen=True)
class Limits:
    """The limits both sims run and bulkshare is configured with."""

    window_s: float
    writes_per_window: int

    @property
    def tier2_per_minute(self) -> int:
        return int(self.writes_per_window * 60 / self.window_s)

    @property
    def tier1_per_minute(self) -> int:
        return self.tier2_per_minute * 10

    def sim_flags(self) -> list[str]:
        return [
            f"--tier1-per-minute={self.tier1_per_minute}",
            f"--tier2-per-minute={self.tier2_per_minute}",
            f"--window-s={self.window_s}",
        ]

    def config_lines(self) -> str:
        return (
            f"tier1_per_minute = {self.tier1_per_minute}\n"
            f"tier2_per_minute = {self.tier2_per_minute}\nwindow_s = {self.window_s}\n"
        )


def seed_size(selected: int) -> int:
    """The seeded tenant size whose tasks not in DELETING number exactly `selected`."""
    for size in range(selected, selected * 2):
        tenant = SimTenant.seed(size, SOURCE_SEED)
        if sum(t["statusCode"] != "DELETING" for t in tenant.tasks.values()) == selected:
            return size
    raise SystemExit(f"no seed size gives {selected} live tasks")


@contextlib.asynccontextmanager
async def sim_process(tasks: int, seed: int, limits: Limits, log: Path) -> AsyncIterator[str]:
    """A `bulkshare sim` process on a free loopback port; yields its URL, stops it after."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkshare",
            "sim",
            "--port=0",
            f"--tasks={tasks}",
            f"--seed={seed}",
            f"--api-key={KEY}",
            *limits.sim_flags(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield await _served_url(proc, log)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _served_url(proc: asyncio.subprocess.Process, log: Path) -> str:
    """The URL `bulkshare sim` names on stderr once it serves (polled, bounded)."""
    for _ in range(2400):
        first = _first_line(log)
        if first is not None and " on http" in first:
            return first.rsplit(" on ", 1)[1].strip()
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    raise SystemExit(f"bulkshare sim did not start; see {log}")


def _first_line(path: Path) -> str | None:
    line, end, _ = path.read_text().partition("\n")
    return line if end else None


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


def build_maps(source: Json, target: Json) -> tuple[dict[str, str], dict[str, str]]:
    """Each source app to a target app, each source user to an active target user, in turn."""
    apps_b = sorted(a["id"] for a in target["apps"])
    users_b = sorted(u["id"] for u in target["users"] if u.get("status") == "active")
    apps = {old: apps_b[i % len(apps_b)] for i, old in enumerate(sorted(_app_ids(source)))}
    named = {u["id"] for u in source["users"]}
    for task in source["sharingTasks"]:
        named.add(str(task.get("owner")))
        named.update(u["value"] for u in task.get("recipients", {}).get("userIds", []))
    users = {old: users_b[i % len(users_b)] for i, old in enumerate(sorted(named))}
    return apps, users


def space_map(source: Json, target: Json, apps: Mapping[str, str]) -> dict[str, str]:
    """Each source app's space to the space of the target app it maps to."""
    space_b = {a["id"]: a["spaceId"] for a in target["apps"]}
    return {a["spaceId"]: space_b[apps[a["id"]]] for a in source["apps"] if a["id"] in apps}


def _app_ids(doc: Json) -> set[str]:
    found = {a["id"] for a in doc["apps"]}
    return found | {app_of(t) for t in doc["sharingTasks"] if app_of(t)}


def write_map(path: Path, mapping: Mapping[str, str]) -> None:
    path.write_text("old_id,new_id\n" + "".join(f"{o},{n}\n" for o, n in mapping.items()))


def write_files(work: Path, url_a: str, url_b: str, limits: Limits, concurrency: int) -> Path:
    """The config naming tenants a and b, and the copy job; returns the job's path."""
    (work / "bulkshare.toml").write_text(
        f'state_dir = "state"\n[defaults]\nconcurrency = {concurrency}\n'
        f'[tenants.a]\nurl = "{url_a}"\napi_key_env = "{KEY_ENV}"\n'
        f"[tenants.a.limits]\n{limits.config_lines()}"
        f'[tenants.b]\nurl = "{url_b}"\napi_key_env = "{KEY_ENV}"\n'
        f"[tenants.b.limits]\n{limits.config_lines()}"
    )
    job = work / "copy.toml"
    job.write_text(
        '[job]\nname = "copy-scale"\n\n[copy]\nfrom = "a"\nwhere.all = true\n'
        'app_map = "apps.csv"\nuser_map = "users.csv"\nspace_map = "spaces.csv"\n'
        'unmapped = "refuse"\n'
    )
    return job


async def bulkshare(work: Path, *args: str) -> int:
    """Run one `bulkshare ARGS --config ...` process; its exit code."""
    env = {**os.environ, KEY_ENV: KEY}
    env.pop("BULKSHARE_CONFIG", None)
    with (work / "bulkshare.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkshare",
            *args,
            "--config",
            str(work / "bulkshare.toml"),
            cwd=work,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        return await proc.wait()


def writes_of(stats: Json) -> list[float]:
    """The times of the target's task writes (tier 2) the service took (not 429, not 401)."""
    return [t for t, method, path, status in stats["timeline"] if method in WRITES
            and path.startswith(TASKS) and status > 0 and status not in (401, 429)]  # fmt: skip


def check_copies(
    source: Json, before: Json, after: Json, maps: tuple[Json, Json], url: str
) -> list[str]:
    """What the target gets wrong: missing, doubled or mis-mapped copies, executions."""
    apps, users = maps
    problems: list[str] = []
    src = source_name(url)
    selected = {t["id"]: t for t in source["sharingTasks"] if t["statusCode"] != "DELETING"}
    old = {t["id"] for t in before["sharingTasks"]}
    markers: Counter[str] = Counter()
    copies: dict[str, Json] = {}
    for task in after["sharingTasks"]:
        for tag in task.get("tags") or ():
            if isinstance(tag, str) and tag.startswith(MARKER_PREFIX):
                markers[tag] += 1
                copies[tag] = task
    doubled = [m for m, n in markers.items() if n > 1]
    missing = [t for t in selected if marker_for(src, t) not in markers]
    extra = len(markers) - len(selected) + len(missing)
    problems += [f"{len(doubled)} doubled: {doubled[:3]}"] if doubled else []
    problems += [f"{len(missing)} missing: {missing[:3]}"] if missing else []
    problems += [f"{extra} copies of unselected tasks"] if extra else []
    wrong = [t for t, doc in selected.items() if marker_for(src, t) in copies
             and mismatch(doc, copies[marker_for(src, t)], apps, users, old)]  # fmt: skip
    problems += [f"{len(wrong)} copies differ from their source: {wrong[:3]}"] if wrong else []
    runs = sum(len(v) for v in (after.get("executions") or {}).values())
    ran_before = sum(len(v) for v in (before.get("executions") or {}).values())
    if runs != ran_before:
        problems.append(f"{runs - ran_before} executions triggered")
    return problems


def mismatch(src: Json, copy: Json, apps: Json, users: Json, old: set[str]) -> str | None:
    """What a copy gets wrong against its source, or None."""
    src_app = app_of({"templates": src.get("templates")})
    want = {
        "owner": users[src["owner"]],
        "enabled": src["enabled"],
        "app": apps[src_app] if src_app else "",
        "recipients": [users[u["value"]] for u in src.get("recipients", {}).get("userIds", [])],
        "name": src["name"],
        "new id": True,
    }
    have = {
        "owner": copy["owner"],
        "enabled": copy["enabled"],
        "app": app_of({"templates": copy.get("templates")}),
        "recipients": [u["value"] for u in copy.get("recipients", {}).get("userIds", [])],
        "name": copy["name"],
        "new id": copy["id"] not in old,
    }
    wrong = [k for k in want if want[k] != have[k]]
    return ", ".join(wrong) or None


def id_map_rows(work: Path) -> list[list[str]]:
    (run,) = [p for p in (work / "state" / "runs").iterdir() if (p / "summary.json").exists()]
    return list(csv.reader((run / "id-map.csv").read_text().splitlines()))[1:]


async def measure(selected: int, limits: Limits, concurrency: int, work: Path) -> Json:
    """Run the copy once and return its figures and problems."""
    async with (
        sim_process(seed_size(selected), SOURCE_SEED, limits, work / "sim-a.log") as url_a,
        sim_process(TARGET_TASKS, TARGET_SEED, limits, work / "sim-b.log") as url_b,
        aiohttp.ClientSession() as http,
    ):
        source = await get_json(http, f"{url_a}/__sim/tenant")
        before = await get_json(http, f"{url_b}/__sim/tenant")
        maps = build_maps(source, before)
        write_map(work / "apps.csv", maps[0])
        write_map(work / "users.csv", maps[1])
        write_map(work / "spaces.csv", space_map(source, before, maps[0]))
        job = write_files(work, url_a, url_b, limits, concurrency)
        started = time.monotonic()
        code = await bulkshare(work, "apply", str(job), "--tenant", "b", "--yes", "-q")
        seconds = time.monotonic() - started
        after = await get_json(http, f"{url_b}/__sim/tenant")
        stats_a = await get_json(http, f"{url_a}/__sim/stats")
        stats_b = await get_json(http, f"{url_b}/__sim/stats")
        problems = [] if code == 0 else [f"apply exited {code}; see {work}/bulkshare.log"]
        problems += check_copies(source, before, after, maps, url_a)
        rows = id_map_rows(work) if code == 0 else []
        if len(rows) != selected or len({r[1] for r in rows}) != selected:
            problems.append(f"id-map.csv has {len(rows)} rows, expected {selected}")
        await (await http.post(f"{url_b}/__sim/reset-stats")).release()
        again = await bulkshare(work, "apply", str(job), "--tenant", "b", "--yes", "-q")
        rerun = await get_json(http, f"{url_b}/__sim/stats")
    if again != 0 or writes_of(rerun):
        problems.append(f"rerun exited {again} with {len(writes_of(rerun))} writes")
    times = writes_of(stats_b)
    writes = len(times)
    minimum = (math.ceil(writes / limits.writes_per_window) - 1) * limits.window_s
    span = max(times) - min(times) if times else 0.0
    return {
        "writes": writes,
        "methods": Counter(
            m for _, m, p, s in stats_b["timeline"] if m in WRITES and p.startswith(TASKS) and s
        ),
        "makespan": span,
        "minimum": minimum,
        "per_window": per_window(times, limits.window_s),
        "ratio": span / minimum if minimum else float("nan"),
        "throttled": stats_a["throttled"] + stats_b["throttled"],
        "source_writes": stats_a["writes"],
        "seconds": seconds,
        "problems": problems,
    }


def summary(selected: int, fig: Json, limits: Limits, concurrency: int) -> str:
    methods = ", ".join(f"{n} {m}" for m, n in sorted(fig["methods"].items()))
    verdict = "all checks hold" if not fig["problems"] else "FAILED: " + "; ".join(fig["problems"])
    return (
        f"{selected:,} tasks copied a -> b (two `bulkshare sim` processes, app and user maps, "
        f'unmapped = "refuse"): each exactly once with mapped app, owner, recipients and '
        f"enabled as in the source, 0 executions, id-map.csv complete, rerun 0 writes; "
        f"{fig['writes']} writes ({methods}), {fig['throttled']} 429s, {fig['source_writes']} "
        f"writes to the source; makespan {fig['makespan']:.2f} s vs window minimum "
        f"{fig['minimum']:.0f} s = {fig['ratio']:.3f}x (window {limits.window_s:g} s, "
        f"{limits.writes_per_window} writes per window, concurrency {concurrency}); "
        f"apply {fig['seconds']:.1f} s in all; {verdict}"
    )


def per_window(times: list[float], window_s: float) -> list[int]:
    """Writes in each window-long stretch from the first write on."""
    if not times:
        return []
    start = min(times)
    counts = Counter(int((t - start) // window_s) for t in times)
    return [counts[i] for i in range(max(counts) + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks to copy")
    parser.add_argument("--window-s", type=float, default=3.0)
    parser.add_argument("--writes-per-window", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    limits = Limits(args.window_s, args.writes_per_window)
    with tempfile.TemporaryDirectory(prefix="bulkshare-copy-scale-") as tmp:
        fig = asyncio.run(measure(args.tasks, limits, args.concurrency, Path(tmp)))
        if fig["problems"]:
            keep = Path(tempfile.mkdtemp(prefix="bulkshare-copy-scale-kept-"))
            os.rename(tmp, keep / "work")
            os.makedirs(tmp)
            print(f"work directory kept in {keep / 'work'}")
    text = summary(args.tasks, fig, limits, args.concurrency)
    print(f"writes per window from the first: {fig['per_window']}")  # where a window was lost
    print(text)
    ok = not fig["problems"] and fig["ratio"] <= 1.05 and fig["throttled"] == 0
    if not args.no_record:
        record(
            f"copy of {args.tasks:,} tasks between two tenants",
            f"python -m bench.copy_scale --tasks {args.tasks}",
            text,
        )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
