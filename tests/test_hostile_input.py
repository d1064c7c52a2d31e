"""Hostile input: generated job files, and a server that answers with garbage."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkshare import audit
from bulkshare.client import ApiClient, ApiKeyAuth, RequestFailed
from bulkshare.errors import JobFileError, TenantError
from bulkshare.job import load_job
from bulkshare.plan import Change, Plan, build_plan
from bulkshare.run import RunDir, RunMeta, Runner, RunOptions, new_run_id
from tests.conftest import ME_PATH, TEST_KEY, Sim, Workdir, admin_me, bulkshare, error_lines
from tests.test_client import budgets, no_wait

VALID = (
    '[job]\nname = "fuzz"\ndescription = "x"\nmax_changes = 5\n\n'
    '[[operations]]\naction = "disable"\nwhere.task_errors = ["ORPHAN"]\nwhere.enabled = true\n\n'
    '[[operations]]\naction = "tag"\ntags = ["a"]\nwhere.type = "chart-sharing"\n'
)
FIXTURE_OK = HealthCheck.function_scoped_fixture  # tmp_path is only a scratch folder here
JUNK_VALUES = st.sampled_from(
    [
        '"x"',
        "1",
        "-1",
        "true",
        "[]",
        '["a", 1]',
        "{ a = 1 }",
        "1.5",
        "2026-01-01",
        '"[a"',
        "[" * 40 + "]" * 40,
        "[" + ", ".join(['"s"'] * 10_050) + "]",
    ]
)
KEYS = st.sampled_from(
    [
        "name",
        "description",
        "max_changes",
        "action",
        "where.enabled",
        "where.type",
        "where.zzz",
        "where.name",
        "tags",
        "to",
        "mapping",
        "ops",
        "nope",
        "where.not_viewed_for_days",
        "where.owner_status",
    ]
)


def check_refusal(path: Path) -> None:
    """load_job either loads or refuses in one line naming the file (and line when parsed)."""
    try:
        load_job(path)
    except JobFileError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(f"{path}:")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(line=st.integers(0, 12), key=KEYS, value=JUNK_VALUES)
def test_generated_job_files_are_refused_cleanly(
    tmp_path: Path, line: int, key: str, value: str
) -> None:
    """A valid job with a junk key or value spliced in loads or is refused in one clean line."""
    lines = VALID.splitlines()
    lines.insert(min(line, len(lines)), f"{key} = {value}")
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n")
    check_refusal(path)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), cut=st.integers(0, len(VALID)))
def test_random_bytes_and_truncations(tmp_path: Path, data: bytes, cut: int) -> None:
    """Random bytes (non-UTF-8 included) and truncated files never escape as another error."""
    path = tmp_path / "bytes.toml"
    path.write_bytes(VALID.encode()[:cut] + data)
    check_refusal(path)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def garbage_server(list_answer: Handler, patch_answer: Handler | None = None) -> web.Application:
    """A server that answers the list and PATCH endpoints as told (the caller: an admin)."""
    app = web.Application()
    app.router.add_get(ME_PATH, admin_me)
    app.router.add_get("/api/v1/sharing-tasks", list_answer)
    app.router.add_get("/api/v1/sharing-tasks/{id}", list_answer)
    if patch_answer is not None:
        app.router.add_patch("/api/v1/sharing-tasks/{id}", patch_answer)
    return app


async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve on a loopback port; yield the base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def non_json(_: web.Request) -> web.Response:
    return web.Response(text="<html>oops</html>", content_type="text/html")


async def html_502(_: web.Request) -> web.Response:
    return web.Response(
        status=502, text="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"
    )


async def missing_fields(_: web.Request) -> web.Response:
    return web.json_response({"totalCount": 3})


async def not_objects(_: web.Request) -> web.Response:
    return web.json_response({"sharingTasks": [1, "two", None], "totalCount": 3})


async def truncated(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={"Content-Length": "5000", "Content-Type": "application/json"}
    )
    await resp.prepare(request)
    await resp.write(b'{"sharingTasks": [{"id": "a"')
    assert request.transport is not None
    request.transport.close()
    return resp


JOB = '[job]\nname = "g"\n[[operations]]\naction = "disable"\nwhere.all = true\n'


@pytest.mark.parametrize("answer", [non_json, html_502, not_objects, truncated])
async def test_garbage_list_answers_fail_planning_cleanly(tmp_path: Path, answer: Handler) -> None:
    """A list answered with garbage ends planning with RequestFailed naming the reason."""
    job_path = tmp_path / "g.toml"
    job_path.write_text(JOB)
    async for url in serve(garbage_server(answer)):
        client = ApiClient(url, ApiKeyAuth("k"), budgets(), max_attempts=2, sleep=no_wait)
        async with client:
            with pytest.raises(RequestFailed) as info:
                await build_plan(client, load_job(job_path), "t")
    assert info.value.reason


async def test_list_without_tasks_is_an_empty_plan(tmp_path: Path) -> None:
    """An answer with no sharingTasks key is an empty page, not a crash: short of its
    totalCount, so refused unless accepted, and then an empty plan."""
    job_path = tmp_path / "g.toml"
    job_path.write_text(JOB)
    async for url in serve(garbage_server(missing_fields)):
        async with ApiClient(url, ApiKeyAuth("k"), budgets(), sleep=no_wait) as client:
            with pytest.raises(TenantError, match="0 distinct tasks listed, the tenant said 3"):
                await build_plan(client, load_job(job_path), "t")
            plan = await build_plan(client, load_job(job_path), "t", accept_incomplete=True)
    assert plan.changes == [] and plan.scanned == 0


@pytest.mark.parametrize("answer", [non_json, truncated])
async def test_cli_plan_against_garbage_exits_4_in_one_line(
    tmp_path: Path, answer: Handler
) -> None:
    """`bulkshare plan` against a tenant that answers garbage exits 4 in one line, no traceback."""
    job_path = tmp_path / "g.toml"
    job_path.write_text(JOB)

    async for url in serve(garbage_server(answer)):
        config = tmp_path / "bulkshare.toml"
        config.write_text(
            f'[defaults]\nmax_attempts = 2\n[tenants.g]\nurl = "{url}"\napi_key_env = "G_KEY"\n'
        )
        wd = Workdir(tmp_path, config, {**os.environ, "G_KEY": "k"})
        result = await bulkshare(wd, "plan", str(job_path))
    assert result.code == 4, result.err
    assert "Traceback" not in result.err
    # besides the tenant line and JSON log lines about retries: one error line
    errors = error_lines(result.err)
    assert len(errors) == 1 and "reading its tasks failed" in errors[0], result.err


async def test_garbage_write_answers_are_recorded_as_failed(tmp_path: Path) -> None:
    """A PATCH answered by an HTML 502 every time is retried, then recorded failed; exit 1."""

    async def one_task(_: web.Request) -> web.Response:
        return web.json_response({"id": "a", "enabled": True})

    async for url in serve(garbage_server(one_task, html_502)):
        client = ApiClient(url, ApiKeyAuth("k"), budgets(), max_attempts=3, sleep=no_wait)
        change = Change(
            "a",
            ("disable",),
            "PATCH",
            "/v1/sharing-tasks/a",
            [{"op": "replace", "path": "/enabled", "value": False}],
            {"enabled": True},
            {"enabled": False},
        )
        plan = Plan("t", "g", "g.toml", "0", audit.utc_now(), [change])
        run_dir = RunDir.create(tmp_path, new_run_id("g", "t"))
        plan.write(run_dir.plan)
        run_dir.write_meta(RunMeta(run_dir.run_id, "t", "g", audit.utc_now()))
        async with client:
            summary = await Runner(run_dir, plan, client, RunOptions()).run()
    assert summary.exit_code == 1 and summary.counts == {"failed": 1}
    [record] = [r for r in audit.read_records(run_dir.audit) if r["event"] == "change"]
    assert record["outcome"] == "failed" and "502" in record["error"]
    assert record["attempts"] == 3
    assert audit.verify(run_dir.audit).ok


CONFIGS = {
    "missing-env": ('[tenants.t]\nurl = "{url}"\napi_key_env = "NOT_SET_ANYWHERE"\n', "NOT_SET"),
    "inline-secret": ('[tenants.t]\nurl = "{url}"\napi_key = "{key}"\n', "api_key"),
    "plain-http": ('[tenants.t]\nurl = "http://10.1.2.3"\napi_key_env = "K"\n', "http://"),
    "unknown-key": ('[tenants.t]\nurl = "{url}"\napi_key_env = "K"\nretries = 3\n', "retries"),
    "wrong-type": (
        '[defaults]\nconcurrency = "16"\n[tenants.t]\nurl = "{url}"\napi_key_env = "K"\n',
        "concurrency",
    ),
    "malformed": ('[tenants.t\nurl = "{url}"\n', "malformed TOML"),
    "unknown-tenant": ('[tenants.t]\nurl = "{url}"\napi_key_env = "K"\n', "unknown tenant"),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
async def test_bad_configs_through_the_cli(demo_sim: Sim, tmp_path: Path, case: str) -> None:
    """Each config error exits 2 in one line naming file and key; no request, no secret shown."""
    text, needle = CONFIGS[case]
    config = tmp_path / "bulkshare.toml"
    config.write_text(text.format(url=demo_sim.url, key=TEST_KEY))
    wd = Workdir(tmp_path, config, {**os.environ, "K": "k-value-1"})
    await demo_sim.reset_stats()
    extra = ["--tenant", "nope"] if case == "unknown-tenant" else []
    job = tmp_path / "j.toml"
    job.write_text(JOB)
    result = await bulkshare(wd, "plan", str(job), *extra)
    assert result.code == 2, result.err
    [line] = result.err.strip().splitlines()
    assert str(config) in line and needle in line, line
    assert TEST_KEY not in line and "k-value-1" not in line
    assert (await demo_sim.stats())["requests"] == 0


async def test_offset_listing_falls_back_to_the_cursor_when_the_tenant_changes(
    tmp_path: Path,
) -> None:
    """If totalCount moves while offset pages are read, planning restarts on cursor paging."""
    tasks = [{"id": f"t{i:03d}", "enabled": True} for i in range(250)]
    seen: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        seen.append(request.query_string)
        query = request.query
        if "offset" in query:  # somebody adds a task while we read: the count moves
            start = int(query["offset"])
            return web.json_response(
                {"sharingTasks": tasks[start : start + 100], "totalCount": len(tasks) + 1}
            )
        start = int(query.get("page", "0"))
        doc: dict[str, Any] = {"sharingTasks": tasks[start : start + 100], "totalCount": len(tasks)}
        if start + 100 < len(tasks):
            doc["links"] = {
                "next": {
                    "href": f"{request.url.origin()}/api/v1/sharing-tasks"
                    f"?limit=100&page={start + 100}"
                }
            }
        return web.json_response(doc)

    job_path = tmp_path / "g.toml"
    job_path.write_text(JOB)
    async for url in serve(garbage_server(listing)):
        async with ApiClient(url, ApiKeyAuth("k"), budgets(), sleep=no_wait) as client:
            plan = await build_plan(client, load_job(job_path), "t")
    assert any("offset" in q for q in seen), "offset pages were tried first"
    assert plan.scanned == 250
    assert sorted(c.task_id for c in plan.changes) == [t["id"] for t in tasks]
