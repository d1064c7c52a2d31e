"""Seeded tenants: deterministic, and with the mix of tasks and owners real tenants have."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from bulkshare.sim import SimTenant
from bulkshare.sim.vocab import STATUS_CODES, USER_STATUSES

OWNER_ERRORS = {"ORPHAN", "OWNER_DISABLED"}


def errors_of(task: dict[str, Any]) -> set[str]:
    return {e["value"] for e in task["taskErrors"]}


def test_same_seed_same_tenant() -> None:
    """Two tenants seeded alike serialize to the same bytes."""
    assert SimTenant.seed(500, 3).dumps() == SimTenant.seed(500, 3).dumps()


def test_other_seed_other_tenant() -> None:
    """A different seed gives different ids."""
    assert set(SimTenant.seed(50, 1).tasks) != set(SimTenant.seed(50, 2).tasks)


def test_ids_look_like_qlik_ids() -> None:
    """Task ids are 24 hex digits, user ids 32 URL-safe characters, all unique."""
    tenant = SimTenant.seed(1000, 5)
    assert all(re.fullmatch(r"[0-9a-f]{24}", tid) for tid in tenant.tasks)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", uid) for uid in tenant.users)
    assert len(tenant.tasks) == 1000


def test_user_population() -> None:
    """One user per ten tasks (at least 8), with active, disabled and deleted users."""
    assert len(SimTenant.seed(20, 1).users) == 8
    tenant = SimTenant.seed(2000, 1)
    statuses = Counter(u["status"] for u in tenant.users.values())
    assert len(tenant.users) == 200
    assert set(statuses) <= set(USER_STATUSES)
    assert statuses["active"] > 100 and statuses["disabled"] and statuses["deleted"]
    assert tenant.users[tenant.admin_id]["status"] == "active"


def test_task_mix() -> None:
    """Types, statuses (about 4% DELETING) and enabled flags are mixed."""
    tasks = list(SimTenant.seed(2000, 9).tasks.values())
    types = Counter(t["type"] for t in tasks)
    statuses = Counter(t["statusCode"] for t in tasks)
    assert set(types) == {"chart-monitoring", "chart-sharing", "sheet-sharing", "template-sharing"}
    assert set(statuses) <= set(STATUS_CODES)
    assert statuses["DELETING"] == 80 and statuses["FAILED"] > 0
    assert statuses["VALID"] > 1500
    assert 0 < sum(not t["enabled"] for t in tasks) < 600
    assert 0 < sum("lastViewed" not in t for t in tasks) < 1000


@pytest.mark.parametrize("seed", [1, 2026])
def test_orphans_match_their_owners(seed: int) -> None:
    """ORPHAN tasks have deleted or absent owners, OWNER_DISABLED ones disabled owners."""
    tenant = SimTenant.seed(1000, seed)
    kinds: Counter[str] = Counter()
    for task in tenant.tasks.values():
        owner = tenant.users.get(task["owner"])
        if "ORPHAN" in errors_of(task):
            kinds["absent" if owner is None else owner["status"]] += 1
            assert owner is None or owner["status"] == "deleted"
        elif "OWNER_DISABLED" in errors_of(task):
            assert owner is not None and owner["status"] == "disabled"
            kinds["disabled"] += 1
        else:
            assert owner is not None and owner["status"] == "active"
    assert kinds["absent"] > 0 and kinds["deleted"] > 0 and kinds["disabled"] > 0


def test_enabled_orphans_exist() -> None:
    """Some orphaned tasks are still enabled: the case the disable-orphaned job is for."""
    tasks = SimTenant.seed(1000, 2026).tasks.values()
    assert any(t["enabled"] and errors_of(t) & OWNER_ERRORS for t in tasks)


def test_owner_names_match_users() -> None:
    """ownerName is the owner's name wherever the owner is a listed user."""
    tenant = SimTenant.seed(500, 4)
    for task in tenant.tasks.values():
        owner = tenant.users.get(task["owner"])
        if owner is not None:
            assert task["ownerName"] == owner["name"]


def test_other_errors_present() -> None:
    """Besides owner errors, a few other documented task errors appear."""
    tasks = SimTenant.seed(1000, 6).tasks.values()
    others = {v for t in tasks for v in errors_of(t)} - OWNER_ERRORS
    assert len(others) >= 3


def test_tasks_share_no_mutable_lists_that_patches_touch() -> None:
    """Tags and task errors are per task, so a change to one task never shows in another."""
    tasks = list(SimTenant.seed(200, 1).tasks.values())
    assert len({id(t["tags"]) for t in tasks}) == len(tasks)
    assert len({id(t["taskErrors"]) for t in tasks}) == len(tasks)


def test_seed_rejects_negative_sizes() -> None:
    """A negative task count is refused."""
    with pytest.raises(ValueError):
        SimTenant.seed(-1, 1)
