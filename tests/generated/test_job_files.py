"""Generated job files through `bulkshare plan` and `validate`: valid jobs mutated (wrong types,
unknown keys, huge lists, deep nesting, odd text, dates) and raw garbage bytes. Each is planned
(exit 0) or refused in one line with exit 2 before any request reaches the tenant.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkshare.job.model import WHERE_KEYS
from tests.generated.harness import ENV, Served, check, run_cli, suite_settings, write_config
from tests.generated.tomltext import document, mutated

# slow (`.ci/run` runs it with `pytest -m slow`): generated inputs through the real CLI
pytestmark = pytest.mark.slow

#: valid jobs, one per kind of action and way of selecting
BASES: list[dict[str, Any]] = [
    {
        "job": {"name": "disable-orphaned", "description": "d", "max_changes": 500},
        "operations": [
            {
                "action": "disable",
                "where": {"task_errors": ["ORPHAN", "OWNER_DISABLED"], "enabled": True},
            }
        ],
    },
    {
        "job": {"name": "reassign"},
        "operations": [
            {
                "action": "reassign-owner",
                "mapping": {"u1": "u2"},
                "enable": True,
                "where": {"owner_status": ["deleted", "disabled"]},
            }
        ],
    },
    {
        "job": {"name": "tagging"},
        "operations": [
            {"action": "tag", "tags": ["a", "b"], "where": {"type": "chart-sharing"}},
            {"action": "untag", "tags": ["b"], "where": {"name": ["Weekly*", "x?"]}},
        ],
    },
    {
        "job": {"name": "patching"},
        "operations": [
            {
                "action": "patch",
                "ops": [{"op": "replace", "path": "/description", "value": "new"}],
                "where": {"not_viewed_for_days": 30, "status": "FAILED"},
            }
        ],
    },
    {
        "job": {"name": "purge"},
        "operations": [{"action": "delete", "where": {"status": "DELETING"}}],
    },
    {
        "job": {"name": "run-them"},
        "operations": [
            {"action": "execute", "where": {"ids": ["t0001", "t0002"], "enabled": True}},
            {"action": "enable", "where": {"all": True}},
        ],
    },
]
#: every key a job knows, for the mutations that add one
KEYS = sorted(
    {"name", "description", "max_changes", "action", "where", "tags", "to", "mapping"}
    | {"mapping_file", "ops", "enable", "op", "path", "value", *WHERE_KEYS}
)
#: what `plan` may end with on a generated job against a compliant tenant
PLAN_CODES = {0, 2}


def _plan(served: Served, text: bytes) -> None:
    """Plan the job `text` against the hostile tenant; a refused job sends nothing."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        job = root / "job.toml"
        job.write_bytes(text)
        config = write_config(root / "bulkshare.toml", served.hostile.url, served.state)
        outcome = run_cli(["plan", str(job), "--config", str(config)], root, ENV)
    check(outcome, PLAN_CODES, "job files")
    if outcome.code == 2:
        assert served.hostile.seen == [], outcome.err
    assert served.elsewhere.seen == []


@suite_settings(420)
@given(doc=st.sampled_from(BASES).flatmap(lambda base: mutated(base, KEYS)))
def test_mutated_jobs_plan_or_are_refused_in_one_line(fresh: Served, doc: dict[str, Any]) -> None:
    """A valid job mutated anywhere plans, or is refused in one line, exit 2, sending nothing."""
    fresh.reset()
    _plan(fresh, document(doc).encode())


@suite_settings(120)
@given(base=st.sampled_from(BASES), data=st.binary(max_size=300), cut=st.integers(0, 400))
def test_garbage_bytes_are_refused_in_one_line(
    fresh: Served, base: dict[str, Any], data: bytes, cut: int
) -> None:
    """A job cut anywhere and followed by random bytes plans or is refused in one line."""
    fresh.reset()
    _plan(fresh, document(base).encode()[:cut] + data)


@suite_settings(80)
@given(data=st.binary(min_size=1, max_size=200))
def test_validate_takes_any_bytes(tmp_path: Path, data: bytes) -> None:
    """`validate` of random bytes: exit 0 or 2 with exactly one error line, never a traceback."""
    job = tmp_path / "garbage.toml"
    job.write_bytes(data)
    outcome = run_cli(["validate", str(job)], tmp_path)
    check(outcome, {0, 2}, "job files")
