"""Honest dependencies: what pyproject.toml declares is what the code imports, both ways.

Imports are read with `ast` (no module is imported); an import name is mapped to the
distributions that provide it by the installed metadata (`packages_distributions`).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: our own top-level packages: never a dependency
OWN = frozenset({"bulkshare", "tests", "bench"})
#: test dependencies used without an import: the pytest setting each one provides
PLUGINS = {"pytest-asyncio": "asyncio_mode", "pytest-timeout": "timeout"}
#: test dependencies run as commands by the checks, never imported
TOOLS = frozenset({"mypy", "ruff"})


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: Iterable[str]) -> set[str]:
    """The distribution names of PEP 508 requirement strings."""
    names = set()
    for req in requirements:
        found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req.strip())
        assert found is not None, f"unreadable requirement {req!r}"
        names.add(canonical(found.group(0)))
    return names


def pyproject(root: Path = ROOT) -> dict[str, Any]:
    """The project's pyproject.toml."""
    with (root / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def declared(doc: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(runtime, test) distributions pyproject.toml declares."""
    project = doc["project"]
    test = project.get("optional-dependencies", {}).get("test", [])
    return requirement_names(project.get("dependencies", [])), requirement_names(test)


def imported(*folders: Path) -> dict[str, set[Path]]:
    """Every third-party top-level module imported under `folders`, with the files importing it."""
    found: dict[str, set[Path]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            for name in _imports_of(path):
                if name not in sys.stdlib_module_names and name not in OWN:
                    found.setdefault(name, set()).add(path)
    return found


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@cache
def _installed() -> Mapping[str, list[str]]:
    return packages_distributions()  # a walk of every installed distribution: once


def providers(module: str) -> set[str]:
    """The installed distributions providing top-level `module` (empty: none installed)."""
    return {canonical(d) for d in _installed().get(module, [])}


def undeclared(imports: Mapping[str, set[Path]], allowed: set[str]) -> list[str]:
    """A line for each imported module that no allowed distribution provides."""
    lines = []
    for module, paths in sorted(imports.items()):
        if not providers(module) & allowed:
            where = ", ".join(
                str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
                for p in sorted(paths)
            )
            given = ", ".join(sorted(providers(module))) or "no installed distribution"
            lines.append(f"{module} (from {given}) imported by {where}")
    return lines


def unused(dists: set[str], imports: Mapping[str, set[Path]]) -> list[str]:
    """The declared distributions none of whose modules is imported."""
    used = {dist for module in imports for dist in providers(module)}
    return sorted(dists - used)


def test_runtime_imports_are_declared() -> None:
    """Every third-party module bulkshare/ imports comes from a declared runtime dependency."""
    runtime, _ = declared(pyproject())
    assert undeclared(imported(ROOT / "bulkshare"), runtime) == []


def test_runtime_dependencies_are_imported() -> None:
    """Every declared runtime dependency is imported somewhere in bulkshare/."""
    runtime, _ = declared(pyproject())
    assert unused(runtime, imported(ROOT / "bulkshare")) == []


def test_test_and_bench_imports_are_declared() -> None:
    """Every third-party module tests/ and bench/ import is a declared runtime or test dep."""
    runtime, test = declared(pyproject())
    assert undeclared(imported(ROOT / "tests", ROOT / "bench"), runtime | test) == []


def test_test_dependencies_are_used() -> None:
    """Every test dependency is imported by tests/ or bench/, or is a plugin whose pytest
    setting is in pyproject.toml, or a checking tool; none is declared for nothing."""
    doc = pyproject()
    _, test = declared(doc)
    settings = doc["tool"]["pytest"]["ini_options"]
    plugins = {dist for dist, key in PLUGINS.items() if key in settings}
    left = unused(test, imported(ROOT / "tests", ROOT / "bench"))
    assert [dist for dist in left if dist not in plugins | TOOLS] == []
    assert test >= TOOLS, "the checks run mypy and ruff: declare them"


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    """A module importing an installed but undeclared distribution is named, with its file."""
    (tmp_path / "late.py").write_text("import hypothesis.strategies\nfrom orjson import dumps\n")
    runtime, _ = declared(pyproject())
    lines = undeclared(imported(tmp_path), runtime)
    assert len(lines) == 1 and lines[0].startswith("hypothesis (from hypothesis) imported by")
    assert str(tmp_path / "late.py") in lines[0]


def test_a_declared_but_unused_dependency_is_caught(tmp_path: Path) -> None:
    """A declared distribution that no file imports is named; a relative import is our own."""
    (tmp_path / "only.py").write_text("from . import sibling\nimport aiohttp\n")
    assert unused({"aiohttp", "rich"}, imported(tmp_path)) == ["rich"]
