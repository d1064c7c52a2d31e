"""Read-back after each write: what the task became is recorded, side effects are reported and
counted (not failures), keep_enabled re-enables once (across a kill -9 too), undo restores."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from bulkshare import audit
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import TEST_KEY, TEST_KEY_ENV, Sim, Workdir, bulkshare

# slow (`.ci/run` runs it with `pytest -m slow`): applies under each owner-change rule
pytestmark = pytest.mark.slow

Tasks = dict[str, dict[str, Any]]
TASK_WRITE = re.compile(r"^/api/v1/sharing-tasks/([^/]+)$")
REENABLE = [{"op": "replace", "path": "/enabled", "value": True}]


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    body: Any


Answer = Callable[[Seen], web.Response | None]
Hold = Callable[[Seen, int], Awaitable[None]]


@dataclass
class Proxy:
    """A loopback app forwarding every request to the simulator: `answer` may answer one itself,
    `hold` is awaited once the simulator answered (so a test can kill the client meanwhile)."""

    target: str
    session: aiohttp.ClientSession
    answer: Answer | None = None
    hold: Hold | None = None
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        seen = Seen(request.method, request.path, orjson.loads(raw) if raw else None)
        self.seen.append(seen)
        mine = self.answer(seen) if self.answer else None
        if mine is not None:
            return mine
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
        async with self.session.request(
            request.method, self.target + request.path_qs, data=raw or None, headers=headers
        ) as resp:
            body, status = await resp.read(), resp.status
            back = {k: v for k, v in resp.headers.items() if k in _FORWARDED}
        if self.hold is not None:
            await self.hold(seen, status)
        return web.Response(status=status, body=body, headers=back)


_FORWARDED = {"Authorization", "Content-Type", "Retry-After"}


@asynccontextmanager
async def proxied(target: str) -> AsyncIterator[tuple[str, Proxy]]:
    """A Proxy to `target` on a loopback port: its URL, and the proxy to steer."""
    async with aiohttp.ClientSession() as session:
        proxy = Proxy(target, session)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}", proxy
        finally:
            await runner.cleanup()


def config_for(wd_path: Path, url: str, extra: str = "") -> Workdir:
    """A workdir whose tenant `t` is `url`, one request at a time so kills land where told."""
    config = wd_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[defaults]\nconcurrency = 1\n{extra}\n'
        f'[tenants.t]\nurl = "{url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
    )
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Workdir(wd_path, config, env)


@dataclass(frozen=True)
class Handover:
    """An active owner's VALID tasks, to be given to another active user."""

    old: str
    new: str
    tasks: tuple[str, ...]
    enabled: tuple[str, ...]  #: those of `tasks` enabled before

    def job(self, path: Path, extra: str = "") -> Path:
        path.write_text(
            '[job]\nname = "handover"\n[[operations]]\naction = "reassign-owner"\n'
            f'to = "{self.new}"\n{extra}\nwhere.owner = "{self.old}"\nwhere.status = "VALID"\n'
        )
        return path


def handover_tenant(owner_errors: list[str] | None = None) -> tuple[SimTenant, Handover]:
    """A seeded tenant and an owner of enabled and disabled VALID tasks to hand over; with
    `owner_errors`, the new owner brings those errors to every task it gets."""
    doc = SimTenant.seed(400, 11).to_document()
    active = [u["id"] for u in doc["users"] if u.get("status") == "active"]
    valid: dict[str, list[dict[str, Any]]] = {}
    for t in doc["sharingTasks"]:
        if t.get("statusCode") == "VALID" and t.get("owner") in active:
            valid.setdefault(t["owner"], []).append(t)
    old = max(valid, key=lambda u: (len({t["enabled"] for t in valid[u]}), len(valid[u])))
    mine = valid[old]
    assert {t["enabled"] for t in mine} == {True, False}, "an owner of both kinds of tasks"
    new = next(u for u in active if u != old)
    if owner_errors:
        doc["ownerTaskErrors"] = {new: owner_errors}
    enabled = tuple(t["id"] for t in mine if t["enabled"])
    return SimTenant.from_document(doc), Handover(old, new, tuple(t["id"] for t in mine), enabled)


@asynccontextmanager
async def handover_sim(
    disables: bool, owner_errors: list[str] | None = None
) -> AsyncIterator[tuple[Sim, Handover]]:
    """The handover tenant on a simulator that does (or does not) disable on an owner change."""
    tenant, handover = handover_tenant(owner_errors)
    config = SimConfig(api_key=TEST_KEY, owner_change_disables=disables)
    async with running_sim(tenant, config) as url, aiohttp.ClientSession() as session:
        yield Sim(url, session), handover


def task_writes(stats: dict[str, Any]) -> Counter[str]:
    """Per task, the PATCHes and DELETEs the simulator answered 2xx (seen by the client or not)."""
    writes: Counter[str] = Counter()
    for _, method, path, status in stats["timeline"]:
        match = TASK_WRITE.match(path)
        if method in ("PATCH", "DELETE") and match and 200 <= status < 300:
            writes[match.group(1)] += 1
    return writes


def run_dirs(wd: Workdir) -> list[Path]:
    return sorted((wd.state / "runs").iterdir())


def change_records(run: Path) -> dict[str, dict[str, Any]]:
    """The change records of a run, by task id."""
    records = audit.read_records(run / "audit.jsonl")
    return {r["task_id"]: r for r in records if r.get("event") == "change"}


def summary(run: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((run / "summary.json").read_bytes())
    return doc


@pytest.mark.parametrize("disables", [True, False], ids=["disables", "keeps-enabled"])
async def test_side_effects_of_an_owner_change_are_reported_not_failed(
    tmp_path: Path, disables: bool
) -> None:
    """Whatever the service does to `enabled` on an owner change, the run exits 0, records what
    each task became, and lists where that differs from the plan's expectation."""
    async with handover_sim(disables) as (sim, handover):
        wd = config_for(tmp_path, sim.url)
        job = handover.job(tmp_path / "handover.toml")
        planned = await bulkshare(wd, "plan", str(job))
        assert planned.code == 0, planned.err
        assert planned.out.count("expected: may be disabled by the service") == len(
            handover.enabled
        ), planned.out
        applied = await bulkshare(wd, "apply", str(job), "--yes")
        assert applied.code == 0, applied.err
        tasks = await sim.tasks()
        [run] = run_dirs(wd)
        records = change_records(run)
        assert set(records) == set(handover.tasks)
        for task_id, record in records.items():
            assert record["outcome"] == "applied"
            assert record["observed"]["owner"] == handover.new == tasks[task_id]["owner"]
            assert record["observed"]["enabled"] is tasks[task_id]["enabled"]
            assert "enabled" not in record["after"]  # no guess decides the outcome
        # the plan expected "may be disabled": where the service disables, its new error
        # (on disabled tasks too) says so; where it does not, a task left enabled differs
        listed = set(handover.tasks) if disables else set(handover.enabled)
        texts = {i: records[i].get("side_effects") for i in handover.tasks}
        assert {i for i, t in texts.items() if t} == listed
        for task_id in handover.enabled:
            assert tasks[task_id]["enabled"] is not disables
        assert summary(run)["side_effects"] == len(listed)
        assert summary(run)["exit_code"] == 0
        closing = f"{len(listed)} side effect(s) read back (not failures; see `show`)"
        assert (closing in applied.out) is bool(listed), applied.out
        shown = await bulkshare(wd, "show", run.name)
        assert shown.code == 0, shown.err
        assert f"side effects (not failures): {len(listed)}" in shown.out
        wanted = "DISABLED_DUE_TO_OWNERSHIP_CHANGE" if disables else "left enabled"
        assert shown.out.count(wanted) == len(listed), shown.out


async def test_new_owner_errors_are_side_effects(tmp_path: Path) -> None:
    """A new owner without access to the app brings OWNER_ACCESS to each task: listed per task
    in every format of `show`, counted, and no failure."""
    async with handover_sim(False, ["OWNER_ACCESS"]) as (sim, handover):
        wd = config_for(tmp_path, sim.url)
        job = handover.job(tmp_path / "handover.toml")
        applied = await bulkshare(wd, "apply", str(job), "--yes")
        assert applied.code == 0, applied.err
        [run] = run_dirs(wd)
        assert summary(run)["side_effects"] == len(handover.tasks)
        shown = await bulkshare(wd, "show", run.name, "--format", "json")
        listed = orjson.loads(shown.out)["side_effects"]
        assert {e["task_id"] for e in listed} == set(handover.tasks)
        assert all("new task errors: OWNER_ACCESS" in e["side_effects"] for e in listed)
        for fmt in ("html", "markdown", "csv"):
            out = await bulkshare(wd, "show", run.name, "--format", fmt)
            assert out.code == 0, out.err
            text = "new task errors: OWNER_ACCESS"
            text = text.replace("_", "\\_") if fmt == "markdown" else text
            assert out.out.count(text) >= len(handover.tasks), fmt


@pytest.mark.parametrize("disables", [True, False], ids=["disables", "keeps-enabled"])
async def test_keep_enabled_enables_again_only_what_the_service_disabled(
    tmp_path: Path, disables: bool
) -> None:
    """keep_enabled: a task enabled before its owner change ends enabled, with one more PATCH
    only where the service disabled it; disabled tasks stay disabled."""
    async with handover_sim(disables) as (sim, handover):
        wd = config_for(tmp_path, sim.url)
        job = handover.job(tmp_path / "handover.toml", "keep_enabled = true")
        before = await sim.tasks()
        planned = await bulkshare(wd, "plan", str(job))
        wanted = "expected: enabled (re-enabled if the service disables it)"
        assert planned.out.count(wanted) == len(handover.enabled), planned.out
        applied = await bulkshare(wd, "apply", str(job), "--yes")
        assert applied.code == 0, applied.err
        tasks = await sim.tasks()
        assert all(tasks[i]["enabled"] is before[i]["enabled"] for i in handover.tasks)
        assert all(tasks[i]["owner"] == handover.new for i in handover.tasks)
        writes = task_writes(await sim.stats())
        again = set(handover.enabled) if disables else set()
        assert writes == {i: 1 + (i in again) for i in handover.tasks}
        [run] = run_dirs(wd)
        assert summary(run)["reenabled"] == len(again)
        closing = f"{len(again)} task(s) disabled by the service enabled again"
        assert (closing in applied.out) is bool(again), applied.out
        records = change_records(run)
        assert {i for i, r in records.items() if r.get("reenable")} == again


@dataclass
class KillSwitch:
    """Holds the answer to the first request `matches` picks, until released."""

    matches: Callable[[Seen], bool]
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, seen: Seen, status: int) -> None:
        if not self.held.is_set() and self.matches(seen):
            self.held.set()
            await self.release.wait()


def is_reenable(seen: Seen) -> bool:
    return seen.method == "PATCH" and seen.body == REENABLE


def is_owner_change(seen: Seen) -> bool:
    return seen.method == "PATCH" and any(op.get("path") == "/ownerId" for op in seen.body)


@pytest.mark.parametrize(
    "kill_after", [is_owner_change, is_reenable], ids=["owner-change-landed", "reenable-landed"]
)
async def test_keep_enabled_enables_again_once_across_a_kill(
    tmp_path: Path, kill_after: Callable[[Seen], bool]
) -> None:
    """kill -9 once the owner change (or the re-enable) landed, before its answer: `resume`
    settles it by reading, re-enables only if still disabled, and no task is written twice."""
    async with handover_sim(True) as (sim, handover), proxied(sim.url) as (url, proxy):
        wd = config_for(tmp_path, url)
        job = handover.job(tmp_path / "handover.toml", "keep_enabled = true")
        switch = KillSwitch(lambda s: kill_after(s) and handover.enabled[0] in s.path)
        proxy.hold = switch
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bulkshare", "apply", str(job), "--yes", "--config", str(wd.config)),
            cwd=wd.path,
            env=wd.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(switch.held.wait(), 60)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        switch.release.set()
        [run] = run_dirs(wd)
        assert handover.enabled[0] not in change_records(run)  # killed before its record
        resumed = await bulkshare(wd, "resume", run.name)
        assert resumed.code == 0, resumed.err
        tasks = await sim.tasks()
        assert all(tasks[i]["enabled"] is (i in handover.enabled) for i in handover.tasks)
        assert all(tasks[i]["owner"] == handover.new for i in handover.tasks)
        writes = task_writes(await sim.stats())
        assert writes == {i: 1 + (i in handover.enabled) for i in handover.tasks}
        record = change_records(run)[handover.enabled[0]]
        assert record["outcome"] == "applied" and record["settled_by_read"] is True
        assert (record.get("reenable") is None) is (kill_after is is_reenable)
        assert audit.verify(run / "audit.jsonl").ok


@pytest.mark.parametrize("disables", [True, False], ids=["disables", "keeps-enabled"])
async def test_undo_gives_owners_and_enabled_flags_back(tmp_path: Path, disables: bool) -> None:
    """After a reassign the service may have disabled tasks for, `undo` puts each owner back and
    each task enabled that was enabled before the run, whichever way the service behaves."""
    async with handover_sim(disables) as (sim, handover):
        wd = config_for(tmp_path, sim.url)
        before = await sim.tasks()
        job = handover.job(tmp_path / "handover.toml")
        applied = await bulkshare(wd, "apply", str(job), "--yes")
        assert applied.code == 0, applied.err
        [run] = run_dirs(wd)
        undone = await bulkshare(wd, "undo", run.name, "--yes")
        assert undone.code == 0, undone.err
        tasks = await sim.tasks()
        for task_id in handover.tasks:
            assert tasks[task_id]["owner"] == handover.old
            assert tasks[task_id]["enabled"] is before[task_id]["enabled"], task_id


async def test_a_read_back_that_fails_is_recorded_not_failed(tmp_path: Path) -> None:
    """When the task cannot be read after its write, the change is applied, its record says
    "not read back", summary.json counts it, and the run exits 0."""
    async with handover_sim(True) as (sim, handover), proxied(sim.url) as (url, proxy):
        wd = config_for(tmp_path, url, "max_attempts = 2")
        written: set[str] = set()

        def after_write(seen: Seen) -> web.Response | None:
            task_id = seen.path.rsplit("/", 1)[-1]
            if seen.method == "PATCH":
                written.add(task_id)
            if seen.method == "GET" and task_id in written:
                return web.json_response({"errors": [{"title": "unavailable"}]}, status=503)
            return None

        proxy.answer = after_write
        applied = await bulkshare(wd, "apply", str(handover.job(tmp_path / "h.toml")), "--yes")
        assert applied.code == 0, applied.err
        [run] = run_dirs(wd)
        records = change_records(run)
        assert {r["outcome"] for r in records.values()} == {"applied"}
        assert all(
            r["note"].startswith("not read back: server error 503") for r in records.values()
        )
        assert all("observed" not in r for r in records.values())
        assert summary(run)["not_read_back"] == len(handover.tasks)
        assert written == set(handover.tasks)
