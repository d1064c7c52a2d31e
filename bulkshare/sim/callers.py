"""Who a request acts as: every identity (bearer token, API key, OAuth client) is a user of the
tenant with roles; without an admin role it sees only the tasks it owns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bulkshare.sim.auth import credential_principals
from bulkshare.sim.config import DEFAULT_ROLES, SimCaller
from bulkshare.sim.errors import SimError
from bulkshare.sim.vocab import SYSTEM_ROLES, Role, UserStatus, values

__all__ = [
    "ADMIN_ROLES",
    "Caller",
    "Callers",
    "check_callers",
    "parse_roles",
    "render_me",
]

Json = dict[str, Any]

#: the roles that see every task of the tenant (the list's description in sharing-tasks.md)
ADMIN_ROLES = frozenset(values([Role.TENANT_ADMIN, Role.ANALYTICS_ADMIN]))
#: roles at the admin level in `assignedRoles` (the rest are user-level)
_ADMIN_LEVEL = frozenset({*ADMIN_ROLES, Role.DATA_ADMIN.value})


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts as."""

    user_id: str
    roles: tuple[str, ...] = DEFAULT_ROLES

    @property
    def sees_all(self) -> bool:
        """Whether the caller sees every task (TenantAdmin or AnalyticsAdmin), not only its own."""
        return any(role in ADMIN_ROLES for role in self.roles)

    def may_see(self, task: Json) -> bool:
        """Whether the caller can see (and so read or write) `task`."""
        return self.sees_all or task.get("owner") == self.user_id

    def check_sees(self, task: Json | None, task_id: str) -> None:
        """404 SimError, the answer for an unknown task, if the caller cannot see `task`."""
        if task is not None and not self.may_see(task):
            raise SimError(404, f"sharing task {task_id!r} not found")


def parse_roles(text: str) -> tuple[str, ...]:
    """A comma-separated role list ("" for none); blanks around names are dropped."""
    return tuple(role.strip() for role in text.split(",") if role.strip())


class Callers:
    """Maps the identities the authenticator returns to callers."""

    __slots__ = ("_by_principal", "default")

    def __init__(self, default: Caller, configured: Iterable[SimCaller] = ()) -> None:
        #: the caller of every identity no SimCaller names
        self.default = default
        self._by_principal: dict[str, Caller] = {}
        for entry in configured:
            caller = Caller(entry.user_id, entry.roles)
            for principal in credential_principals(entry.credential):
                self._by_principal[principal] = caller

    def __repr__(self) -> str:
        return f"<Callers default={self.default.user_id} configured={len(self._by_principal) // 3}>"

    def of(self, principal: str) -> Caller:
        """The caller an identity acts as."""
        return self._by_principal.get(principal, self.default)


def check_callers(users: Mapping[str, Json], admin_id: str, ids: Iterable[str]) -> None:
    """ValueError naming the first caller user id the tenant does not have."""
    for user_id in ids:
        if user_id not in users and user_id != admin_id:
            raise ValueError(f"caller {user_id!r} is not a user of the tenant")


def render_me(caller: Caller, users: Mapping[str, Json], tenant_id: str, base: str) -> Json:
    """GET /api/v1/users/me: the caller's user with its roles, in the users API's shape."""
    user = users.get(caller.user_id) or _stand_in(caller.user_id, tenant_id)
    return {
        **user,
        # `roles` may only hold system roles; `assignedRoles` names custom ones too
        "roles": [role for role in caller.roles if role in SYSTEM_ROLES],
        "assignedRoles": [_assigned(role) for role in caller.roles],
        "links": {"self": {"href": f"{base}/api/v1/users/{caller.user_id}"}},
    }


def _assigned(role: str) -> Json:
    return {
        "id": hashlib.blake2b(role.encode(), digest_size=12).hexdigest(),
        "name": role,
        "type": "default" if role in SYSTEM_ROLES else "custom",
        "level": "admin" if role in _ADMIN_LEVEL else "user",
    }


def _stand_in(user_id: str, tenant_id: str) -> Json:
    # a tenant document without users still has a caller: the simulator's own admin
    return {
        "id": user_id,
        "tenantId": tenant_id,
        "status": UserStatus.ACTIVE.value,
        "subject": f"sim|{user_id}",
        "name": "Sim Admin",
    }
