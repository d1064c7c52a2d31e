"""Generated command lines: every command of the real parser with its own options, given right,
wrong and odd values (and stray flags and arguments), against a workspace holding a config, a
job, a saved plan and a finished run. Each ends with a documented exit code and one line.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkshare.cli import build_parser
from tests.generated.harness import ENV, Served, check, run_cli, suite_settings, write_config

# slow (`.ci/run` runs it with `pytest -m slow`): generated inputs through the real CLI
pytestmark = pytest.mark.slow

JOB = (
    '[job]\nname = "flags"\n[[operations]]\naction = "tag"\ntags = ["fz"]\n'
    'where.task_errors = ["ORPHAN"]\n'
)
#: what a generated command line may end with (130 and 70 never: no signal is sent, and a
#: bug is what the suite looks for)
CODES = {0, 1, 2, 3, 4}
#: values any option may be given; `@x` names a file of the workspace
ODD = [
    "",
    "-",
    "--",
    "0",
    "-1",
    "1",
    "3",
    "1e9",
    "99999999999999999999",
    "nan",
    "inf",
    "-inf",
    "0.5h",
    "x",
    "last",
    "all",
    "h",
    "sim",
    "nope",
    "\x1b[2J\x1b[Hok",
    "a\u202eb",
    "ü",
    "../../etc/passwd",
    "/dev/null",
    "/dev/full",
    "/nonexistent/dir/file",
    "@job",
    "@plan",
    "@run",
    "@config",
    "@out.html",
    "@out.csv",
    "@out.json",
    "@state",
    "@audit",
]


def _commands() -> dict[str, list[argparse.Action]]:
    """Each command of the real parser and its actions (audit verify counted as `audit`)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: dict[str, list[argparse.Action]] = {}
    for name, command in sub.choices.items():
        actions = [a for a in command._actions if not isinstance(a, argparse._HelpAction)]
        if name == "audit":
            audit_sub = next(
                a for a in command._actions if isinstance(a, argparse._SubParsersAction)
            )
            verify = audit_sub.choices["verify"]
            actions = [a for a in verify._actions if not isinstance(a, argparse._HelpAction)]
        found[name] = actions
    return found


COMMANDS = _commands()


#: values that fit an option or positional (by its dest), drawn as often as the odd ones
FITTING = {
    "jobs": ["@job"],
    "job": ["@job"],
    "target": ["@job", "@plan", "@run", "@audit"],
    "run_id": ["@run", "last"],
    "tenant": ["h", "all"],
    "out": ["@out.json", "@out.jsonl", "@out.csv"],
    "report": ["@out.html", "@out.md", "@out.csv", "@out.json"],
    "verify": ["@export"],
    "max_changes": ["0", "1", "100"],
    "concurrency": ["1", "4"],
    "max_age": ["1", "24h", "0.01"],
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command, then its options and positionals in any order, each with a drawn value."""
    name = draw(st.sampled_from(sorted(COMMANDS)))
    argv = ["audit", "verify"] if name == "audit" else [name]
    actions = COMMANDS[name]
    positionals = [a for a in actions if not a.option_strings]
    for action in positionals + draw(st.lists(st.sampled_from(actions), max_size=4)):
        fitting = list(action.choices or ()) or FITTING.get(action.dest, [])
        fits = fitting and draw(st.integers(0, 3)) > 0
        value = st.sampled_from(fitting) if fits else st.sampled_from(ODD)
        if action.option_strings:
            argv.append(draw(st.sampled_from(action.option_strings)))
            if action.nargs != 0:
                argv.append(draw(value))
        else:
            argv.append(draw(value))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--bogus", "-x", "--"])))
    if name in ("apply", "undo") and draw(st.booleans()):
        argv.append("--yes")
    return argv


@pytest.fixture(scope="module")
def workspace(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config naming the hostile tenant, a job, a saved plan and one finished run of it."""
    root = tmp_path_factory.mktemp("flags")
    served.reset()
    config = write_config(root / "bulkshare.toml", served.hostile.url)
    (root / "job.toml").write_text(JOB)
    plan = run_cli(["plan", "job.toml", "--out", "plan.json", "--config", str(config)], root, ENV)
    assert plan.code == 0, plan.err
    applied = run_cli(["apply", "job.toml", "--yes", "--config", str(config)], root, ENV)
    assert applied.code == 0, applied.err
    export = run_cli(["export", "--out", "export.jsonl", "--config", str(config)], root, ENV)
    assert export.code == 0, export.err
    return root


def _resolve(workspace: Path, root: Path) -> Callable[[str], str]:
    run = next((workspace / "state" / "runs").iterdir()).name
    names = {
        "@job": str(root / "job.toml"),
        "@plan": str(root / "plan.json"),
        "@run": run,
        "@config": str(root / "bulkshare.toml"),
        "@state": str(root / "state"),
        "@audit": str(root / "state" / "runs" / run / "audit.jsonl"),
        "@export": str(root / "export.jsonl"),
    }
    return lambda value: names.get(value) or (str(root / value[1:]) if value[:1] == "@" else value)


@suite_settings(420)
@given(argv=command_lines())
def test_command_lines(served: Served, workspace: Path, argv: list[str]) -> None:
    """Any command line from the parser's own options, with right, wrong and odd values: a
    documented exit code, one error line at most, no traceback, nothing raw on stderr."""
    served.reset()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "w"
        shutil.copytree(workspace, root)
        resolve = _resolve(workspace, root)
        args = [resolve(a) for a in argv]
        if args[0] == "sim":
            # never a server left running: the port is taken, so a valid sim line fails to bind
            port = served.hostile.url.rsplit(":", 1)[1]
            args += ["--host", "127.0.0.1", "--port", port]
        # the workspace's config first: a generated --config after the command overrides it
        outcome = run_cli(["--config", str(root / "bulkshare.toml"), *args], root, ENV)
    check(outcome, CODES, "flags")
    assert served.elsewhere.seen == []
