"""A plan read back from a file before it is run: its signature, its age, and every request
rebuilt from its change and checked, so nothing is ever sent as the file wrote it.
"""

from __future__ import annotations

import gc
import hmac
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bulkshare.errors import ConfigError, PlanFileError
from bulkshare.plan.change import DuplicateChange, Plan, quoted, sign
from bulkshare.plan.requests import RequestProblem, rebuild

__all__ = ["FUTURE_SKEW", "check_age", "check_requests", "check_signature", "plan_key"]

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
    collecting = gc.isenabled()
    gc.disable()
    try:
        for index, change in enumerate(plan.changes):
            try:
                checked.add([rebuild(change)])
            except (RequestProblem, DuplicateChange) as exc:
                where = f"change {index + 1} (task {quoted(change.task_id)})"
                raise PlanFileError(f"{path}: {where}: {exc}; plan again") from None
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    return checked
