"""Handlers of the 13 sharing-tasks endpoints, under /api/v1/sharing-tasks.

Each reads the request, asks the tenant, and answers in the service's shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from bulkshare.sim.callers import Caller
from bulkshare.sim.context import (
    CALLER_KEY,
    base_url,
    context,
    json_response,
    no_content,
    read_json,
)
from bulkshare.sim.errors import SimError
from bulkshare.sim.links import list_links, page_url
from bulkshare.sim.listing import (
    Cursor,
    TaskQuery,
    decode_token,
    encode_cursor,
    encode_token,
    parse_bool,
    parse_int,
    parse_limit,
    parse_task_query,
)
from bulkshare.sim.settings import parse_settings_patch, parse_settings_put
from bulkshare.sim.vocab import (
    EXECUTION_FILTER_STATUSES,
    EXECUTION_SORTS,
    LATEST_STATUSES,
    LinkType,
    TaskType,
    TemplateSubType,
)

__all__ = ["ROUTES", "TASK_ID_KEY", "render_task"]

Json = dict[str, Any]

#: request key where handlers leave the id of the task a write was about
TASK_ID_KEY = web.RequestKey("bulkshare_sim_task_id", str)

_TASKS = "/api/v1/sharing-tasks"
#: the executions list's sort values, signed or not
_EXECUTION_SORTS = frozenset(f"{sign}{name}" for name in EXECUTION_SORTS for sign in ("", "+", "-"))


def render_task(task: Json, base: str) -> Json:
    """A task as the API answers it: the persisted fields plus its links."""
    return {**task, "links": {"self": {"href": f"{base}{_TASKS}/{task['id']}"}}}


def _link(request: web.Request, cursor: Cursor | None) -> Json | None:
    if cursor is None:
        return None
    token = encode_cursor(cursor)
    kind = LinkType.NEXT if cursor.forward else LinkType.PREV
    return {"href": page_url(request, token), "type": kind.value, "token": token}


# -- tasks -------------------------------------------------------------------------------


def _caller(request: web.Request) -> Caller:
    return request[CALLER_KEY]


def _visible(request: web.Request, task_id: str) -> None:
    """404, as for an unknown task, when the caller may not see the task."""
    _caller(request).check_sees(context(request).tenant.tasks.get(task_id), task_id)


def _scoped(request: web.Request, query: TaskQuery) -> TaskQuery:
    caller = _caller(request)
    if caller.sees_all:
        return query
    # sharing-tasks.md: "If type is template-sharing only and user is not tenant admin, appid
    # is also required"
    if query.types == {TaskType.TEMPLATE_SHARING.value} and not query.app_id:
        raise SimError(400, "query parameter appid is required to list template-sharing tasks")
    return replace(query, scope_owner=caller.user_id)


async def list_tasks(request: web.Request) -> web.Response:
    """GET /api/v1/sharing-tasks (a caller without an admin role sees only its own tasks)."""
    ctx = context(request)
    page = ctx.lister.page(_scoped(request, parse_task_query(request.query)))
    links = list_links(request, _link(request, page.next), _link(request, page.prev))
    base = base_url(request)
    return json_response(
        {
            "sharingTasks": [render_task(t, base) for t in page.tasks],
            "totalCount": page.total,
            "currentPageCount": len(page.tasks),
            "links": links,
        }
    )


async def create_task(request: web.Request) -> web.Response:
    """POST /api/v1/sharing-tasks: the caller becomes the owner."""
    ctx = context(request)
    task = ctx.tenant.create_task(
        await read_json(request), owner_id=_caller(request).user_id, rules=ctx.rules
    )
    request[TASK_ID_KEY] = task["id"]
    return json_response(render_task(task, base_url(request)), status=201)


async def get_task(request: web.Request) -> web.Response:
    """GET /api/v1/sharing-tasks/{taskId}."""
    tenant, task_id = context(request).tenant, request.match_info["taskId"]
    _visible(request, task_id)
    raw = request.query.get("isViewChart")
    viewing = parse_bool("isViewChart", raw) if raw is not None else False
    task = tenant.view_task(task_id) if viewing else tenant.get_task(task_id)
    return json_response(render_task(task, base_url(request)))


async def patch_task(request: web.Request) -> web.Response:
    """PATCH /api/v1/sharing-tasks/{taskId}."""
    ctx, task_id = context(request), request.match_info["taskId"]
    _visible(request, task_id)
    ctx.tenant.get_task(task_id)  # an unknown task is a 404 whatever the body
    body = await read_json(request)
    ctx.tenant.patch_task(task_id, body, actor=_caller(request).user_id, rules=ctx.rules)
    return no_content()


async def delete_task(request: web.Request) -> web.Response:
    """DELETE /api/v1/sharing-tasks/{taskId}."""
    ctx, task_id = context(request), request.match_info["taskId"]
    _visible(request, task_id)
    ctx.tenant.delete_task(task_id, deleting_phase=ctx.config.deleting_phase, now=ctx.clock())
    return no_content()


async def cancel_task(request: web.Request) -> web.Response:
    """POST /api/v1/sharing-tasks/{taskId}/actions/cancel."""
    _visible(request, request.match_info["taskId"])
    context(request).tenant.cancel_task(request.match_info["taskId"])
    return no_content()


async def execute_task(request: web.Request) -> web.Response:
    """POST /api/v1/sharing-tasks/actions/execute with {"sharingTaskID": id}."""
    body = await read_json(request)
    task_id = body.get("sharingTaskID") if isinstance(body, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise SimError(400, "sharingTaskID is required")
    request[TASK_ID_KEY] = task_id
    _visible(request, task_id)
    ctx = context(request)
    ctx.tenant.execute_task(task_id, rules=ctx.rules)
    return no_content()


# -- executions --------------------------------------------------------------------------


def _render_execution(execution: Json, request: web.Request) -> Json:
    href = f"{base_url(request)}{_TASKS}/{execution['sharingTaskID']}/executions/{execution['id']}"
    return {**execution, "links": {"self": {"href": href}}}


def _execution_window(request: web.Request, total: int) -> tuple[int, int]:
    limit = parse_limit(request.query)
    token = request.query.get("next") or request.query.get("prev")
    if "next" in request.query and "prev" in request.query:
        raise SimError(400, "only one of next or prev may be specified")
    offset = parse_int("offset", request.query.get("offset"), 0, 0, None)
    if token:
        payload = decode_token(token)
        position = payload.get("o") if isinstance(payload, dict) else None
        if not isinstance(position, int) or position < 0:
            raise SimError(400, "invalid page cursor")
        offset = position
    return offset, min(total, offset + limit)


async def list_executions(request: web.Request) -> web.Response:
    """GET /api/v1/sharing-tasks/{taskId}/executions."""
    _visible(request, request.match_info["taskId"])
    runs = context(request).tenant.task_executions(request.match_info["taskId"])
    status = request.query.get("status")
    if status is not None and status not in EXECUTION_FILTER_STATUSES:
        raise SimError(
            400, f"query parameter status: must be one of {list(EXECUTION_FILTER_STATUSES)}"
        )
    sort = request.query.getall("sort", list(EXECUTION_SORTS))
    if any(s not in _EXECUTION_SORTS for s in sort):
        raise SimError(400, "query parameter sort: must be starttime, +starttime or -starttime")
    runs = [r for r in runs if status is None or r.get("status") == status]
    if sort[0].startswith("-"):
        runs = runs[::-1]
    start, end = _execution_window(request, len(runs))
    items = [_render_execution(r, request) for r in runs[start:end]]
    return json_response(
        {
            "executions": items,
            "totalCount": len(runs),
            "currentPageCount": len(items),
            "links": _execution_links(request, start, end, len(runs)),
        }
    )


def _execution_links(request: web.Request, start: int, end: int, total: int) -> Json:
    next_link = prev_link = None
    if end < total:
        href = page_url(request, encode_token({"o": end}), "next")
        next_link = {"href": href, "type": LinkType.NEXT.value}
    if start > 0:
        before = max(0, start - parse_limit(request.query))
        href = page_url(request, encode_token({"o": before}), "prev")
        prev_link = {"href": href, "type": LinkType.PREV.value}
    return list_links(request, next_link, prev_link)


def _latest_status(request: web.Request) -> str | None:
    status = request.query.get("status")
    if status is not None and status not in LATEST_STATUSES:
        raise SimError(400, f"query parameter status: must be one of {list(LATEST_STATUSES)}")
    return status


async def get_execution(request: web.Request) -> web.Response:
    """GET /api/v1/sharing-tasks/{taskId}/executions/{executionId} (or `latest`)."""
    info = request.match_info
    _visible(request, info["taskId"])
    run = context(request).tenant.get_execution(
        info["taskId"], info["executionId"], _latest_status(request)
    )
    return json_response(_render_execution(run, request))


_CONTENT_TYPES: Mapping[str, str] = {
    TemplateSubType.IMAGE: "image/png",
    TemplateSubType.PDF: "application/pdf",
}


async def get_execution_file(request: web.Request) -> web.Response:
    """GET .../executions/{executionId}/files/{fileAlias}: the (simulated) report file."""
    info = request.match_info
    _visible(request, info["taskId"])
    run = context(request).tenant.get_execution(
        info["taskId"], info["executionId"], _latest_status(request)
    )
    for item in run.get("files", []):
        if item.get("fileAlias") == info["fileAlias"]:
            kind = str(item.get("type", TemplateSubType.PDF.value))
            body = f"simulated {kind} report {item.get('fileID', '')}\n".encode()
            return web.Response(
                body=body, content_type=_CONTENT_TYPES.get(kind, "application/octet-stream")
            )
    raise SimError(404, f"file {info['fileAlias']!r} not found in execution {run['id']!r}")


# -- settings ----------------------------------------------------------------------------


async def get_settings(request: web.Request) -> web.Response:
    """GET /api/v1/sharing-tasks/settings."""
    return json_response(context(request).tenant.settings)


async def patch_settings(request: web.Request) -> web.Response:
    """PATCH /api/v1/sharing-tasks/settings."""
    flags = parse_settings_patch(await read_json(request))
    context(request).tenant.replace_settings_flags(flags)
    return no_content()


async def put_settings(request: web.Request) -> web.Response:
    """PUT /api/v1/sharing-tasks/settings."""
    flags = parse_settings_put(await read_json(request))
    context(request).tenant.replace_settings_flags(flags)
    return no_content()


#: (method, path, handler) in registration order: fixed paths before {taskId}
ROUTES = (
    ("GET", _TASKS, list_tasks),
    ("POST", _TASKS, create_task),
    ("POST", f"{_TASKS}/actions/execute", execute_task),
    ("GET", f"{_TASKS}/settings", get_settings),
    ("PATCH", f"{_TASKS}/settings", patch_settings),
    ("PUT", f"{_TASKS}/settings", put_settings),
    ("GET", f"{_TASKS}/{{taskId}}", get_task),
    ("PATCH", f"{_TASKS}/{{taskId}}", patch_task),
    ("DELETE", f"{_TASKS}/{{taskId}}", delete_task),
    ("POST", f"{_TASKS}/{{taskId}}/actions/cancel", cancel_task),
    ("GET", f"{_TASKS}/{{taskId}}/executions", list_executions),
    ("GET", f"{_TASKS}/{{taskId}}/executions/{{executionId}}", get_execution),
    (
        "GET",
        f"{_TASKS}/{{taskId}}/executions/{{executionId}}/files/{{fileAlias}}",
        get_execution_file,
    ),
)
