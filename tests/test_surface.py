"""The surface a user and a library caller touch first: --version, bare `bulkshare`, each
command's help, and the names `bulkshare` exports."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest

import bulkshare
from bulkshare.cli import build_parser, main

COMMANDS = (
    "validate",
    "export",
    "plan",
    "apply",
    "resume",
    "undo",
    "runs",
    "show",
    "unlock",
    "audit",
    "sim",
)


def sub_parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser, nested ones (audit verify) included, with its full name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                for nested, grandchild in sub_parsers(child):
                    yield f"{name} {nested}", grandchild


def test_version_names_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    """`bulkshare --version` prints the version pip installed and exits 0."""
    assert main(["--version"]) == 0  # argparse's exit is caught: main returns the code
    assert capsys.readouterr().out.strip() == f"bulkshare {version('bulkshare')}"
    assert bulkshare.__version__ == version("bulkshare")


def test_bare_command_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`bulkshare` alone lists the commands on stdout, each with its one-line summary."""
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"    {name} " in out, name


def test_every_command_has_help_for_each_flag_and_ends_with_an_example() -> None:
    """Each command's --help has a help line for every argument and ends with an example."""
    seen = set()
    for name, parser in sub_parsers(build_parser()):
        seen.add(name)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        last = parser.format_help().rstrip("\n").splitlines()[-1].strip()
        assert last.startswith(f"bulkshare {name.split()[0]}"), (name, last)
    assert seen == {*COMMANDS, "audit verify"}


def test_public_surface_is_pinned() -> None:
    """The package names its public surface once; each name is importable from `bulkshare`."""
    assert sorted(bulkshare.__all__) == [
        "ActionKind",
        "ApiClient",
        "AuditLog",
        "BulkshareError",
        "Change",
        "ChangeRecord",
        "Config",
        "ConfigError",
        "DryRunViolation",
        "InterruptedRun",
        "Job",
        "JobFileError",
        "Operation",
        "Outcome",
        "Plan",
        "PlanFileError",
        "RefusedError",
        "RequestFailed",
        "RunDir",
        "RunFileError",
        "RunMeta",
        "RunOptions",
        "RunState",
        "Runner",
        "Summary",
        "TenantConfig",
        "TenantError",
        "TenantSession",
        "UsageError",
        "VerifyResult",
        "Where",
        "__version__",
        "build_plan",
        "load_config",
        "load_job",
        "open_tenant",
        "verify",
    ]
    for name in bulkshare.__all__:
        assert getattr(bulkshare, name) is not None, name


@pytest.mark.parametrize(
    "package", ["job", "plan", "run", "report", "commands", "client", "sim", "export"]
)
def test_each_step_opens_with_a_two_line_docstring_and_exports_its_surface(package: str) -> None:
    """Every step's package says what it is for and names what the next step uses."""
    module = __import__(f"bulkshare.{package}", fromlist=["__all__"])
    doc = (module.__doc__ or "").strip()
    assert doc, package
    assert module.__all__ and all(hasattr(module, name) for name in module.__all__)


def test_commands_other_than_sim_leave_the_simulator_unloaded() -> None:
    """Building the parser (every command does) imports the `sim` flags, not the simulated
    tenant or its server: a plan of a real tenant carries neither in its memory."""
    script = (
        "import sys; from bulkshare.cli import build_parser; build_parser(); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('bulkshare.sim', "
        "'aiohttp.web')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert "bulkshare.sim.flags" in loaded
    heavy = {"bulkshare.sim.tenant", "bulkshare.sim.app", "bulkshare.sim.server", "aiohttp.web"}
    assert not loaded & heavy, loaded & heavy
