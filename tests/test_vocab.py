"""Both vocabularies of the service, the engine's `bulkshare.vocab` and the simulator's
`bulkshare.sim.vocab`, hold exactly the values of the vendored spec's enums.

Where the newer reference (sharing-tasks.md) wins over the January 2025 spec, the entry names the
contract suite's exception (tests/contract/spec.py EXCEPTIONS) and the spec is read amended by it;
the test also proves that exception is needed, so a stale one cannot hide a slip.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from bulkshare import vocab as engine_vocab
from bulkshare.sim import vocab as sim_vocab
from tests.contract.spec import (
    BY_NAME,
    REFERENCE,
    TASKS_SPEC,
    USERS_SPEC,
    amended_document,
    document,
)

Json = dict[str, Any]
_SIGNS = ("", "+", "-")


@dataclass(frozen=True, slots=True)
class Prop:
    """The enum of a schema property (or of its array items) in one spec."""

    spec: str
    schema: str
    field: str

    def values(self, doc: Json) -> list[str] | None:
        """The enum, or None when the spec has no such property."""
        prop = doc["components"]["schemas"].get(self.schema, {}).get("properties", {})
        return _enum(prop.get(self.field))


@dataclass(frozen=True, slots=True)
class Param:
    """The enum of a query parameter (or of its array items) of one operation."""

    spec: str
    path: str
    method: str
    name: str

    def values(self, doc: Json) -> list[str] | None:
        """The enum, or None when the spec has no such operation or parameter."""
        operation = doc["paths"].get(self.path, {}).get(self.method, {})
        for param in operation.get("parameters", []):
            if param.get("name") == self.name and param.get("in") == "query":
                return _enum(param.get("schema"))
        return None


@dataclass(frozen=True, slots=True)
class Reference:
    """The one enum sharing-tasks.md lists for a field (every table row of it agrees)."""

    field: str

    def values(self) -> list[str] | None:
        """The enum of the field's rows, or None when no row has one."""
        row = re.compile(rf"^\| `{re.escape(self.field)}` \|.*Enum: (.*) \|$")
        found = {
            tuple(re.findall(r'"([^"]*)"', m[1]))
            for line in REFERENCE.read_text().splitlines()
            if (m := row.match(line))
        }
        assert len(found) <= 1, f"sharing-tasks.md lists {self.field} differently: {found}"
        return list(found.pop()) if found else None


def _enum(schema: Json | None) -> list[str] | None:
    if schema is None:
        return None
    if "enum" in schema:
        return list(schema["enum"])
    items = schema.get("items")
    return list(items["enum"]) if isinstance(items, dict) and "enum" in items else None


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """One closed set of values: where the spec lists it, and what each vocabulary calls it."""

    id: str
    places: tuple[Prop | Param, ...]
    sim: str  #: a tuple or StrEnum of bulkshare.sim.vocab
    engine: str | None = None  #: a tuple of bulkshare.vocab
    exceptions: tuple[str, ...] = ()  #: the contract exceptions that amend these places
    signed: bool = False  #: the spec lists each value bare, with + and with - (sort keys)
    reference: Reference | None = None  #: only sharing-tasks.md has it (no spec place)

    def spec(self) -> str:
        (spec,) = {place.spec for place in self.places} or {TASKS_SPEC}
        return spec

    def expected(self, values: Sequence[str]) -> list[str]:
        """`values` as the spec writes them."""
        return [f"{sign}{v}" for v in values for sign in _SIGNS] if self.signed else list(values)


def _tasks(schema: str, field: str) -> Prop:
    return Prop(TASKS_SPEC, schema, field)


_PERSIST, _CREATE = "SharingTaskRecurringPersist", "SharingTaskRecurringCreateRequest"
_PATCH, _SETTINGS_PATCH = (
    "SharingTaskRecurringPatchRequestCompliant",
    "SharingSettingsPatchCompliant",
)
_TASKS_LIST = "/v1/sharing-tasks"
_EXECUTIONS = "/v1/sharing-tasks/{taskId}/executions"

VOCABULARIES = (
    Vocabulary(
        "task type",
        (
            _tasks(_PERSIST, "type"),
            _tasks(_CREATE, "type"),
            Param(TASKS_SPEC, _TASKS_LIST, "get", "type"),
        ),
        sim="TASK_TYPES",
        engine="TASK_TYPES",
    ),
    Vocabulary(
        "statusCode",
        (_tasks(_PERSIST, "statusCode"),),
        sim="STATUS_CODES",
        engine="STATUS_CODES",
        exceptions=("status-code-enum",),
    ),
    Vocabulary(
        "taskErrors[].value",
        (_tasks("TaskError", "value"),),
        sim="TASK_ERRORS",
        engine="TASK_ERRORS",
        exceptions=("task-error-enum",),
    ),
    Vocabulary(
        "PATCH path",
        (_tasks(_PATCH, "path"),),
        sim="PATCH_PATHS",
        engine="PATCH_PATHS",
        exceptions=("patch-remove-bookmarkId",),
    ),
    Vocabulary(
        "PATCH op",
        (_tasks(_PATCH, "op"),),
        sim="PATCH_OPS",
        engine="PATCH_OPS",
        exceptions=("patch-remove-bookmarkId",),
    ),
    Vocabulary(
        "transport channel",
        (_tasks(_PERSIST, "transportChannels"), _tasks(_CREATE, "transportChannels")),
        sim="TRANSPORT_CHANNELS",
        engine="TRANSPORT_CHANNELS",
    ),
    Vocabulary(
        "user status",
        (Prop(USERS_SPEC, "User", "status"), Param(USERS_SPEC, "/v1/users", "get", "status")),
        sim="USER_STATUSES",
        engine="OWNER_STATUSES",
    ),
    Vocabulary("user role", (Prop(USERS_SPEC, "User", "roles"),), sim="SYSTEM_ROLES"),
    Vocabulary(
        "settings PATCH path",
        (_tasks(_SETTINGS_PATCH, "path"),),
        sim="SETTINGS_PATHS",
        exceptions=("settings-patch-paths",),
    ),
    Vocabulary("settings PATCH op", (_tasks(_SETTINGS_PATCH, "op"),), sim="SETTINGS_PATCH_OPS"),
    Vocabulary(
        "template type",
        (_tasks("TemplatePersist", "type"),),
        sim="TEMPLATE_TYPES",
        exceptions=("template-type-enum",),
    ),
    Vocabulary("template subType", (_tasks("TemplatePersist", "subType"),), sim="TemplateSubType"),
    Vocabulary(
        "task subType",
        (_tasks(_PERSIST, "subType"), _tasks(_CREATE, "subType")),
        sim="SUB_TYPES",
        exceptions=("sub-type-enum",),
    ),
    Vocabulary(
        # x-known-differences-vs-2026 "SharingTaskRecurringCreateRequest adds": cleanupStrategy
        "cleanupStrategy",
        (),
        sim="CleanupStrategy",
        reference=Reference("cleanupStrategy"),
    ),
    Vocabulary("resizeType", (_tasks("MultiSheetTemplate", "resizeType"),), sim="ResizeType"),
    Vocabulary("fileTimeStamp", (_tasks("TemplatePersist", "fileTimeStamp"),), sim="FileTimeStamp"),
    Vocabulary(
        "execution status",
        (_tasks("SharingExecutionResponse", "status"),),
        sim="ExecutionStatus",
        exceptions=("executions-endpoints",),
    ),
    Vocabulary(
        "executions list status",
        (Param(TASKS_SPEC, _EXECUTIONS, "get", "status"),),
        sim="EXECUTION_FILTER_STATUSES",
        exceptions=("executions-endpoints",),
    ),
    Vocabulary(
        "latest execution status",
        (Param(TASKS_SPEC, f"{_EXECUTIONS}/{{executionId}}", "get", "status"),),
        sim="LATEST_STATUSES",
        exceptions=("executions-endpoints",),
    ),
    Vocabulary(
        "executions list sort",
        (Param(TASKS_SPEC, _EXECUTIONS, "get", "sort"),),
        sim="EXECUTION_SORTS",
        exceptions=("executions-endpoints",),
        signed=True,
    ),
    Vocabulary(
        "tasks list sort",
        (Param(TASKS_SPEC, _TASKS_LIST, "get", "sort"),),
        sim="TASK_SORTS",
        signed=True,
    ),
    Vocabulary(
        "tasks list role", (Param(TASKS_SPEC, _TASKS_LIST, "get", "role"),), sim="LIST_ROLES"
    ),
    Vocabulary(
        "users list sort",
        (Param(USERS_SPEC, "/v1/users", "get", "sort"),),
        sim="USER_SORTS",
        signed=True,
    ),
    Vocabulary(
        "users filter sort",
        (Param(USERS_SPEC, "/v1/users/actions/filter", "post", "sort"),),
        sim="USERS_FILTER_SORTS",
        signed=True,
    ),
    Vocabulary("page link type", (_tasks("Page", "type"),), sim="LinkType"),
    Vocabulary(
        "report subscription status",
        (
            _tasks("SharingSettings", "reportSubscriptionStatus"),
            _tasks("SharingSettings", "reportingTemplateSubscriptionStatus"),
        ),
        sim="SubscriptionStatus",
    ),
    Vocabulary(
        "reporting license status",
        (_tasks("SharingSettings", "reporting-service-license-status"),),
        sim="LicenseStatus",
    ),
)
_IDS = [v.id for v in VOCABULARIES]


def differences(values: Sequence[str], expected: Sequence[str]) -> list[str]:
    """What keeps `values` from being exactly `expected`: repeats, missing and unknown values."""
    problems = [f"repeated {v!r}" for v in sorted(set(values)) if values.count(v) > 1]
    problems += [f"missing {v!r}" for v in sorted(set(expected) - set(values))]
    return problems + [f"unknown {v!r}" for v in sorted(set(values) - set(expected))]


def sim_values(name: str) -> list[str]:
    """A vocabulary of the simulator, as plain strings."""
    held = getattr(sim_vocab, name)
    if isinstance(held, type) and issubclass(held, enum.StrEnum):
        return list(sim_vocab.values(held))
    return list(held)


def spec_values(vocabulary: Vocabulary) -> list[str]:
    """What the contract says the values are: every place, amended by the named exceptions."""
    if vocabulary.reference is not None:
        found = vocabulary.reference.values()
        assert found is not None, f"sharing-tasks.md has no enum for {vocabulary.reference.field}"
        return found
    doc = amended_document(vocabulary.spec(), frozenset(vocabulary.exceptions))
    found_at = {place: place.values(doc) for place in vocabulary.places}
    distinct = {tuple(v) if v is not None else None for v in found_at.values()}
    assert len(distinct) == 1 and None not in distinct, f"the places disagree: {found_at}"
    return list(distinct.pop() or ())


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=_IDS)
def test_simulator_vocabulary_is_the_specs(vocabulary: Vocabulary) -> None:
    """The simulator's values are exactly the spec's enum (amended where the reference wins)."""
    held = vocabulary.expected(sim_values(vocabulary.sim))
    assert differences(held, spec_values(vocabulary)) == []


@pytest.mark.parametrize(
    "vocabulary",
    [v for v in VOCABULARIES if v.engine],
    ids=[v.id for v in VOCABULARIES if v.engine],
)
def test_engine_vocabulary_is_the_specs(vocabulary: Vocabulary) -> None:
    """The engine's values are exactly the spec's enum (amended where the reference wins)."""
    assert vocabulary.engine is not None
    held = vocabulary.expected(list(getattr(engine_vocab, vocabulary.engine)))
    assert differences(held, spec_values(vocabulary)) == []


@pytest.mark.parametrize(
    "vocabulary",
    [v for v in VOCABULARIES if v.exceptions],
    ids=[v.id for v in VOCABULARIES if v.exceptions],
)
def test_each_named_exception_is_needed(vocabulary: Vocabulary) -> None:
    """Read as published, the spec lacks what the named exception adds (so it still matters)."""
    for name in vocabulary.exceptions:
        assert BY_NAME[name].spec == vocabulary.spec()
    published = [place.values(document(vocabulary.spec())) for place in vocabulary.places]
    assert all(values != spec_values(vocabulary) for values in published)


def test_every_vocabulary_is_checked() -> None:
    """Every tuple and StrEnum the two vocabularies export is held to the spec above."""
    checked_sim = {v.sim for v in VOCABULARIES}
    checked_values = {frozenset(sim_values(v.sim)) for v in VOCABULARIES}
    for name in sim_vocab.__all__:
        held = getattr(sim_vocab, name)
        if isinstance(held, tuple):
            assert name in checked_sim, f"bulkshare.sim.vocab.{name} is not checked"
        elif isinstance(held, type) and issubclass(held, enum.StrEnum):
            members = frozenset(m.value for m in held)
            assert members in checked_values, f"bulkshare.sim.vocab.{name} is not checked"
    checked_engine = {v.engine for v in VOCABULARIES}
    for name in engine_vocab.__all__:
        if isinstance(getattr(engine_vocab, name), tuple):
            assert name in checked_engine, f"bulkshare.vocab.{name} is not checked"


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=_IDS)
def test_a_gained_lost_or_misspelt_value_is_caught(vocabulary: Vocabulary) -> None:
    """The comparison refuses a vocabulary with one value added, dropped, misspelt or repeated."""
    expected = spec_values(vocabulary)
    held = vocabulary.expected(sim_values(vocabulary.sim))
    first = held[0]
    for wrong in (
        [*held, "NOT_A_VALUE"],
        held[1:],
        [first.swapcase() if first.swapcase() != first else f"{first}x", *held[1:]],
        [*held, first],
    ):
        assert differences(wrong, expected) != []
