"""What an approver signs: a plan's hash, tenant (SIMULATED or not), who planned it, the job's
description and criteria, the max_changes verdict, the expiry, and the new owners by name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bulkshare.client.tenant import BUILTIN_SIM_URL
from bulkshare.plan import Plan
from bulkshare.report.model import Row, TextTable, scope_text

__all__ = [
    "SIMULATED",
    "approval_facts",
    "criteria_table",
    "expiry_text",
    "is_simulated",
    "max_changes_verdict",
    "new_owner_table",
    "plan_facts",
    "plan_hash",
    "tenant_url_text",
]

#: the marker every report of a plan against the simulator carries
SIMULATED = "SIMULATED"


def plan_hash(plan: Plan) -> str:
    """The plan's content hash: as read from its file, else as writing it would record it."""
    return plan.content_hash or plan.hash_of_content()


def is_simulated(plan: Plan | None) -> bool:
    """Whether the plan was made against the built-in simulator (its URL says so).

    A `bulkshare sim` on a URL looks like any tenant from the plan: nothing in the config or
    the plan tells it apart, so it is not marked."""
    return plan is not None and plan.tenant_url == BUILTIN_SIM_URL


def tenant_url_text(plan: Plan) -> str:
    """The tenant's URL; the built-in simulator says so in capitals (nothing real changes)."""
    if is_simulated(plan):
        return f"{BUILTIN_SIM_URL} ({SIMULATED}: the built-in simulator, not a real tenant)"
    return plan.tenant_url or "-"


def plan_facts(plan: Plan) -> tuple[tuple[str, str], ...]:
    """Where a plan was made and by whom: the tenant's URL, the caller, what it covers."""
    caller = plan.caller
    return (
        ("tenant URL", tenant_url_text(plan)),
        ("planned by", "-" if caller is None else caller.describe()),
        ("caller roles", "-" if caller is None else caller.roles_text()),
        ("scope", scope_text(plan.scope)),
    )


def max_changes_verdict(plan: Plan) -> str:
    """Whether apply's max_changes guard lets the plan through, with the numbers."""
    count, limit = len(plan.changes), plan.max_changes
    if limit is None:
        return f"no limit set (the job has no max_changes): {count} changes"
    if count > limit:
        return f"OVER the limit: {count} changes, max_changes is {limit}: apply refuses this plan"
    return f"within the limit: {count} changes, max_changes is {limit}"


def expiry_text(plan: Plan, max_age_h: float | None) -> str:
    """When a saved copy of the plan stops being accepted (created + plan_max_age_h)."""
    if max_age_h is None:
        return "no expiry"
    try:
        created = datetime.fromisoformat(plan.created_at.replace("Z", "+00:00"))
    except ValueError:
        return f"unknown: planned at {plan.created_at!r}, which is not a time"
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    ends = (created + timedelta(hours=max_age_h)).astimezone(UTC)
    return (
        f"{ends.strftime('%Y-%m-%dT%H:%M:%SZ')} ({max_age_h:g} h after planning): "
        "apply refuses the saved plan after it"
    )


def _incomplete_text(plan: Plan) -> str | None:
    found = plan.accepted_incomplete
    if found is None:
        return None
    return (
        f"yes: the listing gave {found.get('listed')} tasks of totalCount "
        f"{found.get('total_count')} ({found.get('duplicates', 0)} duplicates), accepted with "
        "--accept-incomplete"
    )


def approval_facts(plan: Plan, max_age_h: float | None) -> tuple[tuple[str, str], ...]:
    """The facts an approver checks first, in the order they read them."""
    facts = [
        ("plan hash", plan_hash(plan)),
        *plan_facts(plan),
        ("description", plan.description or "-"),
        ("max_changes", max_changes_verdict(plan)),
        ("expires", expiry_text(plan, max_age_h)),
    ]
    incomplete = _incomplete_text(plan)
    if incomplete is not None:
        facts.append(("accepted incomplete", incomplete))
    return tuple(facts)


def criteria_table(plan: Plan) -> TextTable | None:
    """Each operation and the tasks its `where` selects, in words (None: not recorded)."""
    if not plan.criteria:
        return None
    return TextTable(
        "Criteria", ("operation, and the tasks it selects",), tuple((c,) for c in plan.criteria)
    )


def new_owner_table(rows: Sequence[Row], title: str = "Changes per new owner") -> TextTable | None:
    """New owner (by name) -> how many changes hand tasks to them; None when none does."""
    counts = Counter((r.new_owner, r.new_owner_id) for r in rows if r.new_owner_id)
    if not counts:
        return None
    cells = tuple((name, owner_id, str(n)) for (name, owner_id), n in counts.most_common())
    return TextTable(title, ("new owner", "user id", "changes"), cells, numeric=1, chart=True)
