"""A terminal that reads well: one owner of it (the summary after the live display's last
state), a resumed run's own rate, the waiting state, 429s once per burst, and the notices -q
keeps (the built-in simulator, a state directory on a network filesystem).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from bulkshare import audit
from bulkshare.client import ApiClient, ApiKeyAuth, Tier, TierBudgets
from bulkshare.commands.notices import StateDirCheck
from bulkshare.commands.output import Output
from bulkshare.commands.progress import STALL_S, ProgressBoard, Snapshot
from bulkshare.commands.throttle import QUIET_S, BurstLog
from bulkshare.config import load_config
from bulkshare.errors import InterruptedRun
from bulkshare.job import load_job
from bulkshare.plan import build_plan
from bulkshare.run import RunDir, RunMeta, Runner, RunOptions, new_run_id
from bulkshare.sim import SimConfig
from tests.conftest import ROOT, TEST_KEY, Sim, Workdir, bulkshare
from tests.test_multi_tenant import json_lines, multi_workdir, two_sims

DISABLE = str(ROOT / "jobs" / "disable-orphaned.toml")
SHOW_CURSOR = b"\x1b[?25h"  # rich shows the cursor again when its live display stops
REDRAW = re.compile(rb"\x1b\[(\d*A|2K)")  # cursor up / erase line: a live display redrawing


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def read_all(fd: int) -> bytes:
    """Everything written to a pseudo-terminal until its last writer closed it."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def on_a_terminal(wd: Workdir, *args: str) -> tuple[int, bytes]:
    """Run bulkshare with stdout and stderr on one pseudo-terminal, as an admin's shell has
    them; its exit code and every byte the terminal received."""
    primary, secondary = os.openpty()
    env = {**wd.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bulkshare", *args, "--config", str(wd.config)),
        cwd=wd.path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    try:
        received = await asyncio.to_thread(read_all, primary)
        code = await proc.wait()
    finally:
        os.close(primary)
    return code, received


async def test_the_summary_prints_after_the_live_display_stopped(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """On a terminal, the live display draws, stops, and only then the summary prints: no
    redraw after it, so nothing lands on or overwrites the live line."""
    code, received = await on_a_terminal(workdir, "apply", DISABLE, "--yes")
    assert code == 0, received.decode(errors="replace")
    stopped = received.rfind(SHOW_CURSOR)
    summary = received.find(b"429s seen")
    assert stopped != -1 and REDRAW.search(received[:stopped]), "a live display was drawn"
    assert summary > stopped, "the summary came after the display stopped"
    assert received.count(b"429s seen") == 1
    assert not REDRAW.search(received[stopped:]), "nothing redrawn over the summary"
    started = received.find(b" started (")
    assert -1 < started < stopped, "the run's start note printed while it was live"


async def test_multi_tenant_combined_line_after_the_display(tmp_path: Path) -> None:
    """With two tenants on a terminal, the combined line and both summaries come after the
    live display stopped."""
    async with two_sims() as (a, b):
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        code, received = await on_a_terminal(wd, "apply", DISABLE, "--tenant", "all", "--yes")
    assert code == 0, received.decode(errors="replace")
    stopped = received.rfind(SHOW_CURSOR)
    combined = received.find(b"tenants: a exit 0, b exit 0; exit 0")
    assert combined > stopped > -1
    assert received.count(b"429s seen") == 2
    assert received.find(b"429s seen") > stopped
    assert not REDRAW.search(received[stopped:])


def make_client(url: str, writes_per_window: int) -> ApiClient:
    """A client whose write tier allows `writes_per_window` per 300 s window."""
    budgets = TierBudgets.from_limits(
        {Tier.TIER1: 1000, Tier.TIER2: writes_per_window // 5 or 1, Tier.USERS_FILTER: 200},
        300.0,
    )
    return ApiClient(url, ApiKeyAuth(TEST_KEY), budgets, concurrency=4)


async def planned_run(client: ApiClient, state: Path) -> tuple[RunDir, Any]:
    """A run directory holding the disable job's plan against the client's tenant."""
    job = load_job(DISABLE)
    plan = await build_plan(client, job, "t")
    run_dir = RunDir.create(state, new_run_id(job.name, "t"))
    plan.write(run_dir.plan)
    run_dir.write_meta(RunMeta(run_dir.run_id, "t", job.name, audit.utc_now(), verify=False))
    return run_dir, plan


async def until(condition: Any, what: str) -> None:
    """Let the event loop run until `condition()` holds (a bounded number of turns)."""
    for _ in range(20000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never saw {what}")


async def test_waiting_for_budget_shows_in_the_live_state(demo_sim: Sim, workdir: Workdir) -> None:
    """When the write budget is spent, requests wait and the board says "waiting for budget
    (n s)" once nothing was recorded for a while, instead of a rate of 0/s."""
    clock = FakeClock()
    board = ProgressBoard(Output(io.StringIO(), io.StringIO()), live=False, every_s=60, clock=clock)
    async with make_client(demo_sim.url, writes_per_window=5) as client:
        run_dir, plan = await planned_run(client, workdir.state)
        assert len(plan.changes) > 2
        stop = asyncio.Event()
        runner = Runner(run_dir, plan, client, RunOptions(verify=False, concurrency=4), stop=stop)
        board.track("t", runner)
        task = asyncio.create_task(runner.run())
        await until(lambda: runner.recorded >= 1 and client.budgets.waiting() > 0, "a wait")
        [moving] = board.snapshots()
        assert moving.state == "running" and moving.waiting > 0
        clock.now += STALL_S + 1.4
        [stalled] = board.snapshots()
        assert stalled.state == "waiting"
        assert stalled.status_text() == f"waiting for budget ({int(STALL_S + 1.4)} s)"
        assert stalled.done == moving.done < stalled.total
        stop.set()
        client.halt.set()  # the waiting requests are dropped, never sent
        with pytest.raises(InterruptedRun):
            await task


def test_paused_and_done_states_read_as_words() -> None:
    """A 429 pause shows its seconds left; a finished run shows done, not a rate."""
    paused = Snapshot("t", "r", 3, 10, 0.0, None, 2, waiting=4, paused_s=12.2)
    assert paused.status_text() == "paused by 429s (13 s left)"
    done = Snapshot("t", "r", 10, 10, 5.0, 0.0, 0)
    assert done.state == "done" and done.eta_text() == "done"
    moving = Snapshot("t", "r", 4, 10, 2.0, 3.0, 0, waiting=1, stalled_s=STALL_S / 2)
    assert moving.status_text() == "2/s ETA 0:03"


async def test_a_resumed_runs_rate_counts_only_its_own_work(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """A run resumed after k changes shows k done at once, no rate from them, and a rate of
    only the changes this process recorded."""
    async with make_client(demo_sim.url, writes_per_window=1000) as client:
        run_dir, plan = await planned_run(client, workdir.state)
        stop = asyncio.Event()
        seen: list[dict[str, Any]] = []

        def on_record(record: dict[str, Any]) -> None:
            seen.append(record)
            if len(seen) == 5:
                stop.set()

        first = Runner(
            run_dir, plan, client, RunOptions(verify=False), stop=stop, on_record=on_record
        )
        with pytest.raises(InterruptedRun):
            await first.run()
        already = len(run_dir.recorded())
        assert 5 <= already < len(plan.changes)

        clock = FakeClock()
        board = ProgressBoard(
            Output(io.StringIO(), io.StringIO()), live=False, every_s=60, clock=clock
        )
        resumed = Runner(run_dir, plan, client, RunOptions(verify=False))
        board.track("t", resumed, already_done=already)
        [start] = board.snapshots()
        assert start.done == already and start.rate == 0 and start.eta_text() == "-"
        await resumed.run()
        clock.now += 10.0
        [end] = board.snapshots()
        assert end.done == len(plan.changes)
        assert end.rate == (len(plan.changes) - already) / 10.0


def test_burst_log_tells_a_burst_once_and_its_count_at_the_end() -> None:
    """Three 429s close together are one warning and one end line counting 3; a later one
    starts a new burst."""
    clock = FakeClock()
    bursts = BurstLog(clock=clock)
    seen: list[dict[str, Any]] = []
    for step in (0.0, 0.5, 0.5):
        clock.now += step
        event = {"event": "rate-limited", "tenant": "a", "retry_after_s": 1.0}
        with contextlib.suppress(structlog.DropEvent):  # what a counted 429 ends in
            seen.append(dict(bursts(None, "warning", event)))
    assert [e["burst"] for e in seen] == ["start"]
    assert bursts.active("a") == 3
    with capture_logs() as logs:
        clock.now += 1.0 + QUIET_S - 0.1
        bursts.flush()
        assert logs == [] and bursts.active("a") == 3
        clock.now += 0.2
        bursts.flush()
    [end] = logs
    assert end["event"] == "rate-limited-burst-end" and end["count"] == 3
    assert end["tenant"] == "a" and end["seconds"] == 1.0
    clock.now += 100
    again = bursts(None, "warning", {"event": "rate-limited", "tenant": "a"})
    assert again["burst"] == "start" and bursts.active("a") == 1


async def test_429s_are_logged_once_per_burst(tmp_path: Path) -> None:
    """A run that draws many 429s logs a start line per burst and an end line with its count;
    the counts add up to the summary's 429s, and -v logs every one."""
    strict = SimConfig(
        api_key=TEST_KEY, tier1_per_minute=12000, tier2_per_minute=1200, window_s=1.0
    )
    async with two_sims(strict) as (a, b):
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        wd = multi_workdir(tmp_path / "a", {"a": a.url})
        result = await bulkshare(wd, "apply", DISABLE, "--yes", "--log-format", "json")
        assert result.code == 0, result.err
        lines = json_lines(result.err)
        starts = [r for r in lines if r["event"] in ("rate-limited", "retry-after-clamped")]
        ends = [r for r in lines if r["event"] == "rate-limited-burst-end"]
        seen = summary_429s(wd)
        assert seen > len(starts) >= 1, "several 429s, fewer lines"
        assert all(r["burst"] == "start" for r in starts)
        assert len(ends) == len(starts)
        assert sum(r["count"] for r in ends) == seen
        assert all(r["tenant"] == "a" for r in starts + ends)

        wd_b = multi_workdir(tmp_path / "b", {"b": b.url})
        verbose = await bulkshare(wd_b, "apply", DISABLE, "--yes", "--log-format", "json", "-v")
        assert verbose.code == 0, verbose.err
        every = [r for r in json_lines(verbose.err) if r["event"] == "rate-limited"]
        assert len(every) == summary_429s(wd_b) > 1
        assert not [r for r in json_lines(verbose.err) if r["event"] == "rate-limited-burst-end"]


def summary_429s(wd: Workdir) -> int:
    """The 429s the workdir's one run counted."""
    [summary_path] = wd.state.glob("runs/*/summary.json")
    seen: int = orjson.loads(summary_path.read_bytes())["429s_seen"]
    return seen


async def test_quiet_keeps_the_simulator_notice(tmp_path: Path, workdir: Workdir) -> None:
    """`-q` against the built-in simulator still says it is simulated; against a configured
    tenant -q hides the tenant line."""
    env = {k: v for k, v in os.environ.items() if k != "BULKSHARE_CONFIG"}
    empty = tmp_path / "no-config"
    empty.mkdir()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bulkshare", "-q", "plan", DISABLE),
        cwd=empty,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "SIMULATED" in err.decode() and "built-in simulated tenant" in err.decode()
    quiet = await bulkshare(workdir, "-q", "plan", DISABLE)
    assert quiet.code == 0 and "tenant t:" not in quiet.err


def test_state_dir_on_nfs_warns_once(tmp_path: Path) -> None:
    """A state_dir under an NFS mount draws one warning line per process, however many
    commands check it; a local one draws none, and -q keeps the warning."""
    shared = tmp_path / "shared"
    shared.mkdir()
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nsrv:/x {shared} nfs4 rw 0 0\n")
    config = tmp_path / "bulkshare.toml"
    config.write_text(f'state_dir = "{shared / "state"}"\n')
    err = io.StringIO()
    output = Output(io.StringIO(), err, quiet=True)
    check = StateDirCheck(mounts)
    check(load_config(str(config)), output)
    check(load_config(str(config)), output)
    [line] = err.getvalue().splitlines()
    assert line.startswith("warning: state_dir") and "nfs4" in line
    local = tmp_path / "local.toml"
    local.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    check(load_config(str(local)), output)
    assert err.getvalue().splitlines() == [line]


async def test_apply_on_a_local_state_dir_warns_nothing(demo_sim: Sim, workdir: Workdir) -> None:
    """The wired check says nothing for a state directory on a local disk."""
    result = await bulkshare(workdir, "apply", DISABLE, "--yes")
    assert result.code == 0, result.err
    assert "warning: state_dir" not in result.err
