"""Locks that expire: a lock names its run and holds a lease it renews; a lease left to lapse
is taken over, whatever host held it, and `unlock` says who holds a lock and clears it.

Two hosts are two UTS namespaces (`unshare --uts`, each with its own host name) sharing one
state directory. A lease lapsing is simulated by setting the lock file's renewal time (its
mtime) back, never by waiting for it; a live holder's renewals are waited for as a condition.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from bulkshare.errors import ConfigError, RefusedError
from bulkshare.run.lock import run_lock
from bulkshare.run.lockfile import (
    DEFAULT_LEASE_S,
    LEASE_ENV,
    STALE_AFTER_LEASES,
    lease_from_env,
    lock_path,
    pid_namespace,
    read_lock,
)
from tests.conftest import Result, Sim, Workdir, bulkshare, error_lines
from tests.test_crash_signals import (
    change_records,
    expected,
    job_file,
    run_dir,
    successful_writes,
    wait_for,
)
from tests.test_e2e import view

# slow (`.ci/run` runs it with `pytest -m slow`): leases and takeovers across processes and hosts
pytestmark = pytest.mark.slow

JOB = "crash-signals"  # the job of tests.test_crash_signals.JOB
LAPSED_S = DEFAULT_LEASE_S * STALE_AFTER_LEASES + 1


def foreign_lock(path: Path, host: str, *, age_s: float, pid: int = 4242, **extra: Any) -> Path:
    """A lock as a run on `host` leaves it, last renewed `age_s` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": "bulkshare-lock/1",
        "run_id": "20260101T000000Z-x-t-0000",
        "pid": pid,
        "host": host,
        "pid_ns": "pid:[1]",
        "since": "2026-01-01T00:00:00Z",
        "lease_s": DEFAULT_LEASE_S,
        **extra,
    }
    path.write_bytes(orjson.dumps(doc))
    lapse(path, age_s)
    return path


def lapse(path: Path, age_s: float = LAPSED_S) -> None:
    """Set the lock's last renewal `age_s` seconds back: its lease lapses as if time passed."""
    then = time.time() - age_s
    os.utime(path, (then, then), follow_symlinks=False)


# --- the lock file ------------------------------------------------------------------------


def test_a_lock_names_its_run_and_appears_whole(tmp_path: Path) -> None:
    """The lock names pid, host, lease and, once bound, the run; no temporary file is left."""
    with run_lock(tmp_path, "t", "j", lease_s=5) as lock:
        doc = orjson.loads(lock.path.read_bytes())
        assert doc["pid"] == os.getpid() and doc["host"] == socket.gethostname()
        assert doc["lease_s"] == 5 and doc["run_id"] is None
        lock.bind("run-1")
        assert orjson.loads(lock.path.read_bytes())["run_id"] == "run-1"
        assert [p.name for p in lock.path.parent.iterdir()] == ["t--j.lock"]
    assert list((tmp_path / "locks").iterdir()) == []


def test_a_live_lock_refuses_naming_its_holder(tmp_path: Path) -> None:
    """A second taker is refused with the holder's run, pid and host named."""
    with run_lock(tmp_path, "t", "j") as lock:
        lock.bind("run-1")
        with pytest.raises(RefusedError) as refused:
            run_lock(tmp_path, "t", "j").__enter__()
    message = str(refused.value)
    assert "run run-1" in message and f"pid {os.getpid()} on {socket.gethostname()}" in message
    assert "bulkshare unlock t j" in message


def test_the_lease_is_renewed_while_the_lock_is_held(tmp_path: Path) -> None:
    """A held lock set back past its lease is renewed by its holder, and stays live."""
    with run_lock(tmp_path, "t", "j", lease_s=1) as lock:
        lapse(lock.path, 100)
        for _ in range(2000):  # until renewed (every third of the lease), a bounded poll
            if time.time() - lock.path.stat().st_mtime < 1:
                break
            time.sleep(0.005)
        holder = read_lock(lock.path)
        assert holder is not None and holder.stale_reason(time.time()) is None


@pytest.mark.parametrize(
    ("age_s", "taken"),
    [(DEFAULT_LEASE_S * STALE_AFTER_LEASES - 2, False), (LAPSED_S, True)],
    ids=["within-the-margin", "lapsed"],
)
def test_a_lapsed_lease_of_another_host_is_taken_over(
    tmp_path: Path, age_s: float, taken: bool
) -> None:
    """Another host's lock is live until its lease and margin have passed, then taken over with
    one line naming the holder and how long ago it was renewed."""
    path = foreign_lock(lock_path(tmp_path, "t", "j"), "hostA", age_s=age_s)
    with capture_logs() as logs:
        if not taken:
            with pytest.raises(RefusedError, match="pid 4242 on hostA"):
                run_lock(tmp_path, "t", "j").__enter__()
            return
        with run_lock(tmp_path, "t", "j") as lock:
            assert orjson.loads(lock.path.read_bytes())["host"] == socket.gethostname()
    [event] = [e for e in logs if e["event"] == "lock-taken-over"]
    assert "pid 4242 on hostA" in event["holder"]
    assert f"last renewed {LAPSED_S:.0f} s ago" in event["reason"]
    assert not path.exists()


def test_a_half_written_lock_is_live_while_fresh(tmp_path: Path) -> None:
    """An empty lock file (an older bulkshare caught mid-write) is respected while its lease
    would be fresh, and taken over once it would have lapsed."""
    path = lock_path(tmp_path, "t", "j")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(RefusedError):
        run_lock(tmp_path, "t", "j").__enter__()
    lapse(path)
    with run_lock(tmp_path, "t", "j") as lock:
        assert orjson.loads(lock.path.read_bytes())["pid"] == os.getpid()


def test_pids_are_only_judged_in_their_own_namespace(tmp_path: Path) -> None:
    """A dead pid of this host frees its lock at once, unless the lock comes from another pid
    namespace (another container with this host name): then only its lease counts."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    pid = int(gone.stdout)  # a process of this host, gone
    path = lock_path(tmp_path, "t", "j")
    foreign_lock(path, socket.gethostname(), age_s=0, pid=pid, pid_ns="pid:[elsewhere]")
    with pytest.raises(RefusedError):
        run_lock(tmp_path, "t", "j").__enter__()
    foreign_lock(path, socket.gethostname(), age_s=0, pid=pid, pid_ns=pid_namespace())
    with run_lock(tmp_path, "t", "j"):
        pass


def race_for(tmp_path: Path, takers: int) -> list[str]:
    """`takers` threads released at once on one stale lock; what each got (`won`, `refused`)."""
    foreign_lock(lock_path(tmp_path, "t", "j"), "hostA", age_s=LAPSED_S)
    start, done = threading.Barrier(takers), threading.Event()
    outcomes: list[str] = []

    def take() -> None:
        start.wait()
        try:
            with run_lock(tmp_path, "t", "j"):
                outcomes.append("won")
                done.wait(10)  # held until every other taker has had its answer
        except RefusedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=take) for _ in range(takers)]
    for thread in threads:
        thread.start()
    for _ in range(4000):
        if len(outcomes) == takers:
            break
        time.sleep(0.001)
    done.set()
    for thread in threads:
        thread.join()
    return outcomes


def test_takers_of_one_stale_lock_have_one_winner(tmp_path: Path) -> None:
    """Many takers racing for one stale lock: exactly one wins each round, the others are
    refused; no ticket or temporary file is left behind."""
    for _ in range(10):
        outcomes = race_for(tmp_path, 12)
        assert outcomes.count("won") == 1 and len(outcomes) == 12, outcomes
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == []


def test_a_holder_notices_its_lock_taken(tmp_path: Path) -> None:
    """A holder whose lock file is removed says so once, and does not remove its successor's."""
    lost = threading.Event()
    reasons: list[str] = []

    def on_lost(why: str) -> None:
        reasons.append(why)
        lost.set()

    with run_lock(tmp_path, "t", "j", lease_s=1, on_lost=on_lost) as lock:
        lock.path.unlink()
        successor = foreign_lock(lock.path, "hostB", age_s=0)
        assert lost.wait(10)
        assert lock.lost is not None
    assert successor.exists() and len(reasons) == 1


@pytest.mark.parametrize("text", ["0", "abc", "nan", "1e9", "-5"])
def test_a_bad_lease_setting_is_refused(text: str) -> None:
    """BULKSHARE_LOCK_LEASE_S must be seconds within bounds; the default is 60 s."""
    assert lease_from_env({}) == DEFAULT_LEASE_S == 60
    assert lease_from_env({LEASE_ENV: "2.5"}) == 2.5
    with pytest.raises(ConfigError, match=LEASE_ENV):
        lease_from_env({LEASE_ENV: text})


# --- the commands -------------------------------------------------------------------------


def the_lock(wd: Workdir) -> Path:
    """The lock of JOB on tenant t in the workdir's state."""
    return lock_path(wd.state, "t", JOB)


def one_line(result: Result, code: int, *needles: str) -> str:
    """The single error line of a refused command, checked for its exit code and words."""
    assert result.code == code, (result.code, result.err)
    assert "Traceback" not in result.err, result.err
    [line] = error_lines(result.err)
    for needle in needles:
        assert needle in line, line
    return line


def log_events(err: str, name: str) -> list[dict[str, Any]]:
    """The JSON log events called `name` on a stderr."""
    events = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == name]


async def test_unlock_without_a_lock_and_of_a_dead_one(demo_sim: Sim, workdir: Workdir) -> None:
    """No lock: one line, exit 0. A lock of a process gone from this host: removed, exit 0.
    A name that is no tenant or no job name: one line, exit 2."""
    none = await bulkshare(workdir, "unlock", "t", JOB)
    assert none.code == 0 and "no lock" in none.out, none
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    foreign_lock(
        the_lock(workdir), socket.gethostname(), age_s=0, pid=gone.pid, pid_ns=pid_namespace()
    )
    removed = await bulkshare(workdir, "unlock", "t", JOB)
    assert removed.code == 0 and "removed the lock" in removed.out and "is gone" in removed.out
    assert not the_lock(workdir).exists()
    one_line(await bulkshare(workdir, "unlock", "nope", JOB), 2, "unknown tenant 'nope'")
    one_line(await bulkshare(workdir, "unlock", "t", "../etc"), 2, "not a job name")


async def test_a_bad_lease_setting_stops_apply_before_any_request(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """apply with a malformed BULKSHARE_LOCK_LEASE_S exits 2 in one line naming it, sending
    nothing."""
    workdir.env[LEASE_ENV] = "soon"
    await demo_sim.reset_stats()
    one_line(await bulkshare(workdir, "apply", str(job_file(workdir)), "--yes"), 2, LEASE_ENV)
    assert (await demo_sim.stats())["requests"] == 0


# --- two hosts ----------------------------------------------------------------------------


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--uts", "sh", "-c", "hostname bulkshare-probe"], capture_output=True
    )
    return probe.returncode == 0


two_hosts = pytest.mark.skipif(not _unshare_works(), reason="needs unshare --uts (root)")


def on_host_args(host: str, wd: Workdir, *args: str) -> list[str]:
    """`bulkshare ARGS` run on a host of its own name (a UTS namespace), same state dir."""
    script = 'hostname "$0" && exec "$@"'
    return ["unshare", "--uts", "sh", "-c", script, host, sys.executable, "-m", "bulkshare",
            *args, "--config", str(wd.config)]  # fmt: skip


async def start_on(host: str, wd: Workdir, *args: str) -> asyncio.subprocess.Process:
    """Start `bulkshare ARGS` on `host`, not awaited (exec'd: its pid is bulkshare's)."""
    return await asyncio.create_subprocess_exec(
        *on_host_args(host, wd, *args), cwd=wd.path, env=wd.env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def on_host(host: str, wd: Workdir, *args: str) -> Result:
    """Run `bulkshare ARGS` on `host` to its end."""
    proc = await start_on(host, wd, *args)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def saturate(wd: Workdir) -> str:
    """Let tenant t take five writes per 300 s window, so a run then waits; the old config."""
    plain = wd.config.read_text()
    wd.config.write_text(plain + "[tenants.t.limits]\ntier2_per_minute = 1\nwindow_s = 300\n")
    return plain


async def run_held_on_host_a(wd: Workdir) -> asyncio.subprocess.Process:
    """An apply on hostA that has written and now waits for budget, its lock naming its run."""
    proc = await start_on("hostA", wd, "apply", str(job_file(wd)), "--yes", "--concurrency", "2")

    def going() -> bool:
        run = run_dir(wd)
        holder = read_lock(the_lock(wd)) if the_lock(wd).exists() else None
        named = holder is not None and run is not None and holder.run_id == run.name
        return named and run is not None and bool(change_records(run))

    await wait_for(proc, going, "a change record and the lock naming the run")
    return proc


async def runs_state(wd: Workdir) -> str:
    """The state `runs` shows for the only run."""
    listed = await bulkshare(wd, "runs", "--format", "json")
    assert listed.code == 0, listed.err
    [run] = orjson.loads(listed.out)
    state: str = run["state"]
    return state


async def kill(proc: asyncio.subprocess.Process) -> None:
    """kill -9, as a node that goes away does."""
    proc.send_signal(signal.SIGKILL)
    await proc.communicate()


@two_hosts
async def test_a_killed_run_on_host_a_is_taken_over_on_host_b(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """Killed on hostA: hostB is refused (exit 3, naming hostA) until the lease lapses, and so
    is `unlock`; `runs` says running, then dead; then hostB's apply takes over and exits 0."""
    before = await demo_sim.tasks()
    plain = saturate(workdir)
    host_a = await run_held_on_host_a(workdir)
    await kill(host_a)
    holder = read_lock(the_lock(workdir))
    assert holder is not None and holder.host == "hostA"

    refused = await on_host("hostB", workdir, "apply", str(job_file(workdir)), "--yes")
    one_line(refused, 3, "holds the lock", f"pid {host_a.pid} on hostA")
    one_line(await on_host("hostB", workdir, "unlock", "t", JOB), 3, "live", "hostA")
    assert await runs_state(workdir) == "running"

    lapse(the_lock(workdir))
    assert await runs_state(workdir) == "dead"
    run = run_dir(workdir)
    assert run is not None and orjson.loads((run / "run.json").read_bytes())["state"] == "running"
    workdir.config.write_text(plain)
    taken = await on_host("hostB", workdir, "apply", str(job_file(workdir)), "--yes")
    assert taken.code == 0, taken.err
    [event] = log_events(taken.err, "lock-taken-over")
    assert "on hostA" in event["holder"] and "last renewed" in event["reason"]
    assert view(await demo_sim.tasks()) == view(expected(before))
    assert not the_lock(workdir).exists()


@two_hosts
async def test_a_dead_run_resumes_on_another_host(demo_sim: Sim, workdir: Workdir) -> None:
    """A run killed on hostA, shown dead once its lease lapsed, is resumed on hostB: the lock
    is taken over, every task is written once, and the run shows finished."""
    before = await demo_sim.tasks()
    await demo_sim.reset_stats()
    plain = saturate(workdir)
    await kill(await run_held_on_host_a(workdir))
    lapse(the_lock(workdir))
    assert await runs_state(workdir) == "dead"
    run = run_dir(workdir)
    assert run is not None
    workdir.config.write_text(plain)

    resumed = await on_host("hostB", workdir, "resume", run.name)
    assert resumed.code == 0, resumed.err
    assert len(log_events(resumed.err, "lock-taken-over")) == 1
    assert view(await demo_sim.tasks()) == view(expected(before))
    writes = await successful_writes(demo_sim)
    assert set(writes.values()) == {1}, "a task written twice"
    assert await runs_state(workdir) == "finished"
    shown = await bulkshare(workdir, "show", "last", "--format", "json")
    assert orjson.loads(shown.out)["state"] == "finished"


@two_hosts
async def test_unlock_force_stops_a_live_holder(demo_sim: Sim, workdir: Workdir) -> None:
    """`unlock` refuses a live holder (exit 3); `--force` removes its lock (exit 0), and the
    holder, seeing its lock gone, stops as on a signal (exit 130) and can be resumed."""
    before = await demo_sim.tasks()
    plain = saturate(workdir)
    workdir.env[LEASE_ENV] = "1"  # the holder looks at its lock every third of a second
    host_a = await run_held_on_host_a(workdir)
    try:
        one_line(await on_host("hostB", workdir, "unlock", "t", JOB), 3, "is live", "hostA")
        forced = await on_host("hostB", workdir, "unlock", "t", JOB, "--force")
        assert forced.code == 0 and "removed the lock" in forced.out, forced
        async with asyncio.timeout(30):  # a guard against a holder that never notices
            _, err = await host_a.communicate()
    finally:
        if host_a.returncode is None:
            await kill(host_a)
    assert host_a.returncode == 130, err.decode()
    assert len(log_events(err.decode(), "lock-lost")) == 1
    run = run_dir(workdir)
    assert run is not None and await runs_state(workdir) == "interrupted"

    workdir.config.write_text(plain)
    resumed = await bulkshare(workdir, "resume", run.name)
    assert resumed.code == 0, resumed.err
    assert view(await demo_sim.tasks()) == view(expected(before))


async def test_a_killed_run_on_this_host_shows_dead_at_once_and_resumes(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """kill -9 on this host: its pid is gone, so `runs` and `show` say dead without waiting
    for the lease, and resume takes the lock over and finishes each task once."""
    before = await demo_sim.tasks()
    await demo_sim.reset_stats()
    plain = saturate(workdir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bulkshare", "apply", str(job_file(workdir)), "--yes",
        "--config", str(workdir.config), cwd=workdir.path, env=workdir.env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_for(proc, lambda: (r := run_dir(workdir)) is not None and bool(change_records(r)),
                   "a change record")  # fmt: skip
    await kill(proc)
    assert await runs_state(workdir) == "dead"
    shown = await bulkshare(workdir, "show", "last", "--format", "json")
    assert orjson.loads(shown.out)["state"] == "dead", shown.err
    workdir.config.write_text(plain)
    resumed = await bulkshare(workdir, "resume", "last")
    assert resumed.code == 0, resumed.err
    [event] = log_events(resumed.err, "lock-taken-over")
    assert "is gone from this host" in event["reason"]
    assert view(await demo_sim.tasks()) == view(expected(before))
    assert set((await successful_writes(demo_sim)).values()) == {1}
