"""A deterministic, realistic tenant: users with mixed statuses, and sharing tasks owned by them.

Tasks are assembled from a few prebuilt nested shapes that are shared, never mutated in place.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bulkshare.sim.apps import App, build_apps
from bulkshare.sim.ids import iso, object_id, user_id
from bulkshare.sim.vocab import (
    TASK_TYPES,
    StatusCode,
    TaskError,
    TaskType,
    TransportChannel,
    UserStatus,
    values,
)

__all__ = ["ANCHOR_EPOCH", "SeedResult", "build_seed", "quota_labels"]

Json = dict[str, Any]

#: the seeded tenant's "now": 2025-01-15T12:00:00Z, so one seed always gives one tenant
ANCHOR_EPOCH = 1_736_942_400
_DAY = 86_400

# plain strings bound once: documents hold values, and the task loop runs per seeded task
_ACTIVE, _DISABLED, _DELETED = values([UserStatus.ACTIVE, UserStatus.DISABLED, UserStatus.DELETED])
_ABSENT = "absent"  # an owner id no user has: not a status, a kind of owner
_VALID, _DELETING, _FAILED = values([StatusCode.VALID, StatusCode.DELETING, StatusCode.FAILED])
_OTHER = "OTHER"  # one of _OTHER_STATUSES
_ORPHAN, _OWNER_DISABLED, _OWNERSHIP_CHANGE = values(
    [TaskError.ORPHAN, TaskError.OWNER_DISABLED, TaskError.DISABLED_DUE_TO_OWNERSHIP_CHANGE]
)
_CHART_MONITORING = TaskType.CHART_MONITORING.value
_EMAIL = TransportChannel.EMAIL.value
#: weights of TASK_TYPES, in its order
_TYPE_WEIGHTS = (0.2, 0.25, 0.35, 0.2)
_OTHER_STATUSES = values(
    [
        StatusCode.APP_NOT_FOUND,
        StatusCode.CHART_NOT_FOUND,
        StatusCode.SHEET_NOT_FOUND,
        StatusCode.MAX_FAILURES_REACHED,
        StatusCode.IN_PROGRESS,
        StatusCode.BOOKMARK_NOT_FOUND,
        StatusCode.REPORTING_DAILY_QUOTA_EXCEEDED,
        StatusCode.CANCELLED,
    ]
)
_OTHER_ERRORS = values(
    [
        TaskError.APP_DELETED,
        TaskError.NO_RECIPIENTS,
        TaskError.PARTIAL_SENT,
        TaskError.EXECUTION_TIME_OUT,
        TaskError.OWNER_LICENSE,
        TaskError.TEMPLATE_NOT_FOUND,
        TaskError.DISABLED_DUE_TO_OWNERSHIP_CHANGE,
    ]
)
_TAG_POOL = ("finance", "sales", "weekly", "monthly", "exec", "ops", "hr", "marketing", "legacy")
_FIRST = (
    "Ava", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kara", "Liam", "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
)  # fmt: skip
_LAST = (
    "Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva",
)  # fmt: skip
_CADENCE = ("Daily", "Weekly", "Monthly", "Quarterly")
_SUBJECT = ("revenue", "pipeline", "inventory", "headcount", "churn", "margin", "orders")
_KIND = ("report", "digest", "alert", "snapshot", "review")
_RRULES = (
    ["RRULE:FREQ=DAILY;INTERVAL=1;BYHOUR=7;BYMINUTE=0"],
    ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;BYHOUR=8;BYMINUTE=30"],
    ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=1;BYHOUR=6;BYMINUTE=0"],
    ["RRULE:FREQ=HOURLY;INTERVAL=4"],
)
_TIMEZONES = ("Europe/Stockholm", "America/New_York", "Asia/Tokyo", "UTC")


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What `build_seed` makes: the tenant id, its users, tasks and apps, and the ids of absent
    users."""

    tenant_id: str
    users: list[Json]
    tasks: list[Json]
    absent_user_ids: list[str]
    apps: list[Json]


def quota_labels(
    rng: random.Random, n: int, shares: Sequence[tuple[str, float]], rest: str
) -> list[str]:
    """`n` labels with exact shares (at least one of each once n >= 10), shuffled."""
    labels: list[str] = []
    for label, share in shares:
        count = round(n * share)
        if n >= 10:
            count = max(1, count)
        labels.extend([label] * count)
    labels = labels[:n]
    labels.extend([rest] * (n - len(labels)))
    rng.shuffle(labels)
    return labels


def build_seed(n_tasks: int, seed: int) -> SeedResult:
    """Build users and `n_tasks` tasks, deterministically from `seed`."""
    if n_tasks < 0:
        raise ValueError("n_tasks must be >= 0")
    rng = random.Random(seed)
    tenant_id = user_id(rng)
    users, absent = _build_users(rng, max(8, n_tasks // 10), tenant_id)
    apps = build_apps(rng, min(200, max(6, n_tasks // 40)))
    tasks = _TaskFactory(rng, tenant_id, users, absent, apps).build(n_tasks)
    return SeedResult(
        tenant_id, users, tasks, [u["id"] for u in absent], [app.record() for app in apps]
    )


def _build_users(rng: random.Random, n: int, tenant_id: str) -> tuple[list[Json], list[Json]]:
    shares = [
        (_DISABLED, 0.08),
        (_DELETED, 0.08),
        (UserStatus.INVITED.value, 0.03),
        (UserStatus.PROVISIONED.value, 0.02),
    ]
    statuses = [_ACTIVE, *quota_labels(rng, n - 1, shares, _ACTIVE)]
    users = [_user(rng, i, status, tenant_id) for i, status in enumerate(statuses)]
    users[0]["name"], users[0]["email"] = "Sim Admin", "admin@sim.example"
    absent = [_user(rng, n + i, _DELETED, tenant_id) for i in range(max(1, n // 25))]
    return users, absent


def _user(rng: random.Random, index: int, status: str, tenant_id: str) -> Json:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    created = ANCHOR_EPOCH - rng.randint(30, 1500) * _DAY
    updated = created + rng.randint(0, ANCHOR_EPOCH - created)
    return {
        "id": user_id(rng),
        "tenantId": tenant_id,
        "status": status,
        "subject": f"auth0|{rng.getrandbits(64):016x}",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{index}@sim.example",
        # the deprecated fields are `format: date` in the users spec; the new ones date-times
        "created": iso(created)[:10],
        "lastUpdated": iso(updated)[:10],
        "createdAt": iso(created),
        "lastUpdatedAt": iso(updated),
        "locale": "en",
        "zoneinfo": rng.choice(_TIMEZONES),
    }


class _TaskFactory:
    """Builds tasks from prebuilt shapes; only scalar fields and small lists are per task."""

    def __init__(
        self,
        rng: random.Random,
        tenant_id: str,
        users: list[Json],
        absent: list[Json],
        apps: list[App],
    ) -> None:
        self.rng = rng
        self.tenant_id = tenant_id
        self.apps = apps
        self.by_status = self._owners_by_status(users, absent)
        self.recipients = [self._recipients() for _ in range(48)]
        self.schedules = [self._schedule(i) for i in range(len(_RRULES) * len(_TIMEZONES))]
        self.triggers = [{"recurrence": r, "executeOnAppReload": False} for r in _RRULES]
        self.retention = {"historySize": 10, "overrideInterval": "FREQ=DAILY;INTERVAL=1"}
        self.email = {
            "subject": "Your scheduled report",
            "body": "Please find the report attached.",
        }

    @staticmethod
    def _owners_by_status(users: list[Json], absent: list[Json]) -> dict[str, list[Json]]:
        groups: dict[str, list[Json]] = {
            _ACTIVE: [],
            _DISABLED: [],
            _DELETED: [],
            _ABSENT: absent,
        }
        for user in users:
            groups.setdefault(user["status"], []).append(user)
        return groups

    def _recipients(self) -> Json:
        active = self.by_status[_ACTIVE]
        picked = self.rng.sample(active, k=min(len(active), self.rng.randint(1, 3)))
        user_ids = [
            {
                "value": u["id"],
                "groups": ["addedIndividually"],
                "subscribed": True,
                "enabledByUser": True,
                "enabledBySystem": True,
                "taskRecipientErrors": [],
            }
            for u in picked
        ]
        emails = [
            {"value": f"ext{self.rng.randint(1, 999)}@partner.example", "enabled": True}
            for _ in range(self.rng.randint(0, 2))
        ]
        return {
            "userIds": user_ids,
            "groupIds": [],
            "emailAddresses": emails,
            "DLUsers": [],
            "DLGroups": [],
        }

    def _schedule(self, i: int) -> Json:
        rrule = _RRULES[i % len(_RRULES)]
        zone = _TIMEZONES[i // len(_RRULES)]
        return {
            "timezone": zone,
            "recurrence": rrule,
            "startDateTime": "2024-01-01T07:00:00",
            "endDateTime": "",
        }

    def build(self, n: int) -> list[Json]:
        rng = self.rng
        owners = quota_labels(
            rng, n, [(_DELETED, 0.05), (_ABSENT, 0.03), (_DISABLED, 0.05)], _ACTIVE
        )
        statuses = quota_labels(
            rng, n, [(_DELETING, 0.04), (_FAILED, 0.06), (_OTHER, 0.04)], _VALID
        )
        extras = quota_labels(rng, n, [("ERROR", 0.06)], "")
        types = rng.choices(TASK_TYPES, weights=_TYPE_WEIGHTS, k=n)
        return [self._task(i, types[i], owners[i], statuses[i], extras[i]) for i in range(n)]

    def _task(self, i: int, kind: str, owner_kind: str, status: str, extra: str) -> Json:
        rng = self.rng
        app = rng.choice(self.apps)
        owner = self._owner(owner_kind)
        created = ANCHOR_EPOCH - rng.randint(1, 3 * 365) * _DAY - rng.randint(0, _DAY)
        updated = created + rng.randint(0, ANCHOR_EPOCH - created)
        state, templates = app.shapes[kind]
        task: Json = {
            "id": object_id(rng),
            "name": f"{rng.choice(_CADENCE)} {rng.choice(_SUBJECT)} {rng.choice(_KIND)} {i + 1}",
            "description": "",
            "type": kind,
            "tags": rng.sample(_TAG_POOL, k=rng.choice((0, 0, 1, 1, 2, 3))),
            "tenant": self.tenant_id,
            "appId": app.id,
            "appName": app.name,
            "spaceId": app.space_id,
            "owner": owner["id"],
            "ownerName": owner["name"],
            "createdBy": owner["id"],
            "updatedBy": owner["id"],
            "dateCreated": iso(created),
            "lastUpdated": iso(updated),
            "state": state,
            "templates": templates,
            "recipients": rng.choice(self.recipients),
            "scheduleOptions": rng.choice(self.schedules),
            "trigger": rng.choice(self.triggers),
            "emailContent": self.email,
            "transportChannels": [_EMAIL],
            "hasSectionAccess": app.section_access,
            "executeOnCreation": False,
            "failedVerificationsCount": 0,
            "isCandidateForVerification": False,
        }
        if kind == _CHART_MONITORING:
            task["retentionPolicy"] = self.retention
        self._add_runs(task, created)
        self._add_status(task, status, owner_kind, extra, updated)
        return task

    def _owner(self, kind: str) -> Json:
        pool = self.by_status.get(kind) or self.by_status[_ACTIVE]
        # a few heavy owners: squaring the draw skews the choice toward the pool's head
        return pool[int(len(pool) * self.rng.random() ** 2)]

    def _add_runs(self, task: Json, created: int) -> None:
        rng = self.rng
        if rng.random() < 0.7:
            task["lastViewed"] = iso(rng.randint(created, ANCHOR_EPOCH))
        if rng.random() < 0.85:
            start = rng.randint(created, ANCHOR_EPOCH)
            task["lastRun"] = iso(start)
            task["lastExecutionDate"] = iso(start + rng.randint(5, 300))
        task["nextScheduledRun"] = iso(ANCHOR_EPOCH + rng.randint(60, 7 * _DAY))

    def _add_status(self, task: Json, status: str, owner_kind: str, extra: str, at: int) -> None:
        rng = self.rng
        code = rng.choice(_OTHER_STATUSES) if status == _OTHER else status
        task["statusCode"] = code
        if code != _VALID:
            task["statusLabel"] = code.replace("_", " ").lower()
        errors = []
        if owner_kind in (_DELETED, _ABSENT):
            errors.append(_ORPHAN)
        elif owner_kind == _DISABLED:
            errors.append(_OWNER_DISABLED)
        if extra:
            errors.append(rng.choice(_OTHER_ERRORS))
        task["taskErrors"] = [{"value": e, "timestamp": iso(at)} for e in errors]
        by_user = _OWNERSHIP_CHANGE not in errors and rng.random() < 0.88
        task["enabledByUser"] = by_user
        task["enabledBySystem"] = owner_kind == _ACTIVE
        task["enabled"] = by_user
        task["failedExecutionsCount"] = rng.randint(1, 5) if code == _FAILED else 0
