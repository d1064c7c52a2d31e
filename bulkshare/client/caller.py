"""Who bulkshare acts as on a tenant: `GET /api/v1/users/me`, the first request to every tenant.

The list shows every task only to a TenantAdmin or AnalyticsAdmin, so the caller's roles decide
whether a plan can see the whole tenant; the plan records the caller, and apply compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bulkshare.client.failures import shown
from bulkshare.vocab import UnsafeId, check_id

__all__ = ["ADMIN_ROLES", "Caller", "MalformedCaller", "caller_of"]

#: the roles that see every task of the tenant (the sharing-tasks list's own description)
ADMIN_ROLES = ("TenantAdmin", "AnalyticsAdmin")
#: the longest user name kept; a longer one is cut (it is only ever shown)
_NAME_MAX = 256


class MalformedCaller(ValueError):
    """A `/users/me` answer (or a plan's `caller`) that does not name a user with roles."""


@dataclass(frozen=True)
class Caller:
    """The user an identity acts as: its id, its name, and its roles."""

    id: str
    name: str
    roles: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        """True when the list shows this caller every task (TenantAdmin or AnalyticsAdmin)."""
        return any(role in ADMIN_ROLES for role in self.roles)

    def describe(self) -> str:
        """The caller for a message or a report: name and id, quoted as tenant text."""
        return f"{shown(self.name, 60)} (id {shown(self.id, 60)})"

    def roles_text(self) -> str:
        """The roles, comma-separated, or "none"."""
        return ", ".join(shown(role, 40) for role in self.roles) or "none"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "roles": list(self.roles)}

    @classmethod
    def from_json(cls, doc: Any) -> Caller:
        """A caller as a plan file holds it; MalformedCaller if it is not one."""
        if not isinstance(doc, dict) or set(doc) != {"id", "name", "roles"}:
            raise MalformedCaller("caller must be an object with id, name and roles")
        return cls(_user_id(doc["id"]), _name(doc["name"]), _roles(doc["roles"], "roles"))


def caller_of(doc: Any) -> Caller:
    """The caller a `/users/me` answer names; MalformedCaller saying what is wrong.

    Roles are the union of `roles` (system roles, deprecated) and `assignedRoles[].name` (the
    users spec's successor, custom roles too); either may be missing, both mean no admin role.
    """
    if not isinstance(doc, dict):
        raise MalformedCaller("the answer is not a JSON object")
    roles = _roles(doc.get("roles", []), "roles")
    assigned = doc.get("assignedRoles", [])
    if not isinstance(assigned, list) or not all(isinstance(r, dict) for r in assigned):
        raise MalformedCaller("assignedRoles is not a list of objects")
    names = _roles([r.get("name") for r in assigned], "assignedRoles[].name")
    return Caller(_user_id(doc.get("id")), _name(doc.get("name", "")), _union(roles, names))


def _user_id(value: Any) -> str:
    try:
        return check_id(value, "the user id")
    except UnsafeId as exc:
        raise MalformedCaller(str(exc)) from None


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedCaller(f"the user name is not a string ({type(value).__name__})")
    return value[:_NAME_MAX]


def _roles(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise MalformedCaller(f"{what} is not a list of strings")
    return tuple(value)


def _union(*lists: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(role for roles in lists for role in roles))
