"""The files a run leaves behind are typed records with one reader and one writer: run.json,
audit change records and summary.json round-trip, refuse garbage in one line, and a resumed
run's summary counts the 429s of every process it took."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from bulkshare import audit
from bulkshare.client import ApiClient, ApiKeyAuth
from bulkshare.errors import InterruptedRun, RunFileError
from bulkshare.plan import Change, Plan
from bulkshare.run import (
    ChangeRecord,
    Outcome,
    RunDir,
    RunMeta,
    Runner,
    RunOptions,
    RunState,
    Summary,
    change_records,
    new_run_id,
)
from tests.test_client import budgets, no_wait
from tests.test_limits import FakeClock

TASKS = ("a", "b", "c", "d")


def disable(task_id: str) -> Change:
    """The change that disables one enabled task."""
    body = [{"op": "replace", "path": "/enabled", "value": False}]
    path = f"/v1/sharing-tasks/{task_id}"
    return Change(task_id, ("disable",), "PATCH", path, body, {"enabled": True}, {"enabled": False})


def throttling_tenant() -> web.Application:
    """Tasks a-d, each answering its first read with a 429, then as an enabled task."""
    reads: Counter[str] = Counter()
    enabled = dict.fromkeys(TASKS, True)

    async def read(request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        reads[task_id] += 1
        if reads[task_id] == 1:
            body = {"errors": [{"code": "HTTP-429", "title": "API rate limit reached."}]}
            return web.json_response(body, status=429, headers={"Retry-After": "1"})
        return web.json_response({"id": task_id, "enabled": enabled[task_id]})

    async def patch(request: web.Request) -> web.Response:
        enabled[request.match_info["id"]] = False
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/api/v1/sharing-tasks/{id}", read)
    app.router.add_patch("/api/v1/sharing-tasks/{id}", patch)
    return app


async def served(app: web.Application) -> AsyncIterator[str]:
    """The app on a loopback port; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def new_run(tmp_path: Path, plan: Plan) -> RunDir:
    """A planned run directory, as `apply` leaves it before the first write."""
    run_dir = RunDir.create(tmp_path, new_run_id("g", "t"))
    plan.write(run_dir.plan)
    run_dir.write_meta(RunMeta(run_dir.run_id, "t", "g", audit.utc_now()))
    return run_dir


async def run_once(url: str, run_dir: RunDir, plan: Plan, stop_after: int | None) -> Any:
    """One process's go at the run, on a fake clock: stopped after `stop_after` records."""
    clock = FakeClock()
    stop = asyncio.Event()
    seen: list[dict[str, Any]] = []

    def on_record(record: dict[str, Any]) -> None:
        seen.append(record)
        if stop_after is not None and len(seen) >= stop_after:
            stop.set()

    client = ApiClient(url, ApiKeyAuth("k"), budgets(clock), concurrency=1, sleep=no_wait)
    async with client:
        runner = Runner(
            run_dir, plan, client, RunOptions(concurrency=1), stop=stop, on_record=on_record
        )
        return await runner.run()


async def test_a_resumed_run_counts_the_429s_of_every_process(tmp_path: Path) -> None:
    """Each process meets two 429s; the summary of the resumed run reports all four."""
    plan = Plan("t", "g", "g.toml", "0", audit.utc_now(), [disable(t) for t in TASKS])
    run_dir = new_run(tmp_path, plan)
    async for url in served(throttling_tenant()):
        with pytest.raises(InterruptedRun):
            await run_once(url, run_dir, plan, stop_after=2)
        assert run_dir.meta().state is RunState.INTERRUPTED
        assert run_dir.meta().throttled == 2
        summary = await run_once(url, run_dir, plan, stop_after=None)
    assert summary.throttled == 4 and summary.counts == {"applied": 4}
    assert Summary.read(run_dir.summary) == summary
    assert orjson.loads(run_dir.summary.read_bytes())["429s_seen"] == 4
    assert run_dir.meta().state is RunState.FINISHED and run_dir.meta().throttled == 4


def test_run_meta_round_trips_and_refuses_garbage(tmp_path: Path) -> None:
    """run.json is written and read by RunMeta alone; a broken one is one RunFileError line."""
    run_dir = RunDir.create(tmp_path, "r1")
    meta = RunMeta("r1", "t", "g", "2026-12-01T00:00:00.000Z", verify=False, concurrency=3)
    run_dir.write_meta(meta)
    assert run_dir.meta() == meta
    assert run_dir.update_meta(state=RunState.RUNNING, pid=7).state is RunState.RUNNING
    assert run_dir.meta().pid == 7 and run_dir.meta().verify is False
    for garbage in (b"[1, 2]", b"{", b'{"run_id": 5}', b'{"run_id": "r1", "tenant": "t"}'):
        run_dir.meta_path.write_bytes(garbage)
        with pytest.raises(RunFileError) as info:
            run_dir.meta()
        assert "run.json" in str(info.value) and "\n" not in str(info.value)


def test_change_records_round_trip_through_the_audit_log(tmp_path: Path) -> None:
    """What the runner writes as a change record is what ChangeRecord reads back."""
    entry = ChangeRecord(
        3,
        "a",
        "disable",
        "PATCH",
        "/v1/sharing-tasks/a",
        [{"op": "replace", "path": "/enabled", "value": False}],
        {"enabled": True},
        {"enabled": False},
        Outcome.APPLIED,
        204,
        1,
        None,
        {"name": "Monthly"},
        settled_by_read=True,
    )
    log = audit.AuditLog(tmp_path / "audit.jsonl", "r1", "t", "g")
    log.append("change", **entry.to_fields())
    log.close()
    [back] = list(change_records(tmp_path / "audit.jsonl"))
    assert back.to_fields() == entry.to_fields()
    assert back.envelope["seq"] == 1 and back.to_json()["hash"] == back.envelope["hash"]
    assert audit.verify(tmp_path / "audit.jsonl").ok


def test_with_request_keeps_every_other_field() -> None:
    """Change.with_request is dataclasses.replace spelled out: no field may be lost, a field
    added to Change later included."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Change):
        values[f.name] = (f"<{f.name}>",) if f.name in ("actions", "selection") else f"<{f.name}>"
    change = Change(**values)
    rebuilt = change.with_request("DELETE", "/v1/sharing-tasks/x", None)
    assert rebuilt == dataclasses.replace(
        change, method="DELETE", path="/v1/sharing-tasks/x", body=None
    )
