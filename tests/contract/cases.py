"""Every request the contract suite sends: the operation, the answer it must get, and why.

Ids in paths and bodies are names (`{task}`, `{missing}`, ...) resolved against a fresh World
per case, so the table is static and the coverage tests read it without sending anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from bulkshare.sim import Answer, LinkStyle, SimConfig, SimTenant

from .spec import TASKS_SPEC, USERS_SPEC

TASKS = "/v1/sharing-tasks"
TASK = f"{TASKS}/{{taskId}}"
EXECUTE = f"{TASKS}/actions/execute"
SETTINGS = f"{TASKS}/settings"
CANCEL = f"{TASK}/actions/cancel"
EXECUTIONS = f"{TASK}/executions"
EXECUTION = f"{EXECUTIONS}/{{executionId}}"
FILE = f"{EXECUTION}/files/{{fileAlias}}"
USERS = "/v1/users"
USER = f"{USERS}/{{userId}}"
#: GET /v1/users/me: users.openapi.json has no such path, but its GET /v1/users/{userId}
#: template matches it (userId "me") and the answer is that operation's User, so its cases are
#: held to that operation and need no exception of their own
ME = f"{USERS}/me"
FILTER = f"{USERS}/actions/filter"

#: path parameter -> the World name a case uses unless it says otherwise
DEFAULT_NAMES = {
    "taskId": "task",
    "executionId": "execution",
    "fileAlias": "alias",
    "userId": "user",
}
#: writes of the sharing-tasks API: the only requests the simulator's faults hit
WRITES = frozenset(
    {
        ("POST", TASKS),
        ("POST", EXECUTE),
        ("PATCH", SETTINGS),
        ("PUT", SETTINGS),
        ("PATCH", TASK),
        ("DELETE", TASK),
        ("POST", CANCEL),
    }
)
NEWER_TASK = ("status-code-enum", "task-error-enum", "sub-type-enum", "template-type-enum")
EXECUTIONS_API = ("executions-endpoints",)
ANY_VALUE = ("patch-value-any-json",)
#: a caller with no admin role: it sees only the tasks it owns
NO_ADMIN = SimConfig(caller_roles=())


@dataclass(frozen=True, slots=True)
class Case:
    """One request and the answer the contract expects for it."""

    method: str
    template: str  # the operation's path as its spec (or the amended spec) keys it
    status: int
    why: str  # what makes the service answer `status`
    path: str | None = None  # the template with World names; None: DEFAULT_NAMES
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None  # a JSON value sent as the body; None sends none
    raw: bytes | None = None  # bytes sent as a JSON body instead of `body`
    token: bool = True  # send a bearer token
    valid: bool = True  # the request is well formed: it is validated against the spec too
    exceptions: tuple[str, ...] = ()  # the exceptions this case may apply (spec.EXCEPTIONS)
    config: SimConfig | None = None  # the simulator's settings; None: SimConfig()
    bearer: str = "contract"  # the token sent (429 cases spend "contract"'s window first)

    @property
    def spec(self) -> str:
        """The spec file that documents the operation."""
        return USERS_SPEC if self.template.startswith(USERS) else TASKS_SPEC

    @property
    def id(self) -> str:
        """A readable test id naming the exceptions the case may apply."""
        named = f" [{', '.join(self.exceptions)}]" if self.exceptions else ""
        return f"{self.method} {self.template} {self.status} {self.why}{named}"

    def named_path(self) -> str:
        """The path with World names in place of the template's parameters."""
        if self.path is not None:
            return self.path
        return re.sub(r"\{(\w+)\}", lambda m: "{" + DEFAULT_NAMES[m[1]] + "}", self.template)


# -- the world each case runs against ---------------------------------------------------


def build_world() -> tuple[SimTenant, dict[str, str]]:
    """A small seeded tenant with executed tasks (image, PDF) and one with 2026-only values."""
    tenant = SimTenant.seed(24, seed=7)
    first: dict[str, str] = {}
    for task_id, task in tenant.tasks.items():
        first.setdefault(task["type"], task_id)
    chart, sheet, newer = first["chart-monitoring"], first["sheet-sharing"], first["chart-sharing"]
    # replaced, not mutated: seeded tasks may share nested values
    tenant.tasks[chart] = {**tenant.tasks[chart], "statusCode": "VALID", "taskErrors": []}
    tenant.tasks[newer] = {
        **tenant.tasks[newer],
        "statusCode": "REPORTING_DAILY_QUOTA_EXCEEDED",
        "taskErrors": [{"value": "EMAIL_DELIVERY_FAILURE", "timestamp": "2026-01-02T03:04:05Z"}],
        "subType": "docx",
        "templates": [{"type": "word", "subType": "pdf", "fileAlias": "report"}],
    }
    tenant.execute_task(chart)  # two runs: a page of one has a next link
    image, pdf = tenant.execute_task(chart), tenant.execute_task(sheet)
    deleting = next(t for t, x in tenant.tasks.items() if x["statusCode"] == "DELETING")
    foreign = next(
        t for t, x in tenant.tasks.items() if x["owner"] != tenant.admin_id and t != deleting
    )
    names = {
        "task": chart,
        "execution": image["id"],
        "alias": image["files"][0]["fileAlias"],
        "sheet": sheet,
        "pdf_execution": pdf["id"],
        "pdf_alias": pdf["files"][0]["fileAlias"],
        "newer": newer,
        "missing": "0" * 24,
        "user": next(iter(tenant.users)),
        "nobody": "nobody-at-all",
        "deleting": deleting,
        "foreign": foreign,
        "app": next(iter(tenant.apps)),
    }
    return tenant, names


def resolve(value: Any, names: dict[str, str]) -> Any:
    """`value` with every `{name}` in its strings replaced by the World's id."""
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: names[m[1]], value)
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, names) for k, v in value.items()}
    return value


# -- the table --------------------------------------------------------------------------

CREATE = {
    "name": "Contract",
    "type": "sheet-sharing",
    "state": {},
    "templates": [{"type": "sheet"}],
}
RENAME = [{"op": "replace", "path": "/name", "value": "renamed"}]
CHART: dict[str, Any] = {
    "type": "chart",
    "chartData": {
        "appId": "{app}",
        "sheetId": "sheet",
        "objectId": "object",
        "widthPx": 800,
        "heightPx": 600,
    },
}
CREATE_CHART = {**CREATE, "type": "chart-sharing", "templates": [CHART]}
SHARING_ON = [{"op": "replace", "path": "/enable-sharing", "value": True}]


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    """`body` less `key`."""
    return {k: v for k, v in body.items() if k != key}


#: one typical, valid request per operation of both specs and the reference
TYPICAL = (
    Case("GET", TASKS, 200, "first page", query=(("limit", "2"),)),
    Case("POST", TASKS, 201, "minimal create", body=CREATE),
    Case("POST", EXECUTE, 204, "execute a task", body={"sharingTaskID": "{task}"}),
    Case("GET", SETTINGS, 200, "read settings"),
    Case("PATCH", SETTINGS, 204, "turn sharing on", body=SHARING_ON, exceptions=ANY_VALUE),
    Case("PUT", SETTINGS, 204, "replace settings", body={"enable-sharing": True}),
    Case("GET", TASK, 200, "read a task"),
    Case("PATCH", TASK, 204, "rename a task", body=RENAME, exceptions=ANY_VALUE),
    Case("DELETE", TASK, 204, "delete a task"),
    Case("POST", CANCEL, 204, "cancel a task"),
    Case("GET", EXECUTIONS, 200, "list executions", exceptions=EXECUTIONS_API),
    Case("GET", EXECUTION, 200, "one execution", exceptions=EXECUTIONS_API),
    Case("GET", FILE, 200, "an image file", exceptions=EXECUTIONS_API),
    Case("GET", USERS, 200, "first page", query=(("limit", "2"),)),
    Case("GET", USER, 200, "read a user"),
    Case("POST", FILTER, 200, "filter by id", body={"filter": 'id eq "{user}"'}),
)


def _refusals(typical: Case) -> list[Case]:
    """The answers every operation can get whatever its input: 401, 429, and faults."""
    key = (typical.method, typical.template)
    cases = [
        replace(typical, status=401, why="no bearer token", token=False),
        replace(typical, status=429, why="its tier is spent"),
    ]
    if typical.template == USER:
        cases[0] = replace(cases[0], exceptions=(*typical.exceptions, "users-get-401"))
    if key in WRITES:
        cases.append(replace(typical, status=500, why="fault after applying"))
        cases.append(replace(typical, status=503, why="fault before applying"))
    return cases


def _wrong_method(method: str, template: str, *exceptions: str) -> Case:
    spec_exception = "users-wrong-method-405" if template.startswith(USERS) else "wrong-method-405"
    return Case(
        method,
        template,
        405,
        "method the path does not have",
        valid=False,
        exceptions=(*exceptions, spec_exception),
    )


WRONG_METHODS = (
    _wrong_method("DELETE", TASKS),
    _wrong_method("GET", EXECUTE),
    _wrong_method("POST", SETTINGS),
    _wrong_method("POST", TASK),
    _wrong_method("GET", CANCEL),
    _wrong_method("POST", EXECUTIONS, *EXECUTIONS_API),
    _wrong_method("DELETE", EXECUTION, *EXECUTIONS_API),
    _wrong_method("POST", FILE, *EXECUTIONS_API),
    _wrong_method("DELETE", USERS),
    _wrong_method("PUT", USER),
    _wrong_method("GET", FILTER),
)

MORE = (
    # list tasks
    Case("GET", TASKS, 200, "middle page", query=(("limit", "2"), ("offset", "2"))),
    Case("GET", TASKS, 200, "every seeded task", query=(("limit", "100"),), exceptions=NEWER_TASK),
    Case(
        "GET",
        TASKS,
        200,
        "filtered and sorted",
        query=(("type", "chart-monitoring"), ("sort", "-name"), ("excludeDeleting", "true")),
    ),
    Case("GET", TASKS, 400, "limit out of range", query=(("limit", "0"),), valid=False),
    Case("GET", TASKS, 400, "not a page token", query=(("page", "!!"),), valid=False),
    # create
    Case(
        "POST",
        TASKS,
        201,
        "create with 2026 fields",
        body={
            **CREATE,
            "templates": [{"type": "html", "fileAlias": "page"}],
            "subType": "html",
            "cleanupStrategy": "removeOldBookmarks",
        },
        exceptions=("sub-type-enum", "template-type-enum"),
    ),
    Case("POST", TASKS, 400, "body is an array", body=[], valid=False),
    Case("POST", TASKS, 400, "body is not JSON", raw=b"{", valid=False),
    Case("POST", TASKS, 400, "name missing", body=without(CREATE, "name"), valid=False),
    # execute
    Case("POST", EXECUTE, 400, "sharingTaskID missing", body={}, valid=False),
    Case("POST", EXECUTE, 404, "unknown task", body={"sharingTaskID": "{missing}"}),
    # settings
    Case("PATCH", SETTINGS, 400, "body is an object", body={"nope": 1}, valid=False),
    Case(
        "PATCH",
        SETTINGS,
        400,
        "a path only the 2025 spec has",
        body=[{"op": "replace", "path": "/enable-reporting-template-subscription", "value": True}],
        valid=False,
        exceptions=("settings-patch-paths",),
    ),
    Case("PUT", SETTINGS, 400, "body is an array", body=[], valid=False),
    # one task
    Case(
        "GET", TASK, 200, "task with 2026 values", path=f"{TASKS}/{{newer}}", exceptions=NEWER_TASK
    ),
    Case("GET", TASK, 200, "viewed as a chart", query=(("isViewChart", "true"),)),
    Case(
        "GET",
        TASK,
        400,
        "isViewChart not a boolean",
        query=(("isViewChart", "maybe"),),
        valid=False,
    ),
    Case("GET", TASK, 404, "unknown task", path=f"{TASKS}/{{missing}}"),
    Case(
        "PATCH",
        TASK,
        204,
        "remove and bookmarkId",
        body=[
            {"op": "remove", "path": "/description"},
            {"op": "replace", "path": "/bookmarkId", "value": "bm-1"},
        ],
        exceptions=("patch-remove-bookmarkId", *ANY_VALUE),
    ),
    Case("PATCH", TASK, 400, "unknown path", body=[{"op": "replace", "path": "/x"}], valid=False),
    Case("PATCH", TASK, 400, "body is not JSON", raw=b"[{", valid=False),
    Case(
        "PATCH",
        TASK,
        404,
        "unknown task",
        path=f"{TASKS}/{{missing}}",
        body=RENAME,
        exceptions=ANY_VALUE,
    ),
    Case("DELETE", TASK, 404, "unknown task", path=f"{TASKS}/{{missing}}"),
    Case("POST", CANCEL, 404, "unknown task", path=f"{TASKS}/{{missing}}/actions/cancel"),
    # executions
    Case(
        "GET",
        EXECUTIONS,
        200,
        "filtered, sorted, paged",
        query=(("status", "successful"), ("sort", "-starttime"), ("limit", "1")),
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        EXECUTIONS,
        400,
        "unknown status",
        query=(("status", "bogus"),),
        valid=False,
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        EXECUTIONS,
        404,
        "unknown task",
        path=f"{TASKS}/{{missing}}/executions",
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        EXECUTION,
        200,
        "latest successful",
        path=f"{TASKS}/{{task}}/executions/latest",
        query=(("status", "successful"),),
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        EXECUTION,
        400,
        "unknown status",
        query=(("status", "bogus"),),
        valid=False,
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        EXECUTION,
        404,
        "unknown execution",
        path=f"{TASKS}/{{task}}/executions/{{missing}}",
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        FILE,
        200,
        "a PDF file",
        path=f"{TASKS}/{{sheet}}/executions/{{pdf_execution}}/files/{{pdf_alias}}",
        exceptions=(*EXECUTIONS_API, "execution-file-blob"),
    ),
    Case(
        "GET",
        FILE,
        400,
        "unknown status",
        query=(("status", "bogus"),),
        valid=False,
        exceptions=EXECUTIONS_API,
    ),
    Case(
        "GET",
        FILE,
        404,
        "unknown file",
        path=f"{TASKS}/{{task}}/executions/{{execution}}/files/nope",
        exceptions=EXECUTIONS_API,
    ),
    # users
    Case(
        "GET",
        USERS,
        200,
        "filtered with a total",
        query=(("filter", 'status eq "active"'), ("totalResults", "true")),
    ),
    Case("GET", USERS, 400, "unknown sort", query=(("sort", "bogus"),), valid=False),
    Case("GET", USERS, 400, "filter syntax error", query=(("filter", "id eq"),), valid=False),
    Case("GET", USER, 404, "unknown user", path=f"{USERS}/{{nobody}}"),
    Case("POST", FILTER, 200, "no filter at all"),
    Case(
        "POST",
        FILTER,
        400,
        "more than 100 ids",
        body={"filter": " or ".join(f'id eq "u{i}"' for i in range(101))},
        valid=False,
    ),
    Case("POST", FILTER, 400, "filter syntax error", body={"filter": "id eq"}, valid=False),
)

#: answers that depend on the simulator's switches, the caller and the tenant's own data
SWITCHED = (
    # links
    Case(
        "GET",
        TASKS,
        200,
        "relative links",
        query=(("limit", "2"), ("offset", "2")),
        config=SimConfig(next_links=LinkStyle.RELATIVE),
    ),
    Case(
        "GET",
        TASKS,
        200,
        "query links, empty next on the last page",
        query=(("limit", "100"),),
        config=SimConfig(next_links=LinkStyle.QUERY, empty_last_next=True),
        exceptions=NEWER_TASK,
    ),
    Case(
        "GET",
        USERS,
        200,
        "relative links, empty last next",
        query=(("limit", "100"),),
        config=SimConfig(next_links=LinkStyle.RELATIVE, empty_last_next=True),
    ),
    Case(
        "GET",
        EXECUTIONS,
        200,
        "relative links",
        query=(("limit", "1"),),
        config=SimConfig(next_links=LinkStyle.RELATIVE),
        exceptions=EXECUTIONS_API,
    ),
    # the caller
    Case("GET", TASKS, 200, "a non-admin's own tasks", config=NO_ADMIN),
    Case(
        "GET",
        TASKS,
        400,
        "non-admin, template-sharing only, no appid",
        query=(("type", "template-sharing"),),
        config=NO_ADMIN,
    ),
    Case(
        "GET", TASK, 404, "non-admin, another's task", path=f"{TASKS}/{{foreign}}", config=NO_ADMIN
    ),
    Case("GET", USER, 200, "me, the caller", path=ME),
    Case(
        "GET",
        USER,
        200,
        "me, a caller with a custom role",
        path=ME,
        config=SimConfig(caller_roles=("Developer", "Auditor")),
    ),
    Case(
        "GET", USER, 401, "me, no bearer token", path=ME, token=False, exceptions=("users-get-401",)
    ),
    Case("GET", USER, 429, "me, its tier spent", path=ME),
    Case(
        "GET",
        TASKS,
        429,
        "the tenant-wide limit, spent by another identity",
        config=SimConfig(tier1_per_minute=1, window_s=60, tenant_users=1),
        bearer="another",
    ),
    # create
    Case("POST", TASKS, 201, "a chart of a tenant app", body=CREATE_CHART),
    Case(
        "POST",
        TASKS,
        400,
        "an app the tenant lacks",
        body={
            **CREATE_CHART,
            "templates": [{**CHART, "chartData": {**CHART["chartData"], "appId": "x"}}],
        },
    ),
    Case(
        "POST",
        TASKS,
        400,
        "a chart without chartData",
        body={**CREATE_CHART, "templates": [{"type": "chart"}]},
    ),
    Case(
        "POST",
        TASKS,
        400,
        "the reference's schedule start, older than a year",
        body={**CREATE_CHART, "scheduleOptions": {"startDateTime": "2006-01-02T16:04:05"}},
    ),
    # DELETING, unknown owners
    Case(
        "PATCH",
        TASK,
        404,
        "a task in DELETING",
        path=f"{TASKS}/{{deleting}}",
        body=RENAME,
        exceptions=ANY_VALUE,
    ),
    Case(
        "PATCH",
        TASK,
        400,
        "a task in DELETING, told 400",
        path=f"{TASKS}/{{deleting}}",
        body=RENAME,
        config=SimConfig(deleting_patch=Answer.BAD_REQUEST),
        exceptions=ANY_VALUE,
    ),
    Case(
        "PATCH",
        TASK,
        400,
        "ownerId names no user",
        body=[{"op": "replace", "path": "/ownerId", "value": "{nobody}"}],
        exceptions=ANY_VALUE,
    ),
    Case(
        "PATCH",
        TASK,
        404,
        "ownerId names no user, told 404",
        body=[{"op": "replace", "path": "/ownerId", "value": "{nobody}"}],
        config=SimConfig(unknown_owner=Answer.NOT_FOUND),
        exceptions=ANY_VALUE,
    ),
    Case("POST", EXECUTE, 404, "a task in DELETING", body={"sharingTaskID": "{deleting}"}),
)

CASES: tuple[Case, ...] = (
    *TYPICAL,
    *(case for typical in TYPICAL for case in _refusals(typical)),
    *WRONG_METHODS,
    *MORE,
    *SWITCHED,
)
