"""Export files under damage and failure: damaged files refused by the reader and by
`export --verify`, atomic writes, bad targets, tenants that move, fail or vanish, SIGTERM.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from bulkshare.errors import ExportFileError
from bulkshare.export import (
    EXPORT_FORMAT,
    AtomicFile,
    ExportHeader,
    ExportWriter,
    open_target,
    read_export,
    verify_export,
)
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import (
    ME_PATH,
    TEST_KEY,
    TEST_KEY_ENV,
    Sim,
    Workdir,
    admin_me,
    bulkshare,
    error_lines,
)
from tests.test_export import Task, csv_rows, exported

# slow (`.ci/run` runs it with `pytest -m slow`): export files written and read through the CLI
pytestmark = pytest.mark.slow

# -- damaged files are refused --------------------------------------------------------------


def sample_tasks(n: int = 6) -> list[Task]:
    """Small task documents, one with non-ASCII text and a newline in its description."""
    return [
        {
            "id": f"t{i:03d}",
            "name": f"Task {i} ✓",
            "description": "two\nlines",
            "enabled": i % 2 == 0,
        }
        for i in range(n)
    ]


def write_sample(path: Path, tasks: list[Task]) -> None:
    """A pristine export of `tasks`, written by the library writer."""
    header = ExportHeader("t", "https://x.example", "2026-12-01T08:00:00.000Z", "j", "all = true")
    with open_target(str(path)) as target:
        writer = ExportWriter(target, header)
        for task in tasks:
            writer.write(task)
        writer.finish()
        target.commit()


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _cut_mid_line(data: bytes) -> bytes:
    lines = _lines(data)
    return b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2]


def _edit_task(data: bytes) -> bytes:
    return data.replace(b'"Task 3 ', b'"Task 9 ')


def _swap(data: bytes) -> bytes:
    lines = _lines(data)
    lines[2], lines[3] = lines[3], lines[2]
    return b"".join(lines)


def _insert(line: bytes) -> Callable[[bytes], bytes]:
    def insert(data: bytes) -> bytes:
        lines = _lines(data)
        return b"".join([*lines[:3], line, *lines[3:]])

    return insert


def _duplicate(data: bytes) -> bytes:
    return _insert(_lines(data)[2])(data)


def _after_trailer(data: bytes) -> bytes:
    return data + _lines(data)[1]


def _edit_header(data: bytes) -> bytes:
    return data.replace(b'"tenant":"t"', b'"tenant":"prod"', 1)


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated by one line": (lambda d: b"".join(_lines(d)[:-1]), "truncated"),
    "cut mid-line": (_cut_mid_line, "cut short"),
    "task edited": (_edit_task, "was changed"),
    "lines reordered": (_swap, "was changed"),
    "task line repeated": (_duplicate, "added or removed"),
    "line after the trailer": (_after_trailer, "after the trailer"),
    "header edited": (_edit_header, "header was changed"),
    "line not JSON": (_insert(b"{oops\n"), "not a JSON object"),
    "task without an id": (_insert(b'{"name": "x"}\n'), "string 'id'"),
    "blank line": (_insert(b"\n"), "not a JSON object"),
    "empty": (lambda d: b"", "empty file"),
    "not an export": (lambda d: b'[job]\nname = "x"\n', "not a bulkshare export"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
async def test_damaged_file_is_refused_by_the_reader_and_the_cli(case: str, tmp_path: Path) -> None:
    """Each kind of damage is refused with one line naming the file: library and CLI, exit 2."""
    good = tmp_path / "good.jsonl"
    write_sample(good, sample_tasks())
    damage, words = DAMAGE[case]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(ExportFileError) as refused:
        verify_export(bad)
    message = str(refused.value)
    assert words in message and str(bad) in message and "\n" not in message
    assert refused.value.exit_code == 2
    wd = Workdir(tmp_path, tmp_path / "none.toml", dict(os.environ))
    result = await bulkshare(wd, "export", "--verify", str(bad))
    assert result.code == 2
    assert error_lines(result.err) == [f"bulkshare: {message}"]
    assert "Traceback" not in result.err and result.out == ""


def test_reader_streams_then_refuses_at_the_end(tmp_path: Path) -> None:
    """read_export hands out every task before a missing trailer is known: verify comes first."""
    tasks = sample_tasks()
    path = tmp_path / "x.jsonl"
    write_sample(path, tasks)
    items = list(read_export(path))
    assert items[1:] == tasks and isinstance(items[0], ExportHeader)
    path.write_bytes(b"".join(_lines(path.read_bytes())[:-1]))
    seen: list[Any] = []
    with pytest.raises(ExportFileError, match="truncated"):
        seen.extend(read_export(path))
    assert seen[1:] == tasks


# -- atomic writes, bad targets, unreachable tenants ---------------------------------------


def leftovers(directory: Path) -> list[str]:
    """Partial files an export left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


@pytest.mark.parametrize("kind", ["fifo", "directory", "no directory"])
async def test_bad_out_target_is_refused_before_any_request(
    kind: str, demo_sim: Sim, workdir: Workdir
) -> None:
    """A FIFO, a directory or a missing directory as --out: exit 2, one line, nothing sent."""
    target = workdir.path / "target"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        target = workdir.path / "missing" / "x.jsonl"
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "export", "--out", str(target))
    assert result.code == 2
    assert len(error_lines(result.err)) == 1 and str(target) in result.err
    assert (await demo_sim.stats())["requests"] == 0
    assert leftovers(workdir.path) == []


async def test_only_one_tenant_per_file(demo_sim: Sim, workdir: Workdir) -> None:
    """`--tenant all` over two tenants is refused with exit 2 before any request."""
    text = workdir.config.read_text()
    workdir.config.write_text(text + text.split("\n", 1)[1].replace("tenants.t", "tenants.u"))
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "export", "--tenant", "all", "--out", "x.jsonl")
    assert result.code == 2 and "one tenant" in result.err
    assert (await demo_sim.stats())["requests"] == 0


def synthetic(n: int) -> list[Task]:
    """`n` small tasks for a hand-made list endpoint."""
    return [{"id": f"task{i:04d}", "name": f"n{i}", "enabled": True} for i in range(n)]


class ListServer:
    """A list endpoint on a loopback port: offset pages, cursor links, and ways to misbehave."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self.queries: list[dict[str, str]] = []
        self.offset_answer: Callable[[web.Request], Any] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(ME_PATH, admin_me)
        app.router.add_get("/api/v1/sharing-tasks", self.list)
        return app

    async def list(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.queries.append(query)
        if "offset" in query and self.offset_answer is not None:
            answer: web.Response = await self.offset_answer(request)
            return answer
        limit = int(query.get("limit", "100"))
        start = int(query.get("offset") or query.get("cursor") or 0)
        doc: dict[str, Any] = {
            "sharingTasks": self.tasks[start : start + limit],
            "totalCount": len(self.tasks),
            "links": {},
        }
        if start + limit < len(self.tasks):
            href = request.url.with_query({"cursor": str(start + limit), "limit": str(limit)})
            doc["links"]["next"] = {"href": str(href)}
        return web.json_response(doc)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` on a loopback port; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def url_workdir(tmp_path: Path, url: str) -> Workdir:
    """A workdir whose tenant `t` is at `url`, with few attempts per request."""
    config = tmp_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[defaults]\nmax_attempts = 2\n[tenants.t]\nurl = "{url}"\n'
        f'api_key_env = "{TEST_KEY_ENV}"\n'
    )
    return Workdir(tmp_path, config, {**os.environ, TEST_KEY_ENV: TEST_KEY})


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_tenant_moving_under_offset_pages_restarts_on_the_cursor(
    fmt: str, tmp_path: Path
) -> None:
    """totalCount moving mid-export rewinds the file and walks the cursor: each task once."""
    server = ListServer(synthetic(250))

    async def moved(request: web.Request) -> web.Response:
        return web.json_response({"sharingTasks": server.tasks[:100], "totalCount": 251})

    server.offset_answer = moved
    async with serving(server.app()) as url:
        wd = url_workdir(tmp_path, url)
        result = await bulkshare(wd, "export", "--out", f"x.{fmt}", "--format", fmt)
    assert result.code == 0, result.err
    assert any("offset" in q for q in server.queries) and any("cursor" in q for q in server.queries)
    if fmt == "jsonl":
        _, tasks = exported(tmp_path / "x.jsonl")
        assert tasks == server.tasks
    else:
        assert [r["id"] for r in csv_rows(tmp_path / "x.csv")] == [t["id"] for t in server.tasks]
    assert "exported 250 of 250 tasks" in result.out


async def test_failed_read_keeps_the_old_file_and_leaves_no_partial(tmp_path: Path) -> None:
    """A tenant failing mid-listing exits 4 with one line; the file it would replace is intact."""
    server = ListServer(synthetic(300))

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"errors": [{"title": "nope"}]}, status=404)

    server.offset_answer = broken
    old = tmp_path / "x.jsonl"
    old.write_text("yesterday's export\n")
    async with serving(server.app()) as url:
        result = await bulkshare(url_workdir(tmp_path, url), "export", "--out", "x.jsonl")
    assert result.code == 4
    assert len(error_lines(result.err)) == 1 and "nothing exported" in result.err
    assert old.read_text() == "yesterday's export\n"
    assert leftovers(tmp_path) == []


async def test_unreachable_tenant_exits_4_and_writes_nothing(tmp_path: Path) -> None:
    """Nobody answering at the tenant's URL: exit 4, no file, no partial file."""
    result = await bulkshare(url_workdir(tmp_path, "http://127.0.0.1:9"), "export", "--out", "x")
    assert result.code == 4 and "unreachable" in result.err
    assert not (tmp_path / "x").exists() and leftovers(tmp_path) == []


async def test_sigterm_mid_export_exits_130_and_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM while pages are read stops at once (exit 130) and removes the partial file."""
    server = ListServer(synthetic(300))
    asked, release = asyncio.Event(), asyncio.Event()

    async def stalled(request: web.Request) -> web.Response:
        asked.set()
        await release.wait()
        return web.json_response({"sharingTasks": [], "totalCount": 300})

    server.offset_answer = stalled
    async with serving(server.app()) as url:
        wd = url_workdir(tmp_path, url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bulkshare", "export", "--out", "x.jsonl",
            "--config", str(wd.config), cwd=tmp_path, env=wd.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            await asked.wait()
            assert leftovers(tmp_path)  # the partial file exists while pages are read
            proc.send_signal(signal.SIGTERM)
            _, err = await proc.communicate()
        release.set()
    assert proc.returncode == 130, err.decode()
    assert not (tmp_path / "x.jsonl").exists() and leftovers(tmp_path) == []


def test_atomic_file_never_shows_a_partial_file_under_the_final_name(tmp_path: Path) -> None:
    """While an export is written the final name holds the old file; an error leaves it so."""
    final = tmp_path / "x.jsonl"
    final.write_bytes(b"old\n")
    with pytest.raises(RuntimeError), open_target(str(final)) as target:
        assert isinstance(target, AtomicFile)
        target.write(b"new, half written")
        target.rewind()
        assert final.read_bytes() == b"old\n" and target.tmp.exists()
        raise RuntimeError("stop")
    assert final.read_bytes() == b"old\n" and leftovers(tmp_path) == []
    with open_target(str(final)) as target:
        target.write(b"new\n")
        target.commit()
    assert final.read_bytes() == b"new\n" and leftovers(tmp_path) == []
    assert final.stat().st_mode & 0o777 == 0o600


def test_header_and_trailer_lines_are_one_json_object_each(tmp_path: Path) -> None:
    """Line 1 is the header, the last the trailer with the count and SHA-256 of the task lines."""
    path = tmp_path / "x.jsonl"
    write_sample(path, sample_tasks(4))
    lines = _lines(path.read_bytes())
    head, body, tail = orjson.loads(lines[0]), lines[1:-1], orjson.loads(lines[-1])
    assert head["format"] == EXPORT_FORMAT and head["exported_at"].endswith("Z")
    assert set(head) >= {"format", "tenant", "url", "exported_at", "job", "where"}
    assert tail["trailer"] is True and tail["count"] == 4 == len(body)
    assert tail["sha256"] == hashlib.sha256(b"".join(body)).hexdigest()
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)


async def test_export_is_paced_within_the_read_tier(tmp_path: Path) -> None:
    """A tier 1 of 10 reads per second is never overrun: the whole tenant, and not one 429."""
    tenant = SimTenant.seed(1000, 3)
    strict = SimConfig(api_key=TEST_KEY, tier1_per_minute=600, window_s=1.0)
    async with running_sim(tenant, strict) as url, aiohttp.ClientSession() as session:
        wd = url_workdir(tmp_path, url)
        limits = "[tenants.t.limits]\ntier1_per_minute = 600\nwindow_s = 1\n"
        wd.config.write_text(wd.config.read_text() + limits)
        result = await bulkshare(wd, "export", "--out", "x.jsonl")
        stats = await Sim(url, session).stats()
    assert result.code == 0, result.err
    assert len(exported(tmp_path / "x.jsonl")[1]) == 1000
    assert stats["throttled"] == 0 and stats["requests"] >= 11
