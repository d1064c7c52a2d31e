"""The simulated tenant's state (tasks, users, apps, executions, settings) and its domain rules.

Nested task values may be shared between seeded tasks: replace them, never mutate them in place.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from bulkshare.sim.apps import apps_of_tasks
from bulkshare.sim.config import DEMO_SEED, DEMO_TASKS
from bulkshare.sim.creating import build_task
from bulkshare.sim.document import TenantParts, parse_document, read_document
from bulkshare.sim.errors import SimError
from bulkshare.sim.executions import cancel_running, find_execution, new_execution
from bulkshare.sim.files import write_atomic
from bulkshare.sim.ids import iso, object_id
from bulkshare.sim.ownership import Owners
from bulkshare.sim.patching import PatchContext, apply_patch, check_ops, parse_patch
from bulkshare.sim.rules import Answer, TaskRules, check_known_apps, check_start_age
from bulkshare.sim.seeding import build_seed
from bulkshare.sim.settings import default_settings
from bulkshare.sim.vocab import StatusCode, UserStatus

__all__ = ["DEMO_SEED", "DEMO_TASKS", "SimTenant"]

Json = dict[str, Any]

_DEFAULT_RULES = TaskRules()


class SimTenant:
    """One tenant: insertion-ordered tasks, users, apps, executions per task, and settings."""

    __slots__ = (
        "_deleting_since",
        "_ids",
        "_next_seq",
        "_seq",
        "admin_id",
        "apps",
        "executions",
        "owner_errors",
        "settings",
        "tasks",
        "tenant_id",
        "users",
        "version",
    )

    def __init__(
        self,
        *,
        tenant_id: str,
        tasks: Iterable[Json] = (),
        users: Iterable[Json] = (),
        executions: Mapping[str, list[Json]] | None = None,
        settings: Json | None = None,
        admin_id: str | None = None,
        apps: Iterable[Json] | None = None,
        owner_errors: Mapping[str, list[str]] | None = None,
    ) -> None:
        #: the tenant id stamped on tasks, users and executions
        self.tenant_id = tenant_id
        #: task id -> task, in the service's persisted shape, in creation order
        self.tasks: dict[str, Json] = {}
        #: user id -> user, in the users API shape (absent ids answer 404)
        self.users: dict[str, Json] = {u["id"]: u for u in users}
        #: task id -> its executions, oldest first
        self.executions: dict[str, list[Json]] = dict(executions or {})
        #: the sharing settings document
        self.settings: Json = settings or default_settings(tenant_id)
        #: the user a caller acts as unless the config names another (see callers.py)
        self.admin_id = admin_id or self._first_active_user()
        #: user id -> task errors a task gets when that user becomes its owner
        self.owner_errors: dict[str, list[str]] = dict(owner_errors or {})
        #: bumped by every change; listing caches and persistence key on it
        self.version = 0
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self._deleting_since: dict[str, float] = {}
        self._ids = random.Random()
        for task in tasks:
            self._insert(task)
        #: app id -> {id, name, spaceId}: the apps templates may name (by default, those the
        #: tasks name)
        self.apps: dict[str, Json] = {
            a["id"]: a for a in (apps_of_tasks(self.tasks.values()) if apps is None else apps)
        }

    def __repr__(self) -> str:
        sizes = f"tasks={len(self.tasks)} users={len(self.users)}"
        return f"<SimTenant {self.tenant_id} {sizes} version={self.version}>"

    # -- construction and documents ------------------------------------------------------

    @classmethod
    def seed(cls, n_tasks: int, seed: int) -> SimTenant:
        """A realistic tenant of `n_tasks` tasks, the same for the same `seed`."""
        made = build_seed(n_tasks, seed)
        return cls(
            tenant_id=made.tenant_id,
            tasks=made.tasks,
            users=made.users,
            admin_id=made.users[0]["id"],
            apps=made.apps,
        )

    @classmethod
    def demo(cls) -> SimTenant:
        """The default demo tenant (DEMO_TASKS tasks, seed DEMO_SEED)."""
        return cls.seed(DEMO_TASKS, DEMO_SEED)

    @classmethod
    def from_document(cls, doc: Any) -> SimTenant:
        """A tenant from `{"sharingTasks": [...], "users": [...]}`; ValueError if malformed."""
        return cls._from_parts(parse_document(doc))

    @classmethod
    def _from_parts(cls, parts: TenantParts) -> SimTenant:
        return cls(
            tenant_id=parts.tenant_id,
            tasks=parts.tasks,
            users=parts.users,
            executions=parts.executions,
            settings=parts.settings,
            admin_id=parts.admin_id,
            apps=parts.apps,
            owner_errors=parts.owner_errors,
        )

    def to_document(self) -> Json:
        """The whole tenant as one JSON-ready document (what from_document reads)."""
        return {
            "tenantId": self.tenant_id,
            "adminUserId": self.admin_id,
            "sharingTasks": list(self.tasks.values()),
            "users": list(self.users.values()),
            "apps": list(self.apps.values()),
            "executions": self.executions,
            "settings": self.settings,
            "ownerTaskErrors": self.owner_errors,
        }

    def dumps(self) -> bytes:
        """The document serialized, ready to be written."""
        return orjson.dumps(self.to_document())

    @classmethod
    def load(cls, path: Path | str) -> SimTenant:
        """Read a tenant document; ValueError naming the file if it is not one."""
        return cls._from_parts(read_document(path))

    def save(self, path: Path | str) -> None:
        """Write the document atomically: a temp file, fsync, then os.replace."""
        write_atomic(Path(path), self.dumps())

    @classmethod
    def load_or_seed(
        cls, path: Path | str, n_tasks: int = DEMO_TASKS, seed: int = DEMO_SEED
    ) -> SimTenant:
        """The tenant saved at `path`, or a freshly seeded one saved there."""
        if Path(path).exists():
            return cls.load(path)
        tenant = cls.seed(n_tasks, seed)
        tenant.save(path)
        return tenant

    # -- reads -----------------------------------------------------------------------------

    def get_task(self, task_id: str) -> Json:
        """The task, or a 404 SimError."""
        task = self.tasks.get(task_id)
        if task is None:
            raise SimError(404, f"sharing task {task_id!r} not found")
        return task

    def get_user(self, user_id: str) -> Json:
        """The user, or a 404 SimError."""
        user = self.users.get(user_id)
        if user is None:
            raise SimError(404, f"user {user_id!r} not found")
        return user

    def seq(self, task_id: str) -> int:
        """The task's creation sequence number: the stable order paging follows."""
        return self._seq[task_id]

    def app_name(self, app_id: str) -> str:
        """The name of the app `app_id`, or ""."""
        return str(self.apps.get(app_id, {}).get("name") or "")

    # -- task writes -----------------------------------------------------------------------

    def create_task(
        self, body: Any, *, owner_id: str | None = None, rules: TaskRules = _DEFAULT_RULES
    ) -> Json:
        """Create a task owned by `owner_id` (the admin by default); 400 SimError if invalid."""
        owner_id = owner_id or self.admin_id
        owner = self.users.get(owner_id, {"id": owner_id, "name": "Sim Admin"})
        task = build_task(
            body,
            task_id=self._new_id(),
            owner=owner,
            tenant_id=self.tenant_id,
            now=_now(),
            app_name=self.app_name,
        )
        check_known_apps(task["templates"], self.apps, rules)
        check_start_age(task.get("scheduleOptions"), rules)
        space = self.apps.get(task["appId"], {}).get("spaceId")
        if "spaceId" not in task and space:
            task["spaceId"] = space
        self._insert(task)
        if task["executeOnCreation"]:
            self._record_execution(task)
        self._changed()
        return task

    def patch_task(
        self,
        task_id: str,
        body: Any,
        *,
        actor: str | None = None,
        rules: TaskRules = _DEFAULT_RULES,
    ) -> None:
        """Apply a PATCH body to the task atomically (404 / 400 SimError when refused)."""
        task = self.get_task(task_id)
        if task.get("statusCode") == StatusCode.DELETING:
            _refuse_deleting(rules.deleting_patch, task_id, "patched")
        ops = parse_patch(body)
        check_ops(ops, self.apps, rules)
        owners = Owners(self.users, self.owner_errors)
        apply_patch(task, ops, PatchContext(owners, actor or self.admin_id, _now(), rules))
        self._changed()

    def view_task(self, task_id: str) -> Json:
        """Read the task as a viewer does (`isViewChart=true`): lastViewed becomes now."""
        task = self.get_task(task_id)
        task["lastViewed"] = _now()
        self._changed()
        return task

    def delete_task(self, task_id: str, *, deleting_phase: bool = False, now: float = 0.0) -> None:
        """Delete the task; with `deleting_phase` the first DELETE only marks it DELETING."""
        task = self.get_task(task_id)
        if deleting_phase and task.get("statusCode") != StatusCode.DELETING:
            task["statusCode"] = StatusCode.DELETING.value
            task["lastUpdated"] = _now()
            self._deleting_since[task_id] = now
        else:
            self._remove(task_id)
        self._changed()

    def purge_deleting(self, now: float, linger_s: float) -> int:
        """Remove tasks marked DELETING by the API more than `linger_s` ago; how many went."""
        due = [tid for tid, since in self._deleting_since.items() if now - since >= linger_s]
        for task_id in due:
            self._remove(task_id)
        if due:
            self._changed()
        return len(due)

    # -- executions ------------------------------------------------------------------------

    def execute_task(self, task_id: str, *, rules: TaskRules = _DEFAULT_RULES) -> Json:
        """Run the task now: records a successful execution and returns it."""
        task = self.get_task(task_id)
        if task.get("statusCode") == StatusCode.DELETING:
            _refuse_deleting(rules.deleting_execute, task_id, "executed")
        execution = self._record_execution(task)
        self._changed()
        return execution

    def cancel_task(self, task_id: str) -> None:
        """Cancel the task's running executions, if any."""
        self.get_task(task_id)
        # one version per cancelled execution, as every change counts
        self.version += cancel_running(self.executions.get(task_id, []), _now())

    def task_executions(self, task_id: str) -> list[Json]:
        """The task's executions, oldest first (404 SimError for an unknown task)."""
        self.get_task(task_id)
        return self.executions.get(task_id, [])

    def get_execution(self, task_id: str, execution_id: str, status: str | None = None) -> Json:
        """One execution by id, or the latest one (optionally of a status); 404 SimError."""
        return find_execution(self.task_executions(task_id), execution_id, status, task_id)

    # -- settings --------------------------------------------------------------------------

    def replace_settings_flags(self, flags: Mapping[str, bool]) -> None:
        """Set boolean settings (already checked by the caller)."""
        self.settings = {**self.settings, **flags}
        self._changed()

    # -- internals -------------------------------------------------------------------------

    def _insert(self, task: Json) -> None:
        self.tasks[task["id"]] = task
        self._seq[task["id"]] = self._next_seq
        self._next_seq += 1

    def _remove(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)
        self._seq.pop(task_id, None)
        self._deleting_since.pop(task_id, None)
        self.executions.pop(task_id, None)

    def _changed(self) -> None:
        self.version += 1

    def _new_id(self) -> str:
        while True:
            candidate = object_id(self._ids)
            if candidate not in self.tasks:
                return candidate

    def _first_active_user(self) -> str:
        for user in self.users.values():
            if user.get("status", UserStatus.ACTIVE) == UserStatus.ACTIVE:
                return str(user["id"])
        return "simadmin0000000000000000000000000"

    def _record_execution(self, task: Json) -> Json:
        now = _now()
        execution = new_execution(task, tenant_id=self.tenant_id, ids=self._ids, now=now)
        self.executions.setdefault(task["id"], []).append(execution)
        task["lastRun"] = now
        task["lastExecutionDate"] = now
        return execution


def _now() -> str:
    return iso(time.time())


def _refuse_deleting(answer: Answer, task_id: str, what: str) -> None:
    if answer is Answer.ACCEPTED:
        return
    status = 404 if answer is Answer.NOT_FOUND else 400
    raise SimError(status, f"sharing task {task_id!r} is being deleted and cannot be {what}")
