"""Several tenants in one command, logs bound to tenant and run, and progress while applying."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bulkshare import audit
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import ROOT, TEST_KEY, TEST_KEY_ENV, Result, Sim, Workdir, bulkshare

# slow (`.ci/run` runs it with `pytest -m slow`): several simulators and CLI runs at once
pytestmark = pytest.mark.slow

DISABLE_ORPHANED = str(ROOT / "jobs" / "disable-orphaned.toml")


def orphaned_enabled(tasks: dict[str, dict[str, Any]]) -> set[str]:
    """Ids of the tasks `jobs/disable-orphaned.toml` selects."""
    return {
        tid
        for tid, t in tasks.items()
        if t.get("enabled")
        and t.get("statusCode") != "DELETING"
        and {e.get("value") for e in t.get("taskErrors") or []} & {"ORPHAN", "OWNER_DISABLED"}
    }


@asynccontextmanager
async def two_sims(
    config: SimConfig | None = None, tasks: tuple[int, int] = (DEMO_TASKS, 400)
) -> AsyncIterator[tuple[Sim, Sim]]:
    """Two different simulated tenants on two loopback ports."""
    config = config or SimConfig(api_key=TEST_KEY)
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        url_a = await stack.enter_async_context(
            running_sim(SimTenant.seed(tasks[0], DEMO_SEED), config)
        )
        url_b = await stack.enter_async_context(running_sim(SimTenant.seed(tasks[1], 7), config))
        yield Sim(url_a, session), Sim(url_b, session)


def multi_workdir(tmp_path: Path, urls: dict[str, str], extra: str = "") -> Workdir:
    """A config naming each url as a tenant, all with the test key."""
    lines = ['state_dir = "state"', extra]
    for name, url in urls.items():
        lines += [f"[tenants.{name}]", f'url = "{url}"', f'api_key_env = "{TEST_KEY_ENV}"']
        lines += [f"[tenants.{name}.limits]", "tier2_per_minute = 100000"]
    config = tmp_path / "bulkshare.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Workdir(tmp_path, config, env)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines in a stderr text (other lines are notes)."""
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


#: a dead port refuses at once: two attempts say so without waiting out six backoffs
FEW_ATTEMPTS = "[defaults]\nmax_attempts = 2"


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def summaries(wd: Workdir) -> dict[str, dict[str, Any]]:
    """Each run's summary.json by tenant; every audit log must verify."""
    found: dict[str, dict[str, Any]] = {}
    for run in sorted(wd.state.glob("runs/*")):
        assert audit.verify(run / "audit.jsonl").ok
        doc = orjson.loads((run / "summary.json").read_bytes())
        found[doc["tenant"]] = doc
    return found


async def test_tenant_all_applies_to_every_tenant(tmp_path: Path) -> None:
    """`--tenant all` runs each configured tenant, with its own run, and one combined exit."""
    async with two_sims() as (a, b):
        before = {"a": orphaned_enabled(await a.tasks()), "b": orphaned_enabled(await b.tasks())}
        assert before["a"] and before["b"]
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        result = await bulkshare(wd, "apply", DISABLE_ORPHANED, "--tenant", "all", "--yes")
        assert result.code == 0, result.err
        assert "tenants: a exit 0, b exit 0; exit 0" in result.out
        assert not orphaned_enabled(await a.tasks())
        assert not orphaned_enabled(await b.tasks())
        runs = summaries(wd)
        assert set(runs) == {"a", "b"}
        for name in ("a", "b"):
            assert runs[name]["counts"] == {"applied": len(before[name])}


async def test_one_dead_tenant_does_not_stop_the_others(tmp_path: Path) -> None:
    """An unreachable tenant exits 4 for the command, and the reachable one is still applied."""
    async with two_sims() as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url, "dead": closed_port_url()}, FEW_ATTEMPTS)
        result = await bulkshare(
            wd, "apply", DISABLE_ORPHANED, "--tenant", "a", "--tenant", "dead", "--yes"
        )
        assert result.code == 4, result.err
        assert "bulkshare: tenant dead: unreachable" in result.err
        assert "Traceback" not in result.err
        assert "tenants: a exit 0, dead exit 4; exit 4" in result.out
        assert not orphaned_enabled(await a.tasks())
        assert set(summaries(wd)) == {"a"}


async def test_log_lines_are_bound_to_tenant_and_run(tmp_path: Path) -> None:
    """Lines logged deep in the client (429s here) carry the tenant and run they belong to."""
    # the tenants claim a higher write limit than the simulators keep, so the service answers
    # 429 (reads keep their tier's room: the run reads twice per write, before and after it)
    strict = SimConfig(
        api_key=TEST_KEY, tier1_per_minute=12000, tier2_per_minute=1200, window_s=1.0
    )
    async with two_sims(strict) as (a, b):
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        result = await bulkshare(
            wd, "apply", DISABLE_ORPHANED, "--tenant", "all", "--yes", "--log-format", "json"
        )
        assert result.code == 0, result.err
        throttled = [r for r in json_lines(result.err) if r["event"] == "rate-limited"]
        assert {r["tenant"] for r in throttled} == {"a", "b"}
        runs = {r.name for r in wd.state.glob("runs/*")}
        for record in throttled:
            assert record["run_id"] in runs
            assert f"-{record['tenant']}-" in record["run_id"]
        assert sum(s["429s_seen"] for s in summaries(wd).values()) >= len(throttled)


async def test_progress_lines_when_not_on_a_terminal(tmp_path: Path) -> None:
    """Without a terminal, progress comes as periodic log lines with done, total, rate and ETA."""
    slow = SimConfig(api_key=TEST_KEY, latency_ms=40)
    async with two_sims(slow) as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url}, "[defaults]\nprogress_every_s = 0.2")
        result = await bulkshare(wd, "apply", DISABLE_ORPHANED, "--yes", "--concurrency", "2")
        assert result.code == 0, result.err
        lines = json_lines(result.err)
        ticks = [r for r in lines if r["event"] == "progress"]
        final = [r for r in lines if r["event"] == "progress-final"]
        assert ticks, result.err
        assert all(0 <= r["done"] <= r["total"] and r["tenant"] == "a" for r in ticks)
        assert {"rate_per_s", "eta_s", "throttled", "run_id"} <= set(ticks[0])
        assert len(final) == 1 and final[0]["done"] == final[0]["total"] > 0


async def test_quiet_shows_no_progress(tmp_path: Path) -> None:
    """`-q` keeps stderr free of progress lines."""
    async with two_sims() as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url}, "[defaults]\nprogress_every_s = 0.05")
        result = await bulkshare(wd, "apply", DISABLE_ORPHANED, "--yes", "-q")
        assert result.code == 0, result.err
        assert not [r for r in json_lines(result.err) if r["event"].startswith("progress")]


async def run_on_terminal(wd: Workdir, *args: str, answer: bytes = b"") -> Result:
    """Run bulkshare with stdin and stderr on a terminal; `answer` is typed ahead."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkshare",
        *args,
        "--config",
        str(wd.config),
        cwd=wd.path,
        env={**wd.env, "COLUMNS": "120", "TERM": "xterm"},
        stdin=slave,
        stdout=asyncio.subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    if answer:
        os.write(master, answer)
    screen = bytearray()
    reader = asyncio.get_running_loop().run_in_executor(None, _drain, master, screen)
    out, _ = await proc.communicate()
    await reader
    os.close(master)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), screen.decode(errors="replace"))


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other side closed
            return
        if not chunk:
            return
        into += chunk


async def test_live_progress_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal each tenant gets a live line with done/total and 429s."""
    async with two_sims() as (a, b):
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        result = await run_on_terminal(wd, "apply", DISABLE_ORPHANED, "--tenant", "all", "--yes")
        assert result.code == 0, result.err
        done = summaries(wd)
        for name in ("a", "b"):
            total = done[name]["planned"]
            assert f"{total}/{total}" in result.err, result.err
        assert "429s 0" in result.err


async def test_one_question_for_all_tenants(tmp_path: Path) -> None:
    """On a terminal, one prompt names every tenant's changes; 'n' changes nothing anywhere."""
    async with two_sims() as (a, b):
        await a.reset_stats()
        await b.reset_stats()
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        result = await run_on_terminal(
            wd, "apply", DISABLE_ORPHANED, "--tenant", "all", answer=b"n\n"
        )
        assert result.code == 3, result.err
        assert result.err.count("[y/N]") == 1
        assert "changes to tenant a" in result.err and "changes to tenant b" in result.err
        assert (await a.stats())["writes"] == 0 and (await b.stats())["writes"] == 0
        assert not list(wd.state.glob("runs/*"))


async def test_plan_reads_every_tenant_and_reports_each(tmp_path: Path) -> None:
    """`plan --tenant all --report` writes one report per tenant and sends no write anywhere."""
    async with two_sims() as (a, b):
        await a.reset_stats()
        await b.reset_stats()
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        report = tmp_path / "plan.md"
        result = await bulkshare(
            wd, "plan", DISABLE_ORPHANED, "--tenant", "all", "--report", str(report)
        )
        assert result.code == 0, result.err
        for name, sim in (("a", a), ("b", b)):
            text = (tmp_path / f"plan.{name}.md").read_text()
            assert f"on tenant {name}" in text
            expected = len(orphaned_enabled(await sim.tasks()))
            assert text.count("| disable | enabled: true → false |") == expected
            assert (await sim.stats())["writes"] == 0


async def test_plan_with_a_dead_tenant_still_shows_the_others(tmp_path: Path) -> None:
    """One unreachable tenant makes `plan` exit 4, after the reachable tenant's plan is shown."""
    async with two_sims() as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url, "dead": closed_port_url()}, FEW_ATTEMPTS)
        result = await bulkshare(wd, "plan", DISABLE_ORPHANED, "--tenant", "all")
        assert result.code == 4, result.err
        assert "plan: job disable-orphaned on tenant a" in result.out
        assert "bulkshare: tenant dead: unreachable" in result.err
        assert "tenants: a exit 0, dead exit 4; exit 4" in result.err


async def test_json_log_format_makes_stderr_all_json_lines(tmp_path: Path) -> None:
    """With `--log-format json` every stderr line is a JSON event: notes and errors too."""
    async with two_sims() as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url, "dead": closed_port_url()}, FEW_ATTEMPTS)
        result = await bulkshare(
            wd, "apply", DISABLE_ORPHANED, "--tenant", "all", "--yes", "--log-format", "json"
        )
        assert result.code == 4, result.err
        events = [orjson.loads(line) for line in result.err.splitlines()]
        notes = [e for e in events if e["event"] == "note"]
        assert any(e.get("tenant") == "a" and "started" in e["message"] for e in notes)
        errors = [e for e in events if e["event"] == "error"]
        assert len(errors) == 1 and errors[0]["exit_code"] == 4
        assert "tenant dead: unreachable" in errors[0]["message"]


async def test_a_tenant_without_its_secret_does_not_block_the_others(tmp_path: Path) -> None:
    """Commands for one tenant, and `runs`, work while another tenant's secret is unset."""
    async with two_sims() as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url})
        with wd.config.open("a") as f:
            f.write('[tenants.b]\nurl = "https://b.example.com"\napi_key_env = "UNSET_B_KEY"\n')
        wd.env.pop("UNSET_B_KEY", None)
        applied = await bulkshare(wd, "apply", DISABLE_ORPHANED, "--tenant", "a", "--yes")
        assert applied.code == 0, applied.err
        listed = await bulkshare(wd, "runs")
        assert listed.code == 0 and "disable-orphaned" in listed.out, listed.err
        refused = await bulkshare(wd, "plan", DISABLE_ORPHANED, "--tenant", "all")
        assert refused.code == 2
        assert "tenants.b.api_key_env: environment variable UNSET_B_KEY" in refused.err


async def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`plan ... | head -1`: the closed pipe ends the output quietly, with the command's code."""
    async with two_sims() as (a, _):
        wd = multi_workdir(tmp_path, {"a": a.url})
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before anything is written
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkshare",
            "plan",
            DISABLE_ORPHANED,
            "--format",
            "markdown",
            "--config",
            str(wd.config),
            cwd=wd.path,
            env=wd.env,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
        os.close(write_end)
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err and b"BrokenPipe" not in err
