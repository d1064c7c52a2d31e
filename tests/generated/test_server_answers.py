"""Generated server answers: the hostile tenant answers the list, task, users, write and token
endpoints with generated statuses, headers (Retry-After in every form), JSON shapes and bodies,
and `plan`, `export` and `apply` run against it. Each ends with its documented exit code in one
line; no run is left "running"; nothing goes to the second origin.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from bulkshare.run import RunDir, RunState
from tests.generated.harness import ENV, Served, check, run_cli, suite_settings
from tests.generated.tomltext import ODD_TEXT
from tests.hostile.conftest import HOSTILE_KEY_ENV, Reply, task_endpoints

# slow (`.ci/run` runs it with `pytest -m slow`): generated inputs through the real CLI
pytestmark = pytest.mark.slow

LIST = "/api/v1/sharing-tasks"
FILTER = "/api/v1/users/actions/filter"
TOKEN = "/oauth/token"
PLAN_JOB = (
    '[job]\nname = "answers"\n[[operations]]\naction = "disable"\n'
    'where.owner_status = ["deleted", "disabled"]\n'
)
APPLY_JOB = '[job]\nname = "answers"\n[[operations]]\naction = "disable"\nwhere.all = true\n'
#: exit codes per command: a plan or export either works or the tenant is unusable (4);
#: a run may finish with failures (1) or be interrupted mid-way and resumable (130)
CODES = {"plan": {0, 4}, "export": {0, 4}, "apply": {0, 1, 4, 130}}

RETRY_AFTER = st.sampled_from(
    ["0", "1", "999999", "inf", "-1", "nan", "1e309", "99999999999999999999999", "", "soon",
     "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "%1b[2J", " 2 "]
)  # fmt: skip
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    ODD_TEXT,
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)
#: bodies no JSON encoder would write
RAW_BODIES = st.sampled_from(
    [b"", b"not json", b"{", b"[" * 5000, b'{"totalCount": 1e400}', b'{"totalCount": NaN}',
     b'{"sharingTasks": [], "totalCount": 123456789012345678901234567890}', b"\xff\xfe",
     b'{"errors": [{"title": "\x1b[2J\x1b[Hdone", "detail": "ok\\u202e"}]}', b"null"]
)  # fmt: skip
ERROR_BODY = st.builds(
    lambda title, detail: {"errors": [{"code": "E", "title": title, "detail": detail}]},
    ODD_TEXT,
    ODD_TEXT,
)


def tasks() -> st.SearchStrategy[list[dict[str, Any]]]:
    """Task documents, well formed or with any field odd (ids, names, tags, flags, owners)."""
    odd = st.one_of(JSON, ODD_TEXT)
    fields = st.fixed_dictionaries(
        {"id": st.one_of(st.sampled_from(["t1", "t2", "t3", "t1"]), odd)},
        optional={
            "name": odd,
            "tags": st.one_of(st.lists(ODD_TEXT, max_size=3), odd),
            "enabled": st.one_of(st.booleans(), odd),
            "owner": st.one_of(st.sampled_from(["u1", "u2"]), odd),
            "type": st.one_of(st.sampled_from(["chart-sharing", "template-sharing"]), odd),
            "statusCode": odd,
            "taskErrors": st.one_of(st.just([{"value": "ORPHAN"}]), odd),
            "lastExecutionTime": st.one_of(st.sampled_from(["9999-12-31T23:59:59Z", "0"]), odd),
        },
    )
    return st.lists(fields, max_size=4)


@st.composite
def replies(draw: st.DrawFn, good: Reply) -> Reply:
    """Mostly `good`; else a generated status, header set and body."""
    kind = draw(st.integers(0, 9))
    if kind < 4:
        return good
    status = draw(st.sampled_from([200, 200, 201, 204, 301, 307, 400, 401, 403, 404, 429, 500]))
    headers = {"Retry-After": draw(RETRY_AFTER)} if status == 429 or kind == 9 else {}
    if status in (301, 307):
        headers["Location"] = draw(st.sampled_from(["ELSEWHERE", "/api/v1/x", "", "%1b[2J"]))
    if draw(st.booleans()):
        return Reply(status, body=draw(RAW_BODIES), headers=headers)
    return Reply(status, draw(st.one_of(JSON, ERROR_BODY)), headers=headers)


@st.composite
def list_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A list page: tasks, a totalCount and a next link, each right or odd."""
    found = draw(tasks())
    doc: dict[str, Any] = {"sharingTasks": found}
    total = draw(st.one_of(st.just(len(found)), JSON))
    if draw(st.integers(0, 3)):
        doc["totalCount"] = total
    if draw(st.integers(0, 2)) == 0:
        href = draw(st.one_of(st.sampled_from(["SELF", "ELSEWHERE", "../../v1/users", ""]), JSON))
        doc["links"] = {"next": {"href": href}}
    return doc


class Script:
    """One endpoint's answers in turn, the last one repeated; as an aiohttp answer."""

    def __init__(self, answers: Sequence[Reply], served: Served) -> None:
        self._answers = list(answers)
        self._served = served
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, request: web.Request) -> Reply:
        with self._lock:
            reply = self._answers[min(self.calls, len(self._answers) - 1)]
            self.calls += 1
        return _placed(reply, self._served, str(request.url))


def _placed(reply: Reply, served: Served, self_url: str) -> Reply:
    """ELSEWHERE and SELF in a reply made real: the second origin, and the request's own URL."""

    def fix(value: Any) -> Any:
        if value == "ELSEWHERE":
            return served.elsewhere.url + "/api/v1/sharing-tasks?page=2"
        if value == "SELF":
            return self_url
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    headers = {k: fix(v) for k, v in reply.headers.items()}
    json = fix(reply.json) if reply.body == b"" else reply.json
    return Reply(reply.status, json, reply.body, headers)


def _writes(store: Callable[[web.Request], Reply], patch: Script) -> Callable[..., Reply]:
    """Task reads from `store`; PATCH and DELETE answered by the generated script."""

    def answer(request: web.Request) -> Reply:
        if request.method in ("PATCH", "DELETE"):
            return patch(request)
        return store(request)

    return answer


def _config(root: Path, url: str, attempts: int, oauth: bool, state: Path | str) -> Path:
    """Tenant `h` at the hostile URL: an API key, or OAuth client credentials; limits far above
    what a case sends, Retry-After capped at 10 ms, listings at 20 pages."""
    creds = (
        f'client_id = "c1"\nclient_secret_env = "{HOSTILE_KEY_ENV}"\n'
        if oauth
        else f'api_key_env = "{HOSTILE_KEY_ENV}"\n'
    )
    path = root / "bulkshare.toml"
    path.write_text(
        f'state_dir = "{state}"\n[defaults]\nmax_attempts = {attempts}\nretry_after_cap_s = 0.01\n'
        f'max_pages = 20\nrequest_timeout_s = 10\n[tenants.h]\nurl = "{url}"\n{creds}'
        "[tenants.h.limits]\ntier1_per_minute = 1000000\ntier2_per_minute = 1000000\n"
    )
    return path


def _run(served: Served, command: str, attempts: int, *, oauth: bool = False) -> None:
    """Run `command` against the scripted tenant; check the outcome and the runs it left."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "job.toml").write_text(APPLY_JOB if command == "apply" else PLAN_JOB)
        # a run's files stay with its case; the reads share one state (one ledger)
        state = root / "state" if command == "apply" else served.state
        config = _config(root, served.hostile.url, attempts, oauth, state)
        argv = {
            "plan": ["plan", "job.toml"],
            "export": ["export", "--out", "e.jsonl"],
            "apply": ["apply", "job.toml", "--yes"],
        }[command]
        outcome = run_cli([*argv, "--config", str(config)], root, ENV)
        check(outcome, CODES[command], "server answers")
        states = [RunDir(d).meta().state for d in (root / "state" / "runs").glob("*")]
    assert RunState.RUNNING not in states, outcome.err
    if outcome.code == 130:
        assert states == [RunState.INTERRUPTED], outcome.err
    assert served.elsewhere.seen == []


@suite_settings(300)
@given(data=st.data(), command=st.sampled_from(["plan", "plan", "export"]))
def test_reads_against_generated_answers(fresh: Served, data: st.DataObject, command: str) -> None:
    """plan and export against generated list and users answers: 0 or 4, in one line."""
    fresh.reset()
    pages = data.draw(st.lists(list_docs(), min_size=1, max_size=3))
    listing = [data.draw(replies(Reply(200, doc))) for doc in pages]
    probe = data.draw(replies(Reply(200, {"sharingTasks": [], "totalCount": 0})))
    fresh.hostile.on("GET", LIST, Script([probe, *listing], fresh))
    users = {"data": [{"id": "u1", "status": "deleted"}]}
    fresh.hostile.on("POST", FILTER, Script([data.draw(replies(Reply(200, users)))], fresh))
    _run(fresh, command, data.draw(st.sampled_from([1, 1, 1, 2])))


@suite_settings(200)
@given(data=st.data())
def test_runs_against_generated_write_answers(fresh: Served, data: st.DataObject) -> None:
    """apply against generated task reads and write answers (error text with escapes, 401s,
    429s with any Retry-After): 0, 1, 4 or 130 in one line; no run left running."""
    fresh.reset()
    found = [{"id": f"t{i}", "name": data.draw(ODD_TEXT), "enabled": True} for i in range(3)]
    good = Reply(200, {"sharingTasks": found, "totalCount": len(found)})
    fresh.hostile.on("GET", LIST, Script([good, data.draw(replies(good))], fresh))
    write = Script(data.draw(st.lists(replies(Reply(204)), min_size=1, max_size=4)), fresh)
    fresh.hostile.otherwise(_writes(task_endpoints(found), write))
    _run(fresh, "apply", data.draw(st.sampled_from([1, 1, 2])))


@suite_settings(120)
@given(data=st.data(), command=st.sampled_from(["plan", "apply"]))
def test_generated_token_answers(fresh: Served, data: st.DataObject, command: str) -> None:
    """OAuth: the token endpoint answers with generated shapes (an `expires_at` in the past,
    garbage, refusals), and a write may be refused with 401 so a new token is asked mid-run."""
    fresh.reset()
    token = st.fixed_dictionaries(
        {"access_token": st.one_of(st.just("tok-1"), JSON), "token_type": st.just("bearer")},
        optional={"expires_at": st.one_of(st.just("2000-01-01T00:00:00Z"), JSON)},
    )
    answers = data.draw(st.lists(replies(Reply(200, data.draw(token))), min_size=1, max_size=3))
    fresh.hostile.on("POST", TOKEN, Script(answers, fresh))
    found = [{"id": "t1", "name": "a", "enabled": True}]
    fresh.hostile.on("GET", LIST, Reply(200, {"sharingTasks": found, "totalCount": 1}))
    write = Script([Reply(401), *data.draw(st.lists(replies(Reply(204)), max_size=2))], fresh)
    fresh.hostile.otherwise(_writes(task_endpoints(found), write))
    _run(fresh, command, 1, oauth=True)
