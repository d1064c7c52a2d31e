"""The contract the simulator is held to: the two OpenAPI specs, amended where the newer
reference wins (`EXCEPTIONS`), and a check that names every exception an answer needed.

An answer is validated against the spec as published first; only when that fails is it
validated against the amended spec, and the exceptions it could not do without are returned.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.exceptions import OpenAPIError

from tests.specs import SPECS

REFERENCE = SPECS / "sharing-tasks.md"
TASKS_SPEC = "sharing-tasks.openapi.json"
USERS_SPEC = "users.openapi.json"
#: the host MockRequest pretends to talk to; each spec is served under HOST/api
HOST = "http://sim.test"
METHODS = ("get", "post", "put", "patch", "delete")

Json = dict[str, Any]
Check = Callable[[OpenAPI], None]


@dataclass(frozen=True, slots=True)
class SpecException:
    """One place where the contract is not the January 2025 spec as published, and why."""

    name: str
    spec: str  # the spec file it amends
    reason: str  # one line, naming the source that wins
    amend: Callable[[Json], None]


# -- the amendments -----------------------------------------------------------------------

_ERRORS = {"$ref": "#/components/schemas/Errors"}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _errors(*statuses: str, media: tuple[str, ...] = ("application/json",)) -> Json:
    content = {m: {"schema": _ERRORS} for m in media}
    return {s: {"description": f"{s} error", "content": content} for s in statuses}


def _props(kind: str, *names: str) -> Json:
    return {n: {"type": kind} for n in names}


def _strings_array() -> Json:
    return {"type": "array", "items": {"type": "string"}}


def _param(name: str, where: str, schema: Json) -> Json:
    return {"name": name, "in": where, "required": where == "path", "schema": schema}


# GET .../executions/{executionId} 200 and its parts, as sharing-tasks.md lists them
_EXECUTION_FILE = {
    "type": "object",
    "properties": {
        **_props("string", "fileID", "userId", "fileAlias", "templateId", "tempContentsLocation"),
        "type": {"type": "string", "enum": ["image", "pdf", "pptx", "xlsx", "html", "docx"]},
    },
}
_TARGET_USER = {
    "type": "object",
    "properties": {
        **_props("string", "type", "value", "timezone", "filterName"),
        "filterNames": _strings_array(),
    },
}
_EXECUTION_STATUSES = [
    "initialized",
    "in-progress",
    "successful",
    "failed",
    "cancelled",
    "invalid",
    "presuccessful",
    "cancelling",
]
_EXECUTION = {
    "type": "object",
    "properties": {
        **_props(
            "string",
            "id",
            "appId",
            "endTime",
            "eventID",
            "ownerId",
            "reloadId",
            "tenantId",
            "eventTime",
            "startTime",
            "bookmarkId",
            "failedTime",
            "reloadTime",
            "workflowID",
            "cancelledTime",
            "sharingTaskID",
        ),
        **_props(
            "integer",
            "totalCount",
            "failedCount",
            "successCount",
            "cancelledCount",
            "totalUploadCount",
            "failedUploadCount",
            "successUploadCount",
        ),
        "files": {"type": "array", "items": _EXECUTION_FILE},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": _props("string", "code", "title", "detail")},
        },
        "status": {"type": "string", "enum": _EXECUTION_STATUSES},
        "targetUser": _TARGET_USER,
        "bookmarkIds": _strings_array(),
        "fileLocations": _strings_array(),
        "links": {"$ref": "#/components/schemas/Links"},
    },
}
_EXECUTION_LIST = {
    "allOf": [
        {"$ref": "#/components/schemas/StandardListResponseProps"},
        {
            "type": "object",
            "properties": {
                "executions": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/SharingExecutionResponse"},
                },
                "links": {"$ref": "#/components/schemas/ListLinks"},
            },
        },
    ]
}
_FILE_BODY = {"type": "string", "format": "binary"}
_TASK_ID = _param("taskId", "path", {"type": "string"})
_EXECUTION_ID = _param("executionId", "path", {"type": "string"})
_STATUS_OF_LATEST = _param(
    "status", "query", {"type": "string", "enum": ["successful", "failed", "cancelled"]}
)


def _executions_endpoints(doc: Json) -> None:
    doc["components"]["schemas"]["SharingExecutionResponse"] = _EXECUTION
    doc["components"]["schemas"]["SharingExecutionListResponse"] = _EXECUTION_LIST
    tier1 = {"tier": "1", "limit": 1000}
    executions = "/v1/sharing-tasks/{taskId}/executions"
    sort = {
        "type": "array",
        "items": {"type": "string", "enum": ["starttime", "-starttime", "+starttime"]},
    }
    doc["paths"][executions] = {
        "get": {
            "x-qlik-tier": tier1,
            "parameters": [
                _TASK_ID,
                _param("limit", "query", {"type": "integer"}),
                _param("next", "query", {"type": "string"}),
                _param("prev", "query", {"type": "string"}),
                _param("offset", "query", {"type": "integer"}),
                _param("sort", "query", sort),
                _param("status", "query", {"type": "string", "enum": ["successful", "failed"]}),
            ],
            "responses": {
                "200": {
                    "description": "executions",
                    "content": _json({"$ref": "#/components/schemas/SharingExecutionListResponse"}),
                },
                **_errors("400", "404", "500", "default"),
            },
        }
    }
    doc["paths"][f"{executions}/{{executionId}}"] = {
        "get": {
            "x-qlik-tier": tier1,
            "parameters": [_TASK_ID, _EXECUTION_ID, _STATUS_OF_LATEST],
            "responses": {
                "200": {
                    "description": "execution",
                    "content": _json({"$ref": "#/components/schemas/SharingExecutionResponse"}),
                },
                **_errors("400", "404", "500", "default"),
            },
        }
    }
    both = ("image/png", "application/json")
    doc["paths"][f"{executions}/{{executionId}}/files/{{fileAlias}}"] = {
        "get": {
            "x-qlik-tier": tier1,
            "parameters": [
                _TASK_ID,
                _EXECUTION_ID,
                _param("fileAlias", "path", {"type": "string"}),
                _STATUS_OF_LATEST,
            ],
            "responses": {
                "200": {
                    "description": "file content",
                    # the reference says string; the body is the file's bytes
                    "content": {m: {"schema": _FILE_BODY} for m in both},
                },
                **_errors("404", "500", "default", media=both),
            },
        }
    }


def _file_as_blob(doc: Json) -> None:
    files = doc["paths"].get(
        "/v1/sharing-tasks/{taskId}/executions/{executionId}/files/{fileAlias}"
    )
    if files is not None:  # the endpoint comes with executions-endpoints
        content = files["get"]["responses"]["200"]["content"]
        content["application/pdf"] = {"schema": _FILE_BODY}


def _schema(doc: Json, name: str) -> Json:
    schema: Json = doc["components"]["schemas"][name]
    return schema


def _enum_adds(schema: str, field: str, *values: str) -> Callable[[Json], None]:
    def amend(doc: Json) -> None:
        enum = _schema(doc, schema)["properties"][field]["enum"]
        enum.extend(v for v in values if v not in enum)

    return amend


def _each(*amends: Callable[[Json], None]) -> Callable[[Json], None]:
    def amend(doc: Json) -> None:
        for one in amends:
            one(doc)

    return amend


def _patch_any_value(doc: Json) -> None:
    for name in ("SharingTaskRecurringPatchRequestCompliant", "SharingSettingsPatchCompliant"):
        _schema(doc, name)["properties"]["value"].pop("type")


def _settings_patch_paths(doc: Json) -> None:
    enum = _schema(doc, "SharingSettingsPatchCompliant")["properties"]["path"]["enum"]
    enum.remove("/enable-reporting-template-subscription")


def _users_get_401(doc: Json) -> None:
    doc["paths"]["/v1/users/{userId}"]["get"]["responses"].update(_errors("401"))


def _wrong_method_405(doc: Json) -> None:
    allow = {"required": True, "schema": {"type": "string"}}
    answer = {
        "405": {
            "description": "method not allowed",
            "headers": {"Allow": allow},
            "content": _json(_ERRORS),
        }
    }
    for operations in doc["paths"].values():
        in_path = {
            p["name"]: p
            for method in METHODS
            for p in operations.get(method, {}).get("parameters", [])
            if p.get("in") == "path"
        }
        for method in METHODS:
            refused = {"parameters": list(in_path.values()), "responses": copy.deepcopy(answer)}
            operations.setdefault(method, refused)


#: Every place the contract differs from the published specs; the check names the ones it used.
EXCEPTIONS: tuple[SpecException, ...] = (
    SpecException(
        "executions-endpoints",
        TASKS_SPEC,
        "the three executions endpoints are newer than the spec "
        "(info.x-known-differences-vs-2026.new_endpoints); shapes from sharing-tasks.md",
        _executions_endpoints,
    ),
    SpecException(
        "execution-file-blob",
        TASKS_SPEC,
        "sharing-tasks.md lists image/png and application/json for a file; qlik-api-ts (2026) "
        "types it a DownloadableBlob, so a PDF report comes as application/pdf",
        _file_as_blob,
    ),
    SpecException(
        "patch-remove-bookmarkId",
        TASKS_SPEC,
        'x-known-differences-vs-2026 "PATCH op enum" and "PATCH path enum adds", and the PATCH '
        "table of sharing-tasks.md: op remove, path /bookmarkId",
        _each(
            _enum_adds("SharingTaskRecurringPatchRequestCompliant", "op", "remove"),
            _enum_adds("SharingTaskRecurringPatchRequestCompliant", "path", "/bookmarkId"),
        ),
    ),
    SpecException(
        "patch-value-any-json",
        TASKS_SPEC,
        "PATCH value is typed object, yet the examples of the spec and of sharing-tasks.md send "
        "strings, booleans and lists; qlik-api-ts (2026) types it unknown",
        _patch_any_value,
    ),
    SpecException(
        "settings-patch-paths",
        TASKS_SPEC,
        "sharing-tasks.md (and qlik-api-ts 2026) allow only /enable-sharing and "
        "/enable-report-subscription in a settings PATCH; the spec also has "
        "/enable-reporting-template-subscription",
        _settings_patch_paths,
    ),
    SpecException(
        "status-code-enum",
        TASKS_SPEC,
        'x-known-differences-vs-2026 "statusCode enum adds": REPORTING_DAILY_QUOTA_EXCEEDED',
        _enum_adds("SharingTaskRecurringPersist", "statusCode", "REPORTING_DAILY_QUOTA_EXCEEDED"),
    ),
    SpecException(
        "task-error-enum",
        TASKS_SPEC,
        'x-known-differences-vs-2026 "TaskError.value enum adds": '
        "REPORTING_DAILY_QUOTA_EXCEEDED, EMAIL_DELIVERY_FAILURE",
        _enum_adds(
            "TaskError", "value", "REPORTING_DAILY_QUOTA_EXCEEDED", "EMAIL_DELIVERY_FAILURE"
        ),
    ),
    SpecException(
        "sub-type-enum",
        TASKS_SPEC,
        'x-known-differences-vs-2026 "subType enum adds (deprecated field)": html, docx',
        _each(
            _enum_adds("SharingTaskRecurringPersist", "subType", "html", "docx"),
            _enum_adds("SharingTaskRecurringCreateRequest", "subType", "html", "docx"),
        ),
    ),
    SpecException(
        "template-type-enum",
        TASKS_SPEC,
        'x-known-differences-vs-2026 "TemplatePersist.type adds": html, powerpoint, word',
        _enum_adds("TemplatePersist", "type", "html", "powerpoint", "word"),
    ),
    SpecException(
        "wrong-method-405",
        TASKS_SPEC,
        "the spec lists only the methods a path has; a 405 carries Allow (RFC 9110 15.5.6) "
        "and the service's Errors body",
        _wrong_method_405,
    ),
    SpecException(
        "users-get-401",
        USERS_SPEC,
        "users.openapi.json documents 401 (Errors) on GET /v1/users and the filter but omits it, "
        "and any default, on GET /v1/users/{userId}",
        _users_get_401,
    ),
    SpecException(
        "users-wrong-method-405",
        USERS_SPEC,
        "users.openapi.json has no default answer; a 405 carries Allow (RFC 9110 15.5.6) and "
        "the Errors body the spec gives every other error",
        _wrong_method_405,
    ),
)
BY_NAME: Mapping[str, SpecException] = {e.name: e for e in EXCEPTIONS}


# -- specs, published and amended -------------------------------------------------------


@functools.cache
def document(spec: str) -> Json:
    """A spec as published, its server moved to HOST (do not mutate)."""
    doc: Json = json.loads((SPECS / spec).read_text())
    doc["servers"] = [{"url": f"{HOST}/api"}]
    return doc


@functools.cache
def amended_document(spec: str, names: frozenset[str]) -> Json:
    """`spec` with the named exceptions applied (do not mutate)."""
    doc = copy.deepcopy(document(spec))
    for exception in EXCEPTIONS:
        if exception.name in names:
            exception.amend(doc)
    return doc


@functools.cache
def amended(spec: str, names: frozenset[str]) -> OpenAPI:
    """`spec` with the named exceptions applied; the published spec when `names` is empty."""
    doc = amended_document(spec, names)
    checked = not names or names == exception_names(spec)  # check the overlay once, whole
    return OpenAPI.from_dict(doc) if checked else OpenAPI.from_dict(doc, config=_UNCHECKED)


_UNCHECKED = Config(spec_validator_cls=None)


def exception_names(spec: str) -> frozenset[str]:
    """The names of the exceptions that amend `spec`."""
    return frozenset(e.name for e in EXCEPTIONS if e.spec == spec)


def applied_exceptions(spec: str, check: Check) -> tuple[str, ...]:
    """The exceptions `check` needs to pass; () if the published spec suffices.

    Raises AssertionError when even the amended spec rejects what was checked.
    """
    try:
        check(amended(spec, frozenset()))
        return ()
    except OpenAPIError as exc:
        against_spec = exc
    names = exception_names(spec)
    try:
        check(amended(spec, names))
    except OpenAPIError as exc:
        raise AssertionError(
            f"{spec}: {_explain(against_spec)}; with every exception applied: {_explain(exc)}"
        ) from exc
    needed = tuple(
        e.name for e in EXCEPTIONS if e.name in names and not _passes(spec, names - {e.name}, check)
    )
    return needed or tuple(sorted(names))


def _passes(spec: str, names: frozenset[str], check: Check) -> bool:
    try:
        check(amended(spec, names))
    except OpenAPIError:
        return False
    return True


def _explain(exc: BaseException) -> str:
    causes = [str(exc)]
    inner = exc.__cause__
    while inner is not None:
        causes.append(str(inner))
        inner = inner.__cause__
    return " <- ".join(causes)


# -- the reference ----------------------------------------------------------------------

_ENDPOINT = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) /api(/v1/\S+)$")
_TIER = re.compile(r"^- \*\*Rate Limit:\*\* Tier (\d) \((\d+) requests per minute\)$")


@functools.cache
def reference_endpoints() -> Mapping[tuple[str, str], tuple[str, int]]:
    """(method, spec-style path) -> (tier, per minute) of every endpoint sharing-tasks.md has."""
    found: dict[tuple[str, str], tuple[str, int]] = {}
    current: tuple[str, str] | None = None
    for line in REFERENCE.read_text().splitlines():
        heading = _ENDPOINT.match(line)
        if heading:
            current = (heading[1].lower(), heading[2])
            continue
        tier = _TIER.match(line)
        if tier and current is not None:
            found[current] = (tier[1], int(tier[2]))
            current = None
    return found


def spec_operations() -> dict[tuple[str, str], str]:
    """(method, path) -> spec file of every operation both published specs have."""
    found: dict[tuple[str, str], str] = {}
    for spec in (TASKS_SPEC, USERS_SPEC):
        for path, operations in document(spec)["paths"].items():
            for method in set(operations) & set(METHODS):
                found[(method, path)] = spec
    return found
