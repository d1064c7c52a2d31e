"""A plan read back from a file before it is run: its signature, its age, its tenant and caller,
and every request rebuilt from its change and checked, so nothing is sent as the file wrote it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from yarl import URL

from bulkshare.client.caller import Caller
from bulkshare.errors import ConfigError, PlanFileError
from bulkshare.heap import collector_paused
from bulkshare.plan.change import (
    NEW_OWNER,
    NEW_OWNER_NAME,
    Change,
    DuplicateChange,
    Plan,
    quoted,
    sign,
)
from bulkshare.plan.requests import RequestProblem, rebuild

__all__ = [
    "FUTURE_SKEW",
    "check_age",
    "check_applier",
    "check_requests",
    "check_signature",
    "check_tenant_url",
    "plan_key",
    "same_tenant_url",
]

#: how far in the future a plan's creation time may lie (clocks of two hosts disagree a little)
FUTURE_SKEW = timedelta(minutes=5)


def plan_key(env_name: str | None, env: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key named by `[defaults] plan_key_env`; None when no key is configured."""
    if env_name is None:
        return None
    value = (os.environ if env is None else env).get(env_name)
    if not value:
        raise ConfigError(
            f"defaults.plan_key_env: environment variable {env_name} is not set or empty"
        )
    return value.encode()


def check_signature(plan: Plan, path: Path, key: bytes | None) -> None:
    """With a key, only a plan signed with it passes; a signed plan needs a key to be checked."""
    if plan.signature is None:
        if key is not None:
            raise PlanFileError(
                f"{path}: the plan is not signed, and [defaults] plan_key_env asks for signed "
                "plans: plan again with the key set"
            )
        return
    if key is None:
        raise PlanFileError(
            f"{path}: the plan is signed, but no key is configured to check it: "
            "set [defaults] plan_key_env and its environment variable"
        )
    # as bytes: compare_digest refuses str with non-ASCII characters, and a file may hold any
    given = plan.signature.encode("utf-8", "replace")
    if plan.content_hash is None or not hmac.compare_digest(
        sign(plan.content_hash, key).encode(), given
    ):
        raise PlanFileError(
            f"{path}: the plan's signature does not match: it was changed after signing, "
            "or signed with another key; plan again"
        )


def check_age(plan: Plan, path: Path, max_age: timedelta, now: datetime | None = None) -> None:
    """Refuse a plan older than `max_age`, dated in the future, or with no readable date."""
    try:
        created = datetime.fromisoformat(plan.created_at.replace("Z", "+00:00"))
    except ValueError:
        raise PlanFileError(f"{path}: created_at {quoted(plan.created_at)} is not a time") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # bulkshare writes UTC
    age = (now or datetime.now(UTC)) - created
    if age > max_age:
        raise PlanFileError(
            f"{path}: plan is {age.total_seconds() / 3600:.1f} h old "
            f"(more than {max_age.total_seconds() / 3600:g} h): plan again"
        )
    if -age > FUTURE_SKEW:
        raise PlanFileError(
            f"{path}: plan is dated {quoted(plan.created_at)}, in the future: plan again"
        )


def check_requests(plan: Plan, path: Path) -> Plan:
    """The plan with every request rebuilt from its change; PlanFileError naming the first
    change whose stored request differs, is no operation of the API, or repeats a request."""
    checked = replace(plan, changes=[])
    # as in Plan.read: many small objects, no cycles; the collector would only slow this down
    with collector_paused():
        for index, change in enumerate(plan.changes):
            try:
                _check_new_owner(change)
                checked.add([rebuild(change)])
            except (RequestProblem, DuplicateChange) as exc:
                where = f"change {index + 1} (task {quoted(change.task_id)})"
                raise PlanFileError(f"{path}: {where}: {exc}; plan again") from None
    return checked


def _check_new_owner(change: Change) -> None:
    """The new owner a change names for people must be the one its after-state writes."""
    task = change.task
    if NEW_OWNER not in task and NEW_OWNER_NAME not in task:
        return
    if task.get(NEW_OWNER) != change.after.get("owner"):
        raise RequestProblem(f"its {NEW_OWNER} is not the owner its after-state writes")
    if not isinstance(task.get(NEW_OWNER_NAME), str):
        raise RequestProblem(f"its {NEW_OWNER_NAME} is not a string")


def same_tenant_url(a: str, b: str) -> bool:
    """True when two tenant URLs name one origin (scheme and host in any case, default port)."""
    if a == b:
        return True
    try:
        x, y = URL(a), URL(b)
    except (TypeError, ValueError):
        return False
    if not x.host or not y.host:
        return False  # builtin:sim equals only itself
    return (x.scheme.lower(), x.host.lower(), x.port) == (y.scheme.lower(), y.host.lower(), y.port)


def check_tenant_url(
    plan: Plan, source: object, tenant: str, url: str, *, unbound_ok: bool = False
) -> None:
    """PlanFileError unless `plan` was made for the tenant at `url`: checked before the tenant
    is opened, so a plan for another tenant sends nothing.

    A plan that records no URL or caller is refused, unless `unbound_ok`: a run's own plan
    (resume, undo) written by an older bulkshare, or by code, is not stranded for it.
    """
    if plan.tenant_url is None or plan.caller is None:
        if unbound_ok:
            return
        raise PlanFileError(
            f"{source}: the plan records no tenant URL or caller (made by an older bulkshare, "
            "or by hand): plan again"
        )
    if not same_tenant_url(plan.tenant_url, url):
        raise PlanFileError(
            f"{source}: the plan was made for tenant {plan.tenant} at {quoted(plan.tenant_url)}, "
            f"but tenant {tenant} of this config is at {quoted(url)}: refusing it; plan again "
            "against this tenant"
        )


def check_applier(plan: Plan, source: object, caller: Caller) -> str | None:
    """PlanFileError if `caller` may not apply `plan`; a note if it is not the planner.

    Another identity of the same tenant may apply a plan of every task if it also sees every
    task (an approver's plan, run by a cron M2M client); a plan of a caller's own tasks is
    that caller's alone, for nobody else sees the same tasks.
    """
    planner = plan.caller
    if planner is None:
        return None  # an unbound run's own plan (check_tenant_url, unbound_ok)
    if plan.scope == "own" and caller.id != planner.id:
        raise PlanFileError(
            f"{source}: the plan covers the own tasks of {planner.describe()}; the caller "
            f"{caller.describe()} may not apply it: plan again as this identity"
        )
    if plan.scope == "all" and not caller.is_admin:
        raise PlanFileError(
            f"{source}: the plan covers every task of the tenant, but the caller "
            f"{caller.describe()} is no TenantAdmin or AnalyticsAdmin and sees only its own "
            "tasks: apply it with an admin identity"
        )
    if caller.id == planner.id:
        return None
    return f"plan made by {planner.describe()}, applied by {caller.describe()}"
