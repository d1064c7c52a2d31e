"""The contract suite covers the whole API: every operation of both specs and of the reference,
every status they document (or a reason it cannot be provoked), and every exception it names.
"""

from __future__ import annotations

from collections import defaultdict

from bulkshare.sim.limits import OPERATION_TIERS, Tier, TierLimits

from .cases import CASES, FILTER, TASKS, USER, WRITES
from .spec import (
    BY_NAME,
    EXCEPTIONS,
    METHODS,
    TASKS_SPEC,
    USERS_SPEC,
    amended_document,
    document,
    exception_names,
    reference_endpoints,
    spec_operations,
)

#: documented answers no request can provoke from the simulator, and why
NOT_PROVOKED = {
    ("DELETE", f"{TASKS}/{{taskId}}", 400): "the sim takes any task id; an unknown one is a 404",
    ("POST", f"{TASKS}/{{taskId}}/actions/cancel", 400): "the sim takes any task id; unknown: 404",
    ("GET", USER, 403): "the sim has no permissions: every bearer may read every user",
    ("POST", FILTER, 403): "the sim has no permissions: every bearer may filter users",
}
READS_NEVER_FAIL = "the sim's faults hit sharing-tasks writes only; nothing else answers 500"
_TIERS = {"1": Tier.TIER1, "2": Tier.TIER2, "special": Tier.USERS_FILTER}


def _exercised() -> dict[tuple[str, str], set[int]]:
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for case in CASES:
        seen[(case.method, case.template)].add(case.status)
    return seen


def _documented() -> dict[tuple[str, str], set[int]]:
    """(METHOD, path) -> documented statuses of every operation, the reference's included."""
    found: dict[tuple[str, str], set[int]] = {}
    for spec in (TASKS_SPEC, USERS_SPEC):
        # every exception but the made-up 405 operations: those document nothing real
        names = exception_names(spec) - {"wrong-method-405", "users-wrong-method-405"}
        doc = amended_document(spec, names)
        for path, operations in doc["paths"].items():
            for method in set(operations) & set(METHODS):
                codes = {int(s) for s in operations[method]["responses"] if s.isdigit()}
                found[(method.upper(), path)] = codes
    return found


def test_every_operation_of_both_specs_is_exercised() -> None:
    """Each path and method of both published specs has cases, so a new one cannot go untested."""
    missing = set(spec_operations()) - {(c.method.lower(), c.template) for c in CASES}
    assert not missing, f"operations without contract cases: {sorted(missing)}"


def test_every_endpoint_of_the_reference_is_exercised() -> None:
    """Each endpoint sharing-tasks.md documents, those newer than the spec too, has cases."""
    endpoints = reference_endpoints()
    assert len(endpoints) == 13
    missing = set(endpoints) - {(c.method.lower(), c.template) for c in CASES}
    assert not missing, f"reference endpoints without contract cases: {sorted(missing)}"


def _excuse(method: str, path: str, code: int) -> str | None:
    """Why the sim cannot be made to answer `code` there, if it cannot."""
    if code == 500 and (method, path) not in WRITES:
        return READS_NEVER_FAIL
    return NOT_PROVOKED.get((method, path, code))


def test_every_documented_status_is_exercised_or_excused() -> None:
    """Each status an operation documents is answered by some case, or excused with a reason."""
    seen, documented = _exercised(), _documented()
    missing = []
    for (method, path), codes in sorted(documented.items()):
        excused = {code: _excuse(method, path, code) for code in codes - seen[(method, path)]}
        missing += [(method, path, code) for code, why in excused.items() if why is None]
        print(f"{method} {path}: answered {sorted(seen[(method, path)])}, excused {excused}")
    assert not missing, f"documented statuses never answered: {missing}"
    for method, path, code in NOT_PROVOKED:  # no stale excuses
        assert code in documented[(method, path)] - seen[(method, path)], (method, path, code)


def test_every_operation_is_refused_each_way_it_can_be() -> None:
    """Each operation answers 401 and 429, each write 500 and 503, and each path a 405."""
    seen = _exercised()
    for operation in _documented():
        assert {401, 429} <= seen[operation], operation
    for write in WRITES:
        assert {500, 503} <= seen[write], write
    paths = {path for _, path in _documented()}
    assert paths == {c.template for c in CASES if c.status == 405}


def test_every_exception_is_named_by_a_case() -> None:
    """No exception sits in the table unused, and each has a one-line reason naming its source."""
    named = {name for case in CASES for name in case.exceptions}
    assert named == set(BY_NAME), set(BY_NAME) ^ named
    for exception in EXCEPTIONS:
        assert "\n" not in exception.reason and len(exception.reason) < 200, exception.name
        assert exception.spec in (TASKS_SPEC, USERS_SPEC), exception.name


def test_reference_tiers_match_the_sim() -> None:
    """The tier and rate sharing-tasks.md gives each endpoint, executions too, are the sim's."""
    limits = TierLimits()
    for (method, path), (tier, per_minute) in reference_endpoints().items():
        assert OPERATION_TIERS[(method.upper(), f"/api{path}")] is _TIERS[tier], (method, path)
        assert limits.per_minute(_TIERS[tier]) == per_minute, (method, path)


def test_spec_rates_match_the_sim() -> None:
    """The per-minute limit of every x-qlik-tier is the sim's default for that tier."""
    # the tier names themselves: tests/sim/test_sim_auth_limits.py::test_tiers_match_the_specs
    limits = TierLimits()
    for (method, path), spec in spec_operations().items():
        tier = document(spec)["paths"][path][method]["x-qlik-tier"]
        assert limits.per_minute(_TIERS[tier["tier"]]) == tier["limit"], (method, path)
