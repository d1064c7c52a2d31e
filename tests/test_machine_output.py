"""What programs read: `--format json` of apply, resume and undo, `plan --detailed-exitcode`,
`runs` filters, and every RUN_ID argument resolved the same way (an id, a unique prefix, `last`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkshare.cli import main
from tests.conftest import ROOT, TEST_KEY_ENV, Sim, Workdir, bulkshare
from tests.test_crash_signals import has_change_record, limit_tier, run_dir, wait_for
from tests.test_multi_tenant import multi_workdir, two_sims

# slow (`.ci/run` runs it with `pytest -m slow`): every command's JSON through the CLI
pytestmark = pytest.mark.slow

DISABLE = str(ROOT / "jobs" / "disable-orphaned.toml")
PURGE = str(ROOT / "jobs" / "purge-deleting.toml")


def one_object(stdout: str) -> dict[str, Any]:
    """stdout as the one JSON object it must be: json.loads of the whole text, a dict."""
    doc = orjson.loads(stdout)
    assert isinstance(doc, dict), stdout
    return doc


def summary_of(wd: Workdir, run_id: str) -> dict[str, Any]:
    """The run's summary.json."""
    doc: dict[str, Any] = orjson.loads((wd.state / "runs" / run_id / "summary.json").read_bytes())
    return doc


async def test_apply_json_is_one_object_with_run_id_and_counts(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """`apply --format json` prints one JSON object: summary.json's content, the run id, state
    and exit code; the notes stay on stderr."""
    result = await bulkshare(workdir, "apply", DISABLE, "--yes", "--format", "json")
    assert result.code == 0, result.err
    doc = one_object(result.out)
    assert doc["state"] == "finished" and doc["exit_code"] == 0 and doc["error"] is None
    assert doc["counts"]["applied"] == doc["planned"] > 0
    summary = summary_of(workdir, doc["run_id"])
    assert {k: doc[k] for k in summary} == summary
    assert f"run {doc['run_id']} started" in result.err


async def test_apply_text_is_unchanged_without_format(demo_sim: Sim, workdir: Workdir) -> None:
    """Without `--format`, apply prints its summary text on stdout, not JSON."""
    result = await bulkshare(workdir, "apply", DISABLE, "--yes")
    assert result.code == 0, result.err
    assert not result.out.lstrip().startswith("{")
    assert "applied" in result.out


async def start_json_apply(wd: Workdir) -> asyncio.subprocess.Process:
    """`apply --format json` of the disable job as a process, its stdout piped."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bulkshare", "apply", DISABLE, "--yes", "--format", "json"),
        *("--concurrency", "2", "--config", str(wd.config)),
        cwd=wd.path,
        env=wd.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.timeout(180)
async def test_interrupted_apply_then_resume_print_one_object_each(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """A stopped `apply --format json` still prints one object (run id, interrupted, 130, the
    error line, counts so far); `resume --format json` of it prints the finished one."""
    plain = workdir.config.read_text()
    limit_tier(workdir, "tier2")  # one write, then the next waits a whole window
    proc = await start_json_apply(workdir)
    try:
        await wait_for(proc, lambda: has_change_record(workdir), "the first change record")
        proc.send_signal(signal.SIGTERM)
        out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 130, err.decode()
    stopped = one_object(out.decode())
    run = run_dir(workdir)
    assert run is not None and stopped["run_id"] == run.name
    assert stopped["state"] == "interrupted" and stopped["exit_code"] == 130
    assert "bulkshare resume" in stopped["error"]
    assert stopped["counts"]["pending"] > 0 and stopped["counts"].get("applied", 0) >= 1

    workdir.config.write_text(plain)
    resumed = await bulkshare(workdir, "resume", run.name[:-3], "--format", "json")
    assert resumed.code == 0, resumed.err
    doc = one_object(resumed.out)
    assert doc["run_id"] == run.name and doc["state"] == "finished"
    assert doc["counts"] == summary_of(workdir, run.name)["counts"]
    assert "pending" not in doc["counts"]

    again = await bulkshare(workdir, "resume", run.name, "--format", "json")
    assert again.code == 0 and one_object(again.out)["run_id"] == run.name


async def test_undo_json_is_one_object(demo_sim: Sim, workdir: Workdir) -> None:
    """`undo --format json` of a finished run prints the undo run's object; `--dry-run` with
    `--format json` prints the inverse plan as JSON."""
    first = await bulkshare(workdir, "apply", DISABLE, "--yes", "--format", "json")
    applied = one_object(first.out)
    dry = await bulkshare(workdir, "undo", "last", "--dry-run", "--format", "json")
    assert dry.code == 0, dry.err
    assert len(one_object(dry.out)["changes"]) == applied["planned"]
    result = await bulkshare(workdir, "undo", applied["run_id"], "--yes", "--format", "json")
    assert result.code == 0, result.err
    doc = one_object(result.out)
    assert doc["run_id"] != applied["run_id"] and doc["state"] == "finished"
    assert doc["counts"] == {"applied": applied["planned"]}


async def test_refused_apply_prints_no_object(demo_sim: Sim, workdir: Workdir) -> None:
    """A guard that refuses before any run exists leaves stdout empty: exit 3 and the line."""
    result = await bulkshare(
        workdir, "apply", DISABLE, "--yes", "--max-changes", "1", "--format", "json"
    )
    assert result.code == 3
    assert result.out == ""
    assert "max_changes" in result.err


@pytest.mark.timeout(180)
async def test_plan_detailed_exitcode(demo_sim: Sim, workdir: Workdir, tmp_path: Path) -> None:
    """`plan --detailed-exitcode`: 2 with changes, 0 once there are none, 1 on errors (a bad
    job file, a usage error) where they would otherwise be 2."""
    changes = await bulkshare(workdir, "plan", DISABLE, "--detailed-exitcode")
    assert changes.code == 2, changes.err
    plain = await bulkshare(workdir, "plan", DISABLE)
    assert plain.code == 0
    assert (await bulkshare(workdir, "apply", DISABLE, "--yes")).code == 0
    none = await bulkshare(workdir, "plan", DISABLE, "--detailed-exitcode")
    assert none.code == 0, none.err
    bad = tmp_path / "bad.toml"
    bad.write_text('[job]\nname = "Bad Name"\n')
    broken = await bulkshare(workdir, "plan", str(bad), "--detailed-exitcode")
    assert broken.code == 1 and "bad.toml" in broken.err
    [event] = [orjson.loads(line) for line in broken.err.splitlines() if '"error"' in line]
    assert event["exit_code"] == 1, event  # the code the process ends with, not the plain 2
    assert (await bulkshare(workdir, "plan", str(bad))).code == 2
    usage = await bulkshare(workdir, "plan", DISABLE, "--detailed-exitcode", "--no-such-flag")
    assert usage.code == 1 and "--no-such-flag" in usage.err


async def test_plan_detailed_exitcode_tenant_error_is_1(demo_sim: Sim, workdir: Workdir) -> None:
    """A tenant that refuses the key is exit 1 under `--detailed-exitcode` (4 without)."""
    workdir.env[TEST_KEY_ENV] = "not-the-key-3a9"
    result = await bulkshare(workdir, "plan", DISABLE, "--detailed-exitcode")
    assert result.code == 1, result.err
    assert (await bulkshare(workdir, "plan", DISABLE)).code == 4


def local(capsys: pytest.CaptureFixture[str], wd: Workdir, *args: str) -> tuple[int, str, str]:
    """A command that reads only local files, run by the CLI's `main` in this process (no
    tenant, no event loop): its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main([*args, "--config", str(wd.config)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def runs_json(out: str) -> list[dict[str, Any]]:
    """`runs --format json` output: the listed runs."""
    listed: list[dict[str, Any]] = orjson.loads(out)
    return listed


def set_started(wd: Workdir, run_id: str, started: str) -> None:
    """Change when run.json says the run started (to list runs of several days)."""
    path = wd.state / "runs" / run_id / "run.json"
    doc = orjson.loads(path.read_bytes())
    doc["started"] = started
    path.write_bytes(orjson.dumps(doc))


def set_state(wd: Workdir, run_id: str, state: str) -> None:
    """Set run.json's state (as a process that died mid-run leaves it)."""
    path = wd.state / "runs" / run_id / "run.json"
    doc = orjson.loads(path.read_bytes())
    doc["state"] = state
    path.write_bytes(orjson.dumps(doc))


@pytest.mark.timeout(180)
async def test_runs_filters_combine(
    demo_sim: Sim, workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs --job --tenant --state --since` keep only the runs every given filter matches."""
    workdir.config.write_text(
        workdir.config.read_text()
        + workdir.config.read_text().split("\n", 1)[1].replace("[tenants.t]", "[tenants.u]")
    )
    for job, tenant in ((DISABLE, "t"), (PURGE, "t"), (PURGE, "u"), (DISABLE, "u")):
        result = await bulkshare(workdir, "apply", job, "--tenant", tenant, "--yes")
        assert result.code == 0, result.err
    runs = runs_json(local(capsys, workdir, "runs", "--format", "json")[1])
    assert len(runs) == 4
    by = {(r["job"], r["tenant"]): r["run_id"] for r in runs}
    set_started(workdir, by[("disable-orphaned", "t")], "2026-01-02T03:04:05+00:00")
    set_state(workdir, by[("purge-deleting", "u")], "running")  # no lock holds it: dead

    def listed_ids(*filters: str) -> set[str]:
        code, out, err = local(capsys, workdir, "runs", "--format", "json", *filters)
        assert code == 0, err
        return {r["run_id"] for r in runs_json(out)}

    assert listed_ids("--job", "purge-deleting") == {
        by[("purge-deleting", "t")],
        by[("purge-deleting", "u")],
    }
    assert listed_ids("--tenant", "u", "--job", "disable-orphaned") == {
        by[("disable-orphaned", "u")]
    }
    assert listed_ids("--state", "dead") == {by[("purge-deleting", "u")]}
    assert listed_ids("--state", "finished", "--tenant", "u") == {by[("disable-orphaned", "u")]}
    assert by[("disable-orphaned", "t")] not in listed_ids("--since", "2d")
    assert len(listed_ids("--since", "2d")) == 3
    assert listed_ids("--since", "2026-01-01", "--job", "disable-orphaned") == {
        by[("disable-orphaned", "t")],
        by[("disable-orphaned", "u")],
    }
    assert listed_ids("--since", "2100-01-01T00:00Z") == set()
    code, out, _ = local(capsys, workdir, "runs", "--job", "no-such-job")
    assert code == 0 and "no runs matching the filters" in out
    code, _, err = local(capsys, workdir, "runs", "--since", "yesterday", "--log-format", "console")
    assert code == 2 and "--since" in err and len(err.strip().splitlines()) == 1


@pytest.mark.timeout(180)
async def test_every_run_id_argument_takes_a_prefix_and_last(
    demo_sim: Sim, workdir: Workdir, capsys: pytest.CaptureFixture[str]
) -> None:
    """show, resume, undo and audit verify resolve `last` and a unique prefix alike, and
    refuse an ambiguous prefix with one line."""
    first = one_object(
        (await bulkshare(workdir, "apply", DISABLE, "--yes", "--format", "json")).out
    )
    second = one_object((await bulkshare(workdir, "apply", PURGE, "--yes", "--format", "json")).out)
    prefix = first["run_id"].rsplit("-", 1)[0]  # time and job: unique to the first run
    for args in (("show", "last", "--format", "json"), ("audit", "verify", "last")):
        code, out, err = local(capsys, workdir, *args)
        assert code == 0 and second["run_id"] in out, (args, err)
    for args in (("resume", "last", "--format", "json"), ("undo", "last", "--dry-run")):
        result = await bulkshare(workdir, *args)
        assert result.code == 0, (args, result.err)
        assert second["run_id"] in result.out or args[0] == "undo", args
    shown = local(capsys, workdir, "show", prefix, "--format", "json")[1]
    assert orjson.loads(shown)["run"]["run_id"] == first["run_id"]
    resumed = await bulkshare(workdir, "resume", prefix, "--format", "json")
    assert one_object(resumed.out)["run_id"] == first["run_id"]
    undone = await bulkshare(workdir, "undo", prefix, "--dry-run", "--format", "json")
    assert len(one_object(undone.out)["changes"]) == first["planned"]
    code, out, _ = local(capsys, workdir, "audit", "verify", prefix)
    assert code == 0 and first["run_id"] in out
    common = first["run_id"][:4]  # the year: both runs start so
    code, _, err = local(capsys, workdir, "show", common)
    assert code == 2 and "ambiguous" in err
    for case in (("resume", common), ("undo", common, "--dry-run")):
        result = await bulkshare(workdir, *case)
        assert result.code == 2 and "ambiguous" in result.err, case


@pytest.mark.timeout(180)
async def test_several_tenants_print_one_object_with_every_run(tmp_path: Path) -> None:
    """`apply --tenant all --format json` prints one object: the worst exit code and one entry
    per tenant; the combined line goes to stderr, not stdout."""
    async with two_sims() as (a, b):
        wd = multi_workdir(tmp_path, {"a": a.url, "b": b.url})
        result = await bulkshare(
            wd, "apply", DISABLE, "--tenant", "all", "--yes", "--format", "json"
        )
        assert result.code == 0, result.err
        doc = one_object(result.out)
        assert doc["exit_code"] == 0
        assert sorted(r["tenant"] for r in doc["runs"]) == ["a", "b"]
        for run in doc["runs"]:
            assert (
                run["state"] == "finished"
                and run["counts"] == summary_of(wd, run["run_id"])["counts"]
            )
        assert "tenants: a exit 0, b exit 0; exit 0" in result.err

        planned = await bulkshare(wd, "plan", PURGE, "--tenant", "all", "--detailed-exitcode")
        assert planned.code == 2, planned.err
        none = await bulkshare(wd, "plan", DISABLE, "--tenant", "all", "--detailed-exitcode")
        assert none.code == 0, none.err
