"""How a simulator instance behaves: limits, credentials and callers, faults, latency, links,
persistence, and the rules for what no public source establishes (see `rules.TaskRules`).

Every field has the real service's default (or the simulator's long-standing choice where the
service's is unknown), so `SimConfig()` is a faithful tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulkshare.sim.limits import TierLimits
from bulkshare.sim.rules import MAX_START_AGE_DAYS, Answer, LinkStyle, TaskRules
from bulkshare.sim.vocab import Role

__all__ = ["DEFAULT_ROLES", "DEMO_SEED", "DEMO_TASKS", "SimCaller", "SimConfig"]

#: size and seed of the demo tenant the CLI uses when none is configured
DEMO_TASKS = 1000
DEMO_SEED = 2026

#: the roles of the caller unless told otherwise
DEFAULT_ROLES: tuple[str, ...] = (Role.TENANT_ADMIN.value,)


@dataclass(frozen=True, slots=True)
class SimCaller:
    """One credential of SimConfig.callers: the user it acts as, and that user's roles."""

    #: a bearer token (an API key) or an OAuth client id
    credential: str
    user_id: str
    roles: tuple[str, ...] = DEFAULT_ROLES


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Settings of one simulated tenant."""

    tier1_per_minute: int = 1000
    tier2_per_minute: int = 100
    users_filter_per_minute: int = 200
    #: the window the limits are counted over; capacity = per_minute * window_s / 60
    window_s: float = 300.0
    #: users of the tenant: when set, a tenant-wide limit per tier of
    #: floor(per-user limit x tenant_users x 0.5) counts every identity's requests together
    tenant_users: int | None = None
    #: when set, each identity is also held to its per-minute rate over this shorter window:
    #: a service that paces within the window instead of letting it be spent in one burst
    pace_window_s: float | None = None
    #: when set, the only accepted bearer besides tokens issued by /oauth/token
    api_key: str | None = None
    #: when both are set, the only client /oauth/token accepts
    client_id: str | None = None
    client_secret: str | None = None
    token_ttl_s: int = 21600
    #: the user every identity acts as unless `callers` names it (None: the tenant's admin)
    caller_id: str | None = None
    #: that user's roles; without TenantAdmin or AnalyticsAdmin it sees only its own tasks
    caller_roles: tuple[str, ...] = DEFAULT_ROLES
    #: credentials (bearer tokens, OAuth client ids) that act as other users
    callers: tuple[SimCaller, ...] = ()
    #: probability that a write gets a fault (503 before, 500 after, or a dropped connection after)
    fault_rate: float = 0.0
    #: seed of the fault draws
    seed: int = 0
    #: added to every API request
    latency_ms: int = 0
    #: DELETE first marks a task DELETING; it goes after deleting_linger_s or on the next DELETE
    deleting_phase: bool = False
    deleting_linger_s: float = 2.0
    #: how list answers write links.*.href
    next_links: LinkStyle = LinkStyle.ABSOLUTE
    #: the last page of a list answers "next": {"href": ""} rather than no next link
    empty_last_next: bool = False
    #: a PATCH that changes the owner disables the task unless it also sets /enabled true
    owner_change_disables: bool = True
    #: a new active owner clears ORPHAN / OWNER_DISABLED at once
    owner_change_clears_errors: bool = True
    #: PATCH /ownerId to a user the tenant does not have
    unknown_owner: Answer = Answer.BAD_REQUEST
    #: PATCH of a task in DELETING
    deleting_patch: Answer = Answer.NOT_FOUND
    #: execute of a task in DELETING
    deleting_execute: Answer = Answer.NOT_FOUND
    #: created or patched templates may name only apps the tenant has (else 400)
    known_apps_only: bool = True
    #: a scheduleOptions.startDateTime further back than this many days is refused; None: any
    max_start_age_days: int | None = MAX_START_AGE_DAYS
    #: when set, the tenant document is kept there (written at most every ~100 ms)
    persist_path: Path | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate}")
        rates = (self.tier1_per_minute, self.tier2_per_minute, self.users_filter_per_minute)
        if min(rates) < 1 or self.window_s <= 0:
            raise ValueError("rate limits and window_s must be positive")
        if self.tenant_users is not None and self.tenant_users < 1:
            raise ValueError("tenant_users must be at least 1")
        if self.pace_window_s is not None and not 0 < self.pace_window_s <= self.window_s:
            raise ValueError("pace_window_s must be positive and at most window_s")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id and client_secret go together")
        if self.latency_ms < 0 or self.token_ttl_s < 1:
            raise ValueError("latency_ms must be >= 0 and token_ttl_s >= 1")
        self.rules()  # checks the rules' own fields

    def limits(self) -> TierLimits:
        """The tier limits this config sets."""
        return TierLimits(
            tier1_per_minute=self.tier1_per_minute,
            tier2_per_minute=self.tier2_per_minute,
            users_filter_per_minute=self.users_filter_per_minute,
            window_s=self.window_s,
            tenant_users=self.tenant_users,
            pace_window_s=self.pace_window_s,
        )

    def rules(self) -> TaskRules:
        """The tenant's rules for task writes this config sets."""
        return TaskRules(
            owner_change_disables=self.owner_change_disables,
            owner_change_clears_errors=self.owner_change_clears_errors,
            unknown_owner=self.unknown_owner,
            deleting_patch=self.deleting_patch,
            deleting_execute=self.deleting_execute,
            known_apps_only=self.known_apps_only,
            max_start_age_days=self.max_start_age_days,
        )
