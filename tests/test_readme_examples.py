"""The README's examples: every job example validates, every key and action has one, configs load.

A job example is a ```toml block whose first line is `[job]`; a config example is a ```toml block
that names a `[tenants.` table. Every ```toml block of the README must be one or the other.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bulkshare.config import load_config
from bulkshare.job import WHERE_KEYS, ActionKind
from tests.conftest import ROOT

README = ROOT / "README.md"
_TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ENV_NAME = re.compile(r"""^\s*\w+_env\s*=\s*["']([^"']+)["']""", re.MULTILINE)
#: the ways of naming the new owner(s) of `reassign-owner`, each of which needs its own example
REASSIGN_KEYS = ("to", "mapping", "mapping_file", "enable")


def toml_blocks() -> list[tuple[int, str]]:
    """Every ```toml block of the README with the line its fence opens on."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m[1]) for m in _TOML_BLOCK.finditer(text)]


def job_examples() -> list[tuple[int, str]]:
    """The blocks that are whole job files."""
    return [(line, body) for line, body in toml_blocks() if body.startswith("[job]")]


def config_examples() -> list[tuple[int, str]]:
    """The blocks that are config files."""
    return [(line, body) for line, body in toml_blocks() if "[tenants." in body]


def _operations(body: str) -> list[dict[str, Any]]:
    operations: list[dict[str, Any]] = tomllib.loads(body)["operations"]
    return operations


def test_every_toml_block_is_a_job_or_a_config() -> None:
    """A TOML block that is neither a job nor a config would escape every check below."""
    blocks = toml_blocks()
    assert blocks, "no ```toml block found in the README"
    jobs, configs = {line for line, _ in job_examples()}, {line for line, _ in config_examples()}
    stray = [line for line, _ in blocks if line not in jobs and line not in configs]
    assert not stray, f"README.md lines {stray}: ```toml blocks that are neither job nor config"


def _job_params() -> list[Any]:
    return [pytest.param(line, body, id=f"README.md:{line}") for line, body in job_examples()]


@pytest.mark.parametrize(("line", "body"), _job_params())
def test_job_example_validates(tmp_path: Path, line: int, body: str) -> None:
    """`bulkshare validate` accepts the job example, with any mapping file it names beside it."""
    job = tmp_path / "example.toml"
    job.write_text(body, encoding="utf-8")
    for op in _operations(body):
        if "mapping_file" in op:
            shipped = ROOT / "jobs" / op["mapping_file"]
            assert shipped.is_file(), f"README.md:{line}: no jobs/{op['mapping_file']} to copy"
            shutil.copy(shipped, tmp_path / op["mapping_file"])
    result = subprocess.run(
        [sys.executable, "-m", "bulkshare", "validate", str(job)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, f"README.md:{line}: {result.stderr}"
    assert result.stdout.startswith(f"ok: {job}"), result.stdout


def test_examples_cover_every_where_key_and_action() -> None:
    """Each `where` key, each action and each way of naming a new owner has an example."""
    wheres: set[str] = set()
    actions: set[str] = set()
    reassign: set[str] = set()
    for _, body in job_examples():
        for op in _operations(body):
            wheres.update(op.get("where", {}))
            actions.add(op["action"])
            if op["action"] == ActionKind.REASSIGN_OWNER:
                reassign.update(key for key in REASSIGN_KEYS if key in op)
    missing = {
        "where keys": sorted(set(WHERE_KEYS) - wheres),
        "actions": sorted({kind.value for kind in ActionKind} - actions),
        "reassign-owner keys": sorted(set(REASSIGN_KEYS) - reassign),
    }
    assert not any(missing.values()), f"without a README example: {missing}"


def _config_params() -> list[Any]:
    named = [(f"README.md:{line}", body) for line, body in config_examples()]
    shipped = ROOT / "config.example.toml"
    named.append((shipped.name, shipped.read_text(encoding="utf-8")))
    return [pytest.param(where, body, id=where) for where, body in named]


@pytest.mark.parametrize(("where", "body"), _config_params())
def test_config_example_loads(tmp_path: Path, where: str, body: str) -> None:
    """The config example loads once the environment variables it names are set."""
    assert _ENV_NAME.search(body), f"{where}: names no environment variable"
    path = tmp_path / "bulkshare.toml"
    path.write_text(body, encoding="utf-8")
    env = {name: f"value-of-{name}" for name in _ENV_NAME.findall(body)}
    config = load_config(str(path), env=env)
    assert config.tenants, f"{where}: no tenant"


def test_readme_opens_with_the_commands_ci_runs() -> None:
    """The README's test command is the one `.ci/run` runs word for word."""
    readme = README.read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert command in first_block
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
