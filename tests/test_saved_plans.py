"""Saved plans: requests rebuilt from their changes and checked, plans aged, plans signed."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkshare.errors import PlanFileError
from bulkshare.plan import Change, Plan
from bulkshare.plan.requests import RequestProblem, rebuild
from bulkshare.plan.saved import check_age, check_requests, check_signature
from tests.conftest import ROOT, Sim, Workdir, bulkshare, error_lines

# slow (`.ci/run` runs it with `pytest -m slow`): plans saved, edited and applied through the CLI
pytestmark = pytest.mark.slow

KEY_ENV = "BULKSHARE_PLAN_KEY"
KEY = "plan-key-3b8e41d0c7"

Doc = dict[str, Any]


def rehash(doc: Doc) -> Doc:
    """Recompute a plan's content_hash after editing it, as a careful attacker would."""
    body = {k: v for k, v in doc.items() if k not in ("content_hash", "signature")}
    doc["content_hash"] = hashlib.sha256(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return doc


def reassign_job(wd: Workdir, old: str, new: str, enable: bool = True) -> Path:
    """A job moving `old`'s VALID tasks to `new`."""
    path = wd.path / "handover.toml"
    path.write_text(
        f'[job]\nname = "handover"\n[[operations]]\naction = "reassign-owner"\nto = "{new}"\n'
        f'enable = {str(enable).lower()}\nwhere.owner = "{old}"\nwhere.status = "VALID"\n'
    )
    return path


async def owners(sim: Sim) -> tuple[str, str]:
    """An active owner of at least two VALID tasks, and another active user."""
    tasks = await sim.tasks()
    active = [u["id"] for u in await sim.users() if u["status"] == "active"]
    for owner in active:
        if sum(t["owner"] == owner and t["statusCode"] == "VALID" for t in tasks.values()) >= 2:
            return owner, next(u for u in active if u != owner)
    raise AssertionError("no active owner with two VALID tasks")


async def saved_plan(sim: Sim, wd: Workdir, job: Path | None = None) -> tuple[Path, Doc]:
    """Plan `job` (a reassign by default) into plan.json and return it parsed."""
    if job is None:
        job = reassign_job(wd, *await owners(sim))
    out = wd.path / "plan.json"
    planned = await bulkshare(wd, "plan", str(job), "--out", str(out))
    assert planned.code == 0, planned.err
    return out, json.loads(out.read_text())


def set_defaults(wd: Workdir, lines: str) -> None:
    """Add a [defaults] table to the workdir's config."""
    text = wd.config.read_text().replace("[tenants.t]", f"[defaults]\n{lines}\n[tenants.t]", 1)
    wd.config.write_text(text)


def first_patch(doc: Doc) -> Doc:
    """The first change of the plan (a PATCH in a reassign plan)."""
    change: Doc = doc["changes"][0]
    assert change["request"]["method"] == "PATCH"
    return change


def other_owner(change: Doc) -> None:
    change["request"]["body"][0]["value"] = "someone-else"


def users_path(change: Doc) -> None:
    change["request"]["path"] = "/v1/users/u1"


def dot_dot_path(change: Doc) -> None:
    change["request"]["path"] = f"/v1/sharing-tasks/{change['task_id']}/../../users/u1"


def delete_method(change: Doc) -> None:
    change["request"]["method"] = "DELETE"
    change["request"]["body"] = None


def extra_op(change: Doc) -> None:
    change["request"]["body"].append({"op": "replace", "path": "/roles", "value": ["admin"]})


def extra_vocab_op(change: Doc) -> None:
    change["request"]["body"].append({"op": "replace", "path": "/name", "value": "pwned"})


def hostile_id(change: Doc) -> None:
    change["task_id"] = "../../v1/users/u1"
    change["request"]["path"] = "/v1/sharing-tasks/../../v1/users/u1"


def encoded_dots(change: Doc) -> None:
    change["task_id"] = "%2e%2e"
    change["request"]["path"] = "/v1/sharing-tasks/%2e%2e"


def other_operation(change: Doc) -> None:
    change["request"] = {
        "method": "POST",
        "path": f"/v1/sharing-tasks/{change['task_id']}/actions/publish",
        "body": None,
    }


def wrong_type_both(change: Doc) -> None:
    # body and after agree, but /enabled takes a boolean
    change["after"]["enabled"] = "yes"
    for op in change["request"]["body"]:
        if op["path"] == "/enabled":
            op["value"] = "yes"


def one_for_true(change: Doc) -> None:
    # Python says 1 == True: the check must not
    for op in change["request"]["body"]:
        if op["path"] == "/enabled":
            op["value"] = 1


def unknown_action(change: Doc) -> None:
    change["actions"] = ["grant-admin"]


def bogus_expectation(change: Doc) -> None:
    change["expect"]["owner"] = "someone-else"


def reenable_beside_a_write(change: Doc) -> None:
    # expect.enabled = true sends a PATCH of its own: never beside a write of /enabled
    change["expect"]["enabled"] = True


def bogus_selection(change: Doc) -> None:
    change["selection"] = [{"roles": ["TenantAdmin"]}]


def other_new_owner(change: Doc) -> None:
    change["task"]["newOwner"] = "someone-else"  # the name shown, not the owner written


def new_owner_name_not_text(change: Doc) -> None:
    change["task"]["newOwnerName"] = 5


EDITS: dict[str, tuple[Callable[[Doc], None], str]] = {
    "owner-other-than-after": (other_owner, "PATCH op 0 on /ownerId"),
    "path-to-users": (users_path, "/v1/users/u1"),
    "path-with-dot-dot": (dot_dot_path, "is not the one its change makes"),
    "delete-on-a-patch": (delete_method, '"DELETE"'),
    "op-outside-vocab": (extra_op, '"/roles"'),
    "op-outside-after": (extra_vocab_op, '"/name"'),
    # whether task_path encodes the id or not, the request is refused
    "id-with-dot-dot": (hostile_id, "leaves the task's own endpoint|is not the one"),
    "id-encoded-dots": (encoded_dots, "leaves the task's own endpoint|is not the one"),
    "other-operation": (other_operation, "/actions/publish"),
    "wrong-type-value": (wrong_type_both, "expected a boolean"),
    "1-for-true": (one_for_true, "op 1 on /enabled does not write what"),
    "unknown-action": (unknown_action, '"grant-admin"'),
    "bogus-expectation": (bogus_expectation, "no expectation the plan makes"),
    "reenable-beside-a-write": (reenable_beside_a_write, "beside a write of enabled"),
    "bogus-selection": (bogus_selection, "is no where filter"),
    "new-owner-not-written": (other_new_owner, "newOwner is not the owner its after-state"),
    "new-owner-name-not-text": (new_owner_name_not_text, "newOwnerName is not a string"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
async def test_edited_plan_with_recomputed_hash_is_refused(
    demo_sim: Sim, workdir: Workdir, case: str
) -> None:
    """A hand-edited plan whose hash was recomputed is refused in one line, exit 2, nothing sent."""
    edit, expected = EDITS[case]
    out, doc = await saved_plan(demo_sim, workdir)
    edit(first_patch(doc))
    out.write_text(json.dumps(rehash(doc)))
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert "change 1" in line and re.search(expected, line), line
    assert (await demo_sim.stats())["requests"] == 0
    assert not (workdir.state / "runs").exists()


async def test_unedited_plan_applies_as_planned(demo_sim: Sim, workdir: Workdir) -> None:
    """The same plan, not edited, passes every check and is applied."""
    old, new = await owners(demo_sim)
    out, doc = await saved_plan(demo_sim, workdir, reassign_job(workdir, old, new))
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 0, result.err
    tasks = await demo_sim.tasks()
    assert {tasks[c["task_id"]]["owner"] for c in doc["changes"]} == {new}


async def test_duplicate_requests_for_one_task_are_refused(demo_sim: Sim, workdir: Workdir) -> None:
    """A plan holding two PATCHes for one task is refused before anything is sent."""
    out, doc = await saved_plan(demo_sim, workdir)
    doc["changes"].append(copy.deepcopy(doc["changes"][0]))
    out.write_text(json.dumps(rehash(doc)))
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert "second patch request" in line, line
    assert (await demo_sim.stats())["requests"] == 0


JOBS = {
    "reassign-owners": ROOT / "jobs" / "reassign-owners.toml",
    "disable-orphaned": ROOT / "jobs" / "disable-orphaned.toml",
    "purge-deleting": ROOT / "jobs" / "purge-deleting.toml",
}


@pytest.mark.parametrize("name", sorted(JOBS))
async def test_every_planned_request_rebuilds_to_itself(
    demo_sim: Sim, workdir: Workdir, name: str
) -> None:
    """Each request the planner writes is the one its change rebuilds to, byte for byte."""
    out, doc = await saved_plan(demo_sim, workdir, JOBS[name])
    assert doc["changes"], "the shipped job plans nothing on the demo tenant"
    checked = check_requests(Plan.read(out), out)
    rebuilt = [c.to_json()["request"] for c in checked.changes]
    assert orjson.dumps(rebuilt) == orjson.dumps([c["request"] for c in doc["changes"]])


def _disable(task_id: str, value: Any = False) -> Change:
    body = [{"op": "replace", "path": "/enabled", "value": value}]
    path = f"/v1/sharing-tasks/{task_id}"
    return Change(task_id, ("disable",), "PATCH", path, body, {"enabled": True}, {"enabled": False})


def test_changes_writing_the_same_share_one_rebuilt_body() -> None:
    """The body a PATCH's after-state makes is built once and sent by every change that writes
    the same; each stored body is still compared byte for byte (0 is not false)."""
    first, second = rebuild(_disable("a1")), rebuild(_disable("b2"))
    assert first.body is second.body and first.body == _disable("a1").body
    assert (first.path, second.path) == ("/v1/sharing-tasks/a1", "/v1/sharing-tasks/b2")
    with pytest.raises(RequestProblem, match="does not write what its after-state says"):
        rebuild(_disable("c3", 0))
    with pytest.raises(RequestProblem, match="is not the one its change makes"):
        rebuild(_disable("c3").with_request("PATCH", "/v1/sharing-tasks/a1", first.body))


async def test_mixed_job_rebuilds_to_itself(demo_sim: Sim, workdir: Workdir) -> None:
    """Merged PATCHes, executes, cancels, expectations and removes all rebuild unchanged."""
    old, new = await owners(demo_sim)
    job = workdir.path / "mixed.toml"
    job.write_text(
        '[job]\nname = "mixed"\n'
        f'[[operations]]\naction = "tag"\ntags = ["x"]\nwhere.owner = "{old}"\n'
        f'[[operations]]\naction = "reassign-owner"\nto = "{new}"\nwhere.owner = "{old}"\n'
        '[[operations]]\naction = "patch"\nwhere.type = "chart-monitoring"\n'
        'ops = [{ op = "remove", path = "/description" }, '
        '{ op = "replace", path = "/name", value = "renamed" }]\n'
        '[[operations]]\naction = "execute"\nwhere.status = "FAILED"\n'
        '[[operations]]\naction = "cancel"\nwhere.status = "IN_PROGRESS"\n'
    )
    out, doc = await saved_plan(demo_sim, workdir, job)
    kinds = {
        c["request"]["method"] + c["request"]["path"].rsplit("/", 1)[-1] for c in doc["changes"]
    }
    assert "POSTexecute" in kinds and "POSTcancel" in kinds
    assert any(c["expect"].get("enabled") is False for c in doc["changes"])
    checked = check_requests(Plan.read(out), out)
    assert [c.to_json() for c in checked.changes] == doc["changes"]


def aged_plan(created_at: str) -> Plan:
    """An empty plan made at `created_at`."""
    return Plan("t", "j", "j.toml", "0" * 64, created_at)


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created_at", "message"),
    [
        ("2026-02-28T11:59:00Z", "h old"),
        ("2026-03-01T12:06:00Z", "in the future"),
        ("yesterday", "is not a time"),
        ("2026-02-28T11:59:00", "h old"),  # naive: read as UTC
    ],
)
def test_plan_age_rules(created_at: str, message: str) -> None:
    """Too old, from the future or undated: refused with a PlanFileError saying which."""
    with pytest.raises(PlanFileError, match=message):
        check_age(aged_plan(created_at), Path("p.json"), timedelta(hours=24), NOW)


def test_plan_within_age_and_skew_passes() -> None:
    """A plan 23 h old, or 4 min ahead of our clock, is young enough."""
    check_age(aged_plan("2026-02-28T13:00:00Z"), Path("p.json"), timedelta(hours=24), NOW)
    check_age(aged_plan("2026-03-01T12:04:00Z"), Path("p.json"), timedelta(hours=24), NOW)


async def test_config_max_age_applies_and_flag_overrides(demo_sim: Sim, workdir: Workdir) -> None:
    """`[defaults] plan_max_age_h` refuses an older plan; `--max-age` overrides it."""
    out, _ = await saved_plan(demo_sim, workdir, JOBS["purge-deleting"])
    set_defaults(workdir, "plan_max_age_h = 0.000001")
    await demo_sim.reset_stats()
    stale = await bulkshare(workdir, "apply", str(out), "--yes")
    assert stale.code == 2 and "h old" in stale.err, stale.err
    assert (await demo_sim.stats())["requests"] == 0
    fresh = await bulkshare(workdir, "apply", str(out), "--yes", "--max-age", "1")
    assert fresh.code == 0, fresh.err


def files_text(root: Path) -> bytes:
    """Every file under `root`, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


async def test_signed_plan_round_trip(demo_sim: Sim, workdir: Workdir) -> None:
    """With plan_key_env, plans are signed and verified; the key is in no file and no output."""
    set_defaults(workdir, f'plan_key_env = "{KEY_ENV}"')
    workdir.env[KEY_ENV] = KEY
    out, doc = await saved_plan(demo_sim, workdir)
    expected = hmac.new(KEY.encode(), doc["content_hash"].encode(), hashlib.sha256).hexdigest()
    assert doc["signature"] == expected
    applied = await bulkshare(workdir, "apply", str(out), "--yes")
    assert applied.code == 0, applied.err
    [run] = list((workdir.state / "runs").iterdir())
    assert "signature" in json.loads((run / "plan.json").read_text())
    shown = await bulkshare(workdir, "show", "last", "--format", "json")
    for text in (applied.out, applied.err, shown.out, shown.err):
        assert KEY not in text
    assert KEY.encode() not in files_text(workdir.path)


async def test_unsigned_and_mis_signed_plans_are_refused(demo_sim: Sim, workdir: Workdir) -> None:
    """With a key configured, an unsigned plan and one signed with another key are refused."""
    out, doc = await saved_plan(demo_sim, workdir)  # planned without a key: unsigned
    set_defaults(workdir, f'plan_key_env = "{KEY_ENV}"')
    workdir.env[KEY_ENV] = KEY
    await demo_sim.reset_stats()
    unsigned = await bulkshare(workdir, "apply", str(out), "--yes")
    assert unsigned.code == 2 and "not signed" in unsigned.err, unsigned.err
    doc["signature"] = hmac.new(b"guess", doc["content_hash"].encode(), "sha256").hexdigest()
    out.write_text(json.dumps(doc))
    forged = await bulkshare(workdir, "apply", str(out), "--yes")
    assert forged.code == 2 and "signature does not match" in forged.err, forged.err
    for result in (unsigned, forged):
        assert len(error_lines(result.err)) == 1 and KEY not in result.err
    assert (await demo_sim.stats())["requests"] == 0


async def test_edited_signed_plan_is_refused(demo_sim: Sim, workdir: Workdir) -> None:
    """A signed plan edited and rehashed no longer matches its signature."""
    set_defaults(workdir, f'plan_key_env = "{KEY_ENV}"')
    workdir.env[KEY_ENV] = KEY
    out, doc = await saved_plan(demo_sim, workdir)
    doc["changes"] = doc["changes"][:1]
    out.write_text(json.dumps(rehash(doc)))
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 2 and "signature does not match" in result.err, result.err
    assert (await demo_sim.stats())["requests"] == 0


async def test_signed_plan_without_a_key_is_refused(demo_sim: Sim, workdir: Workdir) -> None:
    """A plan that says it is signed is never applied unchecked: no key configured, refused."""
    set_defaults(workdir, f'plan_key_env = "{KEY_ENV}"')
    workdir.env[KEY_ENV] = KEY
    out, _ = await saved_plan(demo_sim, workdir)
    workdir.config.write_text(workdir.config.read_text().replace(f'plan_key_env = "{KEY_ENV}"', ""))
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 2 and "no key is configured" in result.err, result.err
    assert (await demo_sim.stats())["requests"] == 0


async def test_missing_key_variable_is_one_line_before_any_request(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """plan_key_env naming an unset variable: `plan --out` exits 2 naming it, nothing read."""
    set_defaults(workdir, f'plan_key_env = "{KEY_ENV}"')
    workdir.env.pop(KEY_ENV, None)
    await demo_sim.reset_stats()
    result = await bulkshare(
        workdir, "plan", str(JOBS["purge-deleting"]), "--out", str(workdir.path / "p.json")
    )
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert KEY_ENV in line and "not set" in line
    assert (await demo_sim.stats())["requests"] == 0
    assert not (workdir.path / "p.json").exists()


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ("plan_max_age_h = 0", "positive"),
        ("plan_max_age_h = inf", "finite"),
        ('plan_max_age_h = "24"', "positive"),
        ('plan_key_env = "not a name"', "environment variable"),
        ("plan_key_env = 1", "non-empty string"),
    ],
)
async def test_bad_plan_defaults_are_config_errors(
    demo_sim: Sim, workdir: Workdir, defaults: str, message: str
) -> None:
    """A wrong plan_max_age_h or plan_key_env is one config error line, exit 2."""
    set_defaults(workdir, defaults)
    result = await bulkshare(workdir, "plan", str(JOBS["purge-deleting"]))
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert "defaults.plan_" in line and message in line, line


async def test_resume_rebuilds_the_run_plan(demo_sim: Sim, workdir: Workdir) -> None:
    """An interrupted run whose plan.json was edited (hash recomputed) is refused by resume."""
    out, _ = await saved_plan(demo_sim, workdir)
    applied = await bulkshare(workdir, "apply", str(out), "--yes")
    assert applied.code == 0, applied.err
    [run] = list((workdir.state / "runs").iterdir())
    meta = json.loads((run / "run.json").read_text())
    meta["state"], meta["exit_code"] = "interrupted", None
    (run / "run.json").write_text(json.dumps(meta))
    doc = json.loads((run / "plan.json").read_text())
    users_path(first_patch(doc))
    (run / "plan.json").write_text(json.dumps(rehash(doc)))
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "resume", run.name)
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert "/v1/users/u1" in line
    assert (await demo_sim.stats())["requests"] == 0


async def test_undo_plans_rebuild_to_themselves(demo_sim: Sim, workdir: Workdir) -> None:
    """The plan of an undo run (and of the undo of that) passes the checks resume applies."""
    job = reassign_job(workdir, *await owners(demo_sim), enable=False)  # with side effects
    applied = await bulkshare(workdir, "apply", str(job), "--yes")
    assert applied.code == 0, applied.err
    for _ in range(2):
        last = sorted((workdir.state / "runs").iterdir())[-1]
        undone = await bulkshare(workdir, "undo", last.name, "--yes")
        assert undone.code == 0, undone.err
        run_plan = sorted((workdir.state / "runs").iterdir())[-1] / "plan.json"
        doc = json.loads(run_plan.read_text())
        assert doc["changes"] and all(a.startswith("undo-") for a in doc["changes"][0]["actions"])
        checked = check_requests(Plan.read(run_plan), run_plan)
        assert [c.to_json() for c in checked.changes] == doc["changes"]


@pytest.mark.parametrize("signature", ["ü" * 64, "", "0" * 64, "\udcff"])
def test_odd_signatures_are_refused_not_crashed(signature: str) -> None:
    """Whatever the signature field holds, a wrong one is a PlanFileError, never a traceback."""
    plan = aged_plan("2026-03-01T12:00:00Z")
    plan.content_hash, plan.signature = "ab" * 32, signature
    with pytest.raises(PlanFileError, match="signature does not match"):
        check_signature(plan, Path("p.json"), KEY.encode())
