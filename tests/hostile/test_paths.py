"""Paths from data: a task id is checked and percent-encoded into one path segment, so no id
can reach another endpoint, whatever it holds."""

from __future__ import annotations

from urllib.parse import quote

import orjson
import pytest

from bulkshare.vocab import UnsafeId, check_id, task_path
from tests.conftest import Workdir, bulkshare, error_lines
from tests.hostile.conftest import ME, Origin, job_file, task_endpoints, task_list

TASKS = "/api/v1/sharing-tasks"
#: ids a hostile tenant may list, each trying to reach somewhere else
HOSTILE_IDS = [
    "../../v1/users/u1",
    "a?b",
    "a#b",
    "%2e%2e",
    "%2E%2E%2Fv1%2Fusers",
    "a/b",
    "..%2F..%2Fusers",
    "a;b=c",
    "x@y:z",
    "~tilde.",
]


@pytest.mark.parametrize(
    ("task_id", "path"),
    [
        ("65f0c0ffee0123456789abcd", "/v1/sharing-tasks/65f0c0ffee0123456789abcd"),
        (
            "0b9e6a0c-2f0e-4c3a-9d3b-5f7f1c2a8e41",
            "/v1/sharing-tasks/0b9e6a0c-2f0e-4c3a-9d3b-5f7f1c2a8e41",
        ),
        ("../../v1/users/u1", "/v1/sharing-tasks/..%2F..%2Fv1%2Fusers%2Fu1"),
        ("a?b", "/v1/sharing-tasks/a%3Fb"),
        ("a#b", "/v1/sharing-tasks/a%23b"),
        ("%2e%2e", "/v1/sharing-tasks/%252e%252e"),
        ("...", "/v1/sharing-tasks/..."),
    ],
)
def test_task_ids_become_one_encoded_segment(task_id: str, path: str) -> None:
    """Real ids pass unchanged; every other character is percent-encoded into one segment."""
    assert task_path(task_id) == path


@pytest.mark.parametrize(
    ("task_id", "why"),
    [
        ("", "empty"),
        ("x" * 256, "longer than 255"),
        (".", "dot-segment"),
        ("..", "dot-segment"),
        ("a b", "outside visible ASCII"),
        ("a\x1b[2Jb", "outside visible ASCII"),
        ("a\nb", "outside visible ASCII"),
        ("a\u202eb", "outside visible ASCII"),
        ("é", "outside visible ASCII"),
        (42, "not a string"),
    ],
)
def test_ids_that_cannot_be_a_segment_are_refused(task_id: object, why: str) -> None:
    """Empty, over-long, dot-segment, control, space, bidi and non-ASCII ids are refused."""
    with pytest.raises(UnsafeId, match=why) as info:
        task_path(task_id)  # type: ignore[arg-type]
    assert "\x1b" not in str(info.value) and "\u202e" not in str(info.value)
    assert check_id("x" * 255) == "x" * 255


async def test_hostile_ids_produce_only_encoded_requests_to_the_task_endpoint(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """Deleting tasks with hostile ids sends one DELETE each, to its own encoded task path."""
    tasks = [{"id": i, "name": f"n{n}", "enabled": True} for n, i in enumerate(HOSTILE_IDS)]
    hostile.on("GET", TASKS, task_list(tasks))
    hostile.otherwise(task_endpoints(tasks))
    job = job_file(
        hostile_workdir, '[job]\nname = "h"\n[[operations]]\naction = "delete"\nwhere.all = true\n'
    )
    result = await bulkshare(hostile_workdir, "apply", str(job), "--yes")
    assert result.code == 0, result.err
    encoded = {f"{TASKS}/{quote(i, safe='')}" for i in HOSTILE_IDS}
    assert {s.path for s in hostile.seen} == {ME, TASKS} | encoded
    deletes = sorted(s.path for s in hostile.seen if s.method == "DELETE")
    assert deletes == sorted(encoded)
    assert all(s.query == "" for s in hostile.seen if s.path != TASKS)
    [log] = hostile_workdir.state.glob("runs/*/audit.jsonl")
    ids = [orjson.loads(line).get("task_id") for line in log.read_text().splitlines()]
    assert sorted(i for i in ids if i) == sorted(HOSTILE_IDS)


@pytest.mark.parametrize("bad", ["..", "a\x1b[2Jb", ""])
async def test_a_listed_id_that_cannot_be_a_segment_fails_the_plan_in_one_line(
    hostile: Origin, hostile_workdir: Workdir, bad: str
) -> None:
    """A listing holding an id no path can carry: exit 4, one line, escaped, nothing else sent."""
    tasks = [{"id": "ok1", "enabled": True}, {"id": bad, "enabled": True}]
    hostile.on("GET", TASKS, task_list(tasks))
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "list item 2" in line and "\x1b" not in result.err
    assert {s.path for s in hostile.seen} == {ME, TASKS}
