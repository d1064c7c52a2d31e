"""Local state you can trust: run ids are names not paths, run files are written without
following symlinks, devices and FIFOs are never written or waited on, input files never have
their content echoed, a cut audit log is noticed, and one corrupt run does not break `runs`.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bulkshare import audit
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.job import load_job
from bulkshare.plan import build_plan
from bulkshare.run import RunDir, RunMeta, Runner, RunOptions, new_run_id
from bulkshare.safefile import MAX_INPUT_BYTES
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import (
    ROOT,
    TEST_KEY,
    TEST_KEY_ENV,
    Result,
    Sim,
    Workdir,
    bulkshare,
    error_lines,
)
from tests.test_resume import make_client

# slow (`.ci/run` runs it with `pytest -m slow`): many CLI processes against real run files
pytestmark = pytest.mark.slow

PURGE = ROOT / "jobs" / "purge-deleting.toml"
ORPHANED = ROOT / "jobs" / "disable-orphaned.toml"
VICTIM = b"a file bulkshare must never write\n"


def one_line(result: Result, code: int, *needles: str) -> str:
    """The single error line of a failed command, checked for its exit code and words."""
    assert result.code == code, (result.code, result.err)
    assert "Traceback" not in result.err, result.err
    lines = error_lines(result.err)
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def victim(wd: Workdir, name: str) -> Path:
    """A file outside the state directory that a planted symlink points at."""
    path = wd.path / f"victim-{name}"
    path.write_bytes(VICTIM)
    return path


def plant(link: Path, target: Path) -> None:
    """Replace `link` (if it exists) by a symlink to `target`."""
    link.unlink(missing_ok=True)
    link.symlink_to(target)


async def interrupted_run(sim: Sim, wd: Workdir, after: int = 5) -> RunDir:
    """A disable-orphaned run stopped after `after` records, as a signal leaves it."""
    job = load_job(ORPHANED)
    async with make_client(sim.url) as client:
        plan = await build_plan(client, job, "t")
        run_dir = RunDir.create(wd.state, new_run_id(job.name, "t"))
        plan.write(run_dir.plan)
        run_dir.write_meta(RunMeta(run_dir.run_id, "t", job.name, audit.utc_now()))
        stop = asyncio.Event()
        seen: list[dict[str, Any]] = []

        def on_record(record: dict[str, Any]) -> None:
            seen.append(record)
            if len(seen) == after:
                stop.set()

        runner = Runner(
            run_dir, plan, client, RunOptions(concurrency=2), stop=stop, on_record=on_record
        )
        with pytest.raises(Exception, match="stopped"):
            await runner.run()
    return run_dir


async def finished_run(wd: Workdir, job: Path = PURGE) -> RunDir:
    """A finished apply of `job` (its run directory: the one the apply added)."""
    runs = wd.state / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    applied = await bulkshare(wd, "apply", str(job), "--yes")
    assert applied.code == 0, applied.err
    [new] = set(runs.iterdir()) - before
    return RunDir(new)


# --- symlinks planted in a run directory ------------------------------------------------


async def test_planted_symlinks_are_replaced_not_followed(demo_sim: Sim, workdir: Workdir) -> None:
    """Symlinks planted where a resume writes (summary.json, old temp names) are not followed."""
    run_dir = await interrupted_run(demo_sim, workdir)
    targets = {}
    for name in ("summary.json", "run.tmp", "plan.json.tmp", "run.json.tmp"):
        targets[name] = victim(workdir, name)
        plant(run_dir.root / name, targets[name])
    resumed = await bulkshare(workdir, "resume", run_dir.run_id)
    assert resumed.code == 0, resumed.err
    assert all(t.read_bytes() == VICTIM for t in targets.values())
    summary = run_dir.root / "summary.json"
    assert not summary.is_symlink() and orjson.loads(summary.read_bytes())["exit_code"] == 0


@pytest.mark.parametrize("name", ["audit.jsonl", "checkpoint.sqlite", "run.json"])
async def test_symlinked_run_file_is_refused(demo_sim: Sim, workdir: Workdir, name: str) -> None:
    """A run file swapped for a symlink (to itself, moved) makes resume refuse, sending nothing."""
    run_dir = await interrupted_run(demo_sim, workdir)
    real = run_dir.root / name
    target = workdir.path / f"moved-{name}"
    real.rename(target)
    real.symlink_to(target)
    before = target.read_bytes()
    await demo_sim.reset_stats()
    resumed = await bulkshare(workdir, "resume", run_dir.run_id)
    one_line(resumed, 2, "symbolic link")
    assert target.read_bytes() == before
    assert (await demo_sim.stats())["requests"] == 0


async def test_symlinked_lock_is_not_followed(demo_sim: Sim, workdir: Workdir) -> None:
    """A symlink planted as the job's lock file is taken over as a stale lock; its target kept."""
    target = victim(workdir, "lock")
    lock = workdir.state / "locks" / "t--purge-deleting.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(target)
    await finished_run(workdir)
    assert target.read_bytes() == VICTIM and not lock.exists() and not lock.is_symlink()


async def test_plan_out_symlink_is_replaced(demo_sim: Sim, workdir: Workdir) -> None:
    """`plan --out` onto a symlink replaces the link with the plan; the link's target is kept."""
    target = victim(workdir, "out")
    out = workdir.path / "plan.json"
    out.symlink_to(target)
    planned = await bulkshare(workdir, "plan", str(PURGE), "--out", str(out))
    assert planned.code == 0, planned.err
    assert target.read_bytes() == VICTIM and not out.is_symlink()
    assert orjson.loads(out.read_bytes())["format"] == "bulkshare-plan/1"


@pytest.mark.parametrize("flag", ["--out", "--report"])
async def test_plan_never_replaces_a_device(demo_sim: Sim, workdir: Workdir, flag: str) -> None:
    """`plan --out /dev/full` (or --report) exits 2 before any request; the device stays."""
    await demo_sim.reset_stats()
    planned = await bulkshare(workdir, "plan", str(PURGE), flag, "/dev/full")
    one_line(planned, 2, "/dev/full", "not a regular file")
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)
    assert (await demo_sim.stats())["requests"] == 0


async def test_plan_never_writes_into_a_fifo(demo_sim: Sim, workdir: Workdir) -> None:
    """A FIFO as `--out` is refused at once and left a FIFO."""
    fifo = workdir.path / "out.fifo"
    os.mkfifo(fifo)
    async with asyncio.timeout(60):  # a guard against a hang, not a measure of time
        planned = await bulkshare(workdir, "plan", str(PURGE), "--out", str(fifo))
    one_line(planned, 2, "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


async def test_write_failure_is_one_line(demo_sim: Sim, workdir: Workdir) -> None:
    """A write the file system refuses (here a file-size limit, as a full disk) is one line."""
    out = workdir.path / "plan.json"
    job = workdir.path / "tag-all.toml"
    job.write_text(
        '[job]\nname = "tag-all"\n[[operations]]\naction = "tag"\ntags = ["x"]\nwhere.all = true\n'
    )

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (128 * 1024, 128 * 1024))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bulkshare", "plan", str(job), "--out", str(out),
        "--config", str(workdir.config), cwd=workdir.path, env=workdir.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=small_files,
    )  # fmt: skip
    stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    one_line(Result(proc.returncode, stdout.decode(), stderr.decode()), 2, "cannot write")
    assert sorted(p.name for p in workdir.path.iterdir() if "plan.json" in p.name) == []


# --- run ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../x", "..", ".", "/etc", "a/b", "x\x1b[2J"])
@pytest.mark.parametrize("command", [["resume"], ["undo", "--yes"], ["show"]])
async def test_run_id_that_is_a_path_is_refused(
    demo_sim: Sim, workdir: Workdir, command: list[str], run_id: str
) -> None:
    """A RUN_ID that is a path (or has odd characters) is refused with one line, exit 2."""
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, *command, run_id)
    line = one_line(result, 2, "not a run id")
    assert "\x1b" not in line
    assert (await demo_sim.stats())["requests"] == 0


async def test_audit_verify_takes_a_path_or_a_run_id(demo_sim: Sim, workdir: Workdir) -> None:
    """`audit verify` reads a path as a path and a run id as a run id; /etc is no audit log."""
    run_dir = await finished_run(workdir)
    by_id = await bulkshare(workdir, "audit", "verify", run_dir.run_id)
    by_path = await bulkshare(workdir, "audit", "verify", str(run_dir.root))
    by_file = await bulkshare(workdir, "audit", "verify", str(run_dir.audit))
    assert (by_id.code, by_path.code, by_file.code) == (0, 0, 0), by_id.err + by_path.err
    one_line(await bulkshare(workdir, "audit", "verify", "/etc"), 2, "no audit log")
    one_line(await bulkshare(workdir, "audit", "verify", ".."), 2, "not a run id")


async def test_last_and_unique_prefix(demo_sim: Sim, workdir: Workdir) -> None:
    """`last` names the newest run, a unique prefix its run; an ambiguous prefix is refused."""
    first = await finished_run(workdir)
    second = await finished_run(workdir, ORPHANED)
    shown = await bulkshare(workdir, "show", "last", "--format", "json")
    assert shown.code == 0, shown.err
    assert orjson.loads(shown.out)["run"]["run_id"] == second.run_id
    prefix = first.run_id.rsplit("-", 1)[0]  # time, job and tenant: the first run's alone
    by_prefix = await bulkshare(workdir, "show", prefix, "--format", "json")
    assert by_prefix.code == 0, by_prefix.err
    assert orjson.loads(by_prefix.out)["run"]["run_id"] == first.run_id
    one_line(await bulkshare(workdir, "show", first.run_id[:4]), 2, "ambiguous")


# --- the audit chain, checked before trusting it -----------------------------------------


def tamper(log: Path) -> None:
    """Change one change record's owner field without fixing its hash, as a hand edit would."""
    lines = log.read_bytes().splitlines(keepends=True)
    rec = orjson.loads(lines[1])
    rec["before"] = {**rec["before"], "owner": "someone-chosen"}
    lines[1] = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) + b"\n"
    log.write_bytes(b"".join(lines))


@pytest.mark.parametrize("command", [["resume"], ["show"], ["undo", "--yes"]])
async def test_tampered_log_refused_before_any_request(
    demo_sim: Sim, workdir: Workdir, command: list[str]
) -> None:
    """A tampered audit log makes resume, show and undo refuse (exit 2) before any request."""
    if command[0] == "undo":
        run_dir = await finished_run(workdir, ORPHANED)
    else:
        run_dir = await interrupted_run(demo_sim, workdir)
    tamper(run_dir.audit)
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, *command, run_dir.run_id)
    one_line(result, 2, "audit log failed verification", "hash does not match")
    assert (await demo_sim.stats())["requests"] == 0
    run_dir.audit.unlink()  # for the workdir fixture's own check of every log


@pytest.mark.parametrize("cut", [1, 3])
async def test_truncated_finished_log_fails_verify(
    demo_sim: Sim, workdir: Workdir, cut: int
) -> None:
    """A finished run's log cut short fails `audit verify` and makes undo refuse."""
    run_dir = await finished_run(workdir, ORPHANED)
    lines = run_dir.audit.read_bytes().splitlines(keepends=True)
    run_dir.audit.write_bytes(b"".join(lines[:-cut]))
    verified = await bulkshare(workdir, "audit", "verify", run_dir.run_id)
    assert verified.code == 1 and "FAILED" in verified.out and "truncated" in verified.out
    await demo_sim.reset_stats()
    one_line(await bulkshare(workdir, "undo", run_dir.run_id, "--yes"), 2, "truncated")
    assert (await demo_sim.stats())["requests"] == 0
    run_dir.audit.unlink()


async def test_truncated_unfinished_log_is_refused(demo_sim: Sim, workdir: Workdir) -> None:
    """An interrupted run's log cut below what its checkpoint saw written is refused on resume."""
    run_dir = await interrupted_run(demo_sim, workdir, after=5)
    lines = run_dir.audit.read_bytes().splitlines(keepends=True)
    run_dir.audit.write_bytes(b"".join(lines[:2]))
    await demo_sim.reset_stats()
    one_line(await bulkshare(workdir, "resume", run_dir.run_id), 2, "cut short")
    assert (await demo_sim.stats())["requests"] == 0


# --- input files: mapping_file and job files ---------------------------------------------


def reassign_job(wd: Workdir, mapping: str = "owners.csv") -> Path:
    """A job that reads its owners from a mapping file."""
    path = wd.path / "job.toml"
    path.write_text(
        '[job]\nname = "handover"\n[[operations]]\naction = "reassign-owner"\n'
        f'where.all = true\nmapping_file = "{mapping}"\n'
    )
    return path


async def test_fifo_mapping_file_returns_at_once(workdir: Workdir) -> None:
    """A FIFO as mapping_file (nobody writing) is refused with one line instead of hanging."""
    os.mkfifo(workdir.path / "owners.csv")
    async with asyncio.timeout(60):  # a guard against a hang, not a measure of time
        result = await bulkshare(workdir, "plan", str(reassign_job(workdir)))
    one_line(result, 2, "owners.csv", "not a regular file")


async def test_fifo_job_file_returns_at_once(workdir: Workdir) -> None:
    """A FIFO given as the job file is refused with one line instead of hanging."""
    os.mkfifo(workdir.path / "job.toml")
    async with asyncio.timeout(60):
        result = await bulkshare(workdir, "plan", str(workdir.path / "job.toml"))
    one_line(result, 2, "job.toml", "not a regular file")


async def test_mapping_file_content_never_echoed(workdir: Workdir) -> None:
    """A mapping_file that is not a mapping (a password file) is refused without quoting it."""
    secret = "admin:S3cr3t-hunter2:0:0"
    (workdir.path / "passwd").write_text(f"{secret}\nbin:x:1:1\n")
    result = await bulkshare(workdir, "plan", str(reassign_job(workdir, "passwd")))
    one_line(result, 2, "header must be old_owner,new_owner")
    assert "S3cr3t" not in result.err + result.out and "bin:x" not in result.err + result.out


async def test_oversized_input_files_are_refused(workdir: Workdir) -> None:
    """A mapping_file or job file over the size bound is refused unread."""
    for name in ("owners.csv", "big.toml"):
        (workdir.path / name).touch()
        os.truncate(workdir.path / name, MAX_INPUT_BYTES + 1)  # sparse: costs no disk
    one_line(await bulkshare(workdir, "plan", str(reassign_job(workdir))), 2, "more than")
    one_line(await bulkshare(workdir, "plan", str(workdir.path / "big.toml")), 2, "more than")


# --- runs: one corrupt run does not hide the others ---------------------------------------


@pytest.mark.parametrize("broken", ["run.json", "summary.json"])
async def test_corrupt_run_is_skipped_with_a_warning(
    demo_sim: Sim, workdir: Workdir, broken: str
) -> None:
    """A run with a corrupt run.json or summary.json is skipped by `runs` with one warning."""
    good = await finished_run(workdir)
    bad = await finished_run(workdir, ORPHANED)
    (bad.root / broken).write_bytes(b'{"run_id": "x", not json')
    listed = await bulkshare(workdir, "runs")
    assert listed.code == 0, listed.err
    assert good.run_id in listed.out and bad.run_id not in listed.out
    warnings = [line for line in listed.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and bad.run_id in warnings[0] and broken in warnings[0]
    assert "Traceback" not in listed.err


async def test_full_disk_mid_run_is_one_line_and_resumable(workdir: Workdir) -> None:
    """The audit log cannot grow mid-run (a file-size limit, as a full disk): one line, exit 130,
    the run marked interrupted; resume then finishes it with every task written once."""
    limits = SimConfig(api_key=TEST_KEY, tier1_per_minute=100_000, tier2_per_minute=100_000)
    async with (
        running_sim(SimTenant.seed(DEMO_TASKS, DEMO_SEED), limits) as url,
        aiohttp.ClientSession() as session,
    ):
        sim = Sim(url, session)
        workdir.config.write_text(
            f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
            "[tenants.t.limits]\ntier1_per_minute = 100000\ntier2_per_minute = 100000\n"
        )
        job = workdir.path / "tag-all.toml"
        job.write_text(
            '[job]\nname = "tag-all"\n[[operations]]\naction = "tag"\ntags = ["x"]\n'
            "where.all = true\n"
        )
        plan = workdir.path / "p.json"
        assert (await bulkshare(workdir, "plan", str(job), "--out", str(plan))).code == 0
        limit = plan.stat().st_size + 64 * 1024  # the plan fits, the audit log does not

        def small_files() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bulkshare", "apply", str(job), "--yes",
            "--config", str(workdir.config), cwd=workdir.path, env=workdir.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=small_files,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
        assert proc.returncode is not None
        one_line(Result(proc.returncode, stdout.decode(), stderr.decode()), 130, "audit.jsonl")
        [run] = (workdir.state / "runs").iterdir()
        assert RunDir(run).meta().state.value == "interrupted"
        resumed = await bulkshare(workdir, "resume", run.name)
        assert resumed.code == 0, resumed.err
        per_task = (await sim.stats())["writes_per_task"]
    planned = {c["task_id"] for c in orjson.loads((run / "plan.json").read_bytes())["changes"]}
    assert per_task == dict.fromkeys(planned, 1)
