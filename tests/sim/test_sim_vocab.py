"""The simulator speaks the service's vocabulary from `bulkshare.sim.vocab` alone: no module
imports the engine's copy, and no other module spells out the values itself.
"""

from __future__ import annotations

import ast
import enum
from pathlib import Path

import pytest

from bulkshare.sim import SimTenant, listing, patching, vocab

SIM = Path(vocab.__file__).parent
MODULES = sorted(SIM.glob("*.py"))

# the sets whose values are never also a field name, a query parameter or a plain word, so
# any string literal equal to one of them is the vocabulary written out a second time
DISTINCT: tuple[type[enum.StrEnum], ...] = (
    vocab.TaskType,
    vocab.StatusCode,
    vocab.TaskError,
    vocab.UserStatus,
    vocab.PatchPath,
    vocab.SettingsPath,
    vocab.ExecutionStatus,
    vocab.SubType,
    vocab.CleanupStrategy,
    vocab.FileTimeStamp,
    vocab.Role,
)


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_sim_module_imports_the_engine_vocabulary(path: Path) -> None:
    """The simulator's vocabulary stays independent of the engine's (a test holds both)."""
    assert "bulkshare.vocab" not in _imports(ast.parse(path.read_text()))


def _spelled(source: str) -> list[str]:
    known = {member.value: kind.__name__ for kind in DISTINCT for member in kind}
    return [
        f"line {node.lineno}: {node.value!r} (vocab.{known[node.value]})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known
    ]


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "vocab.py"], ids=lambda p: p.name)
def test_vocabulary_values_are_written_only_in_vocab(path: Path) -> None:
    """Outside vocab.py no sim module has a string literal that is one of the service's values."""
    assert _spelled(path.read_text()) == []


def test_the_literal_check_sees_a_written_out_value() -> None:
    """The scan finds a status code or a PATCH path spelled out (so its silence means something)."""
    assert _spelled('if task["statusCode"] == "DELETING": pass') == [
        "line 1: 'DELETING' (vocab.StatusCode)"
    ]
    assert len(_spelled('PATHS = ("/name", "/tags")\nx = "/name-ish"')) == 2


def test_every_patch_path_has_a_rule() -> None:
    """PATCH knows what to do with each documented path, and with no other."""
    assert set(patching.PATH_RULES) == set(vocab.PatchPath)


def test_every_sort_has_a_field() -> None:
    """The tasks list can order by each documented sort key, and by no other."""
    assert set(listing.SORT_FIELDS) == set(vocab.TaskSort)


def test_vocabulary_tuples_hold_plain_strings() -> None:
    """The vocabulary's tuples are plain str, so messages built from them never show an enum."""
    for name in vocab.__all__:
        held = getattr(vocab, name)
        if isinstance(held, tuple):
            assert all(type(value) is str for value in held), name


def test_tenant_documents_hold_plain_strings() -> None:
    """Seeded, patched, deleting and executed tasks store plain strings, never enum members."""
    tenant = SimTenant.seed(200, 4)
    first, second, third = list(tenant.tasks)[:3]
    disabled = next(u for u in tenant.users.values() if u["status"] == "disabled")
    tenant.patch_task(first, [{"op": "replace", "path": "/ownerId", "value": disabled["id"]}])
    tenant.delete_task(second, deleting_phase=True)
    tenant.execute_task(third)
    doc = tenant.to_document()
    stored = [t[k] for t in doc["sharingTasks"] for k in ("type", "statusCode")]
    stored += [e["value"] for t in doc["sharingTasks"] for e in t["taskErrors"]]
    stored += [u["status"] for u in doc["users"]]
    stored += [r["status"] for runs in doc["executions"].values() for r in runs]
    assert "OWNER_DISABLED" in stored and "DELETING" in stored and "successful" in stored
    assert {type(value) for value in stored} == {str}
