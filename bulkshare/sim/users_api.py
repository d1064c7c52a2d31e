"""Handlers of the users read subset, `POST /oauth/token` and the product-info probe.

Users list and filter answer `{"data": [...], "links": {...}}` with `next` cursor links.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from bulkshare.sim.auth import read_token_request
from bulkshare.sim.callers import render_me
from bulkshare.sim.context import CALLER_KEY, base_url, context, json_response, read_json
from bulkshare.sim.errors import SimError
from bulkshare.sim.links import list_links, page_url
from bulkshare.sim.listing import decode_token, encode_token, parse_bool, parse_limit
from bulkshare.sim.scim import UserFilter, parse_filter
from bulkshare.sim.vocab import USER_SORTS, USERS_FILTER_SORTS, UserSort

__all__ = ["ROUTES"]

Json = dict[str, Any]

_USERS = "/api/v1/users"
_MAX_FILTER_IDS = 100
_DEPRECATED_EQ = ("status", "email", "subject", "tenantId")
_PRODUCT_INFO = {
    "composition": {
        "contentHash": "0000000000000000000000000000000000000000",
        "senseId": "qliksenseserver:14.200.0",
        "releaseLabel": "bulkshare-sim",
        "version": "sim",
        "provider": "bulkshare",
    },
    "externalUrls": {},
}


def _render_user(user: Json, base: str) -> Json:
    return {**user, "links": {"self": {"href": f"{base}{_USERS}/{user['id']}"}}}


def _sort_key(raw: str, allowed: tuple[str, ...]) -> tuple[Callable[[Json], str], bool]:
    name = raw.lstrip("+-")
    if name not in allowed:
        raise SimError(400, f"query parameter sort: {raw!r} is not supported")
    field = UserSort.ID.value if name == UserSort.LEGACY_ID else name
    return (lambda u: str(u.get(field) or "")), raw.startswith("-")


def _offset(request: web.Request) -> int:
    if "next" in request.query and "prev" in request.query:
        raise SimError(400, "next and prev cannot be used together")
    token = request.query.get("next") or request.query.get("prev")
    if not token:
        return 0
    payload = decode_token(token)
    offset = payload.get("o") if isinstance(payload, dict) else None
    if not isinstance(offset, int) or offset < 0:
        raise SimError(400, "invalid page cursor")
    return offset


def _users_page(request: web.Request, users: list[Json], sort_names: tuple[str, ...]) -> Json:
    key, reverse = _sort_key(request.query.get("sort", f"+{UserSort.NAME}"), sort_names)
    users = sorted(users, key=lambda u: (key(u), u["id"]), reverse=reverse)
    limit, start = parse_limit(request.query), _offset(request)
    end = min(len(users), start + limit)
    next_link = prev_link = None
    if end < len(users):
        next_link = {"href": page_url(request, encode_token({"o": end}), "next")}
    if start > 0:
        prev_link = {"href": page_url(request, encode_token({"o": max(0, start - limit)}), "prev")}
    links = list_links(request, next_link, prev_link)
    base = base_url(request)
    return {"data": [_render_user(u, base) for u in users[start:end]], "links": links}


def _query_filter(request: web.Request) -> UserFilter | None:
    text = request.query.get("filter")
    return parse_filter(text) if text else None


def _deprecated_match(request: web.Request, user: Json) -> bool:
    return all(user.get(k) == request.query[k] for k in _DEPRECATED_EQ if k in request.query)


async def list_users(request: web.Request) -> web.Response:
    """GET /api/v1/users (SCIM `filter`, cursor paging)."""
    wanted = _query_filter(request)
    users = [
        u
        for u in context(request).tenant.users.values()
        if (wanted is None or wanted(u)) and _deprecated_match(request, u)
    ]
    body = _users_page(request, users, USER_SORTS)
    raw_total = request.query.get("totalResults")
    if raw_total is not None and parse_bool("totalResults", raw_total):
        body["totalResults"] = len(users)
    return json_response(body)


async def get_me(request: web.Request) -> web.Response:
    """GET /api/v1/users/me: the user the caller acts as, with its roles."""
    tenant = context(request).tenant
    me = render_me(request[CALLER_KEY], tenant.users, tenant.tenant_id, base_url(request))
    return json_response(me)


async def get_user(request: web.Request) -> web.Response:
    """GET /api/v1/users/{userId}."""
    user = context(request).tenant.get_user(request.match_info["userId"])
    return json_response(_render_user(user, base_url(request)))


async def _filter_body(request: web.Request) -> UserFilter | None:
    if not (await request.read()).strip():
        return None
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) - {"filter"}:
        raise SimError(400, 'request body must be {"filter": "<SCIM filter>"}')
    text = body.get("filter")
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise SimError(400, "filter must be a string")
    parsed = parse_filter(text)
    if len(parsed.ids) > _MAX_FILTER_IDS:
        raise SimError(
            400, f"filter has {len(parsed.ids)} ids; at most {_MAX_FILTER_IDS} are allowed"
        )
    return parsed


async def filter_users(request: web.Request) -> web.Response:
    """POST /api/v1/users/actions/filter with {"filter": "..."}."""
    wanted = await _filter_body(request)
    users = [u for u in context(request).tenant.users.values() if wanted is None or wanted(u)]
    return json_response(_users_page(request, users, USERS_FILTER_SORTS))


async def issue_token(request: web.Request) -> web.Response:
    """POST /oauth/token (client credentials)."""
    form = await read_token_request(request)
    return json_response(context(request).auth.issue(form))


async def product_info(request: web.Request) -> web.Response:
    """GET /resources/autogenerated/product-info.json (no authentication)."""
    return json_response(_PRODUCT_INFO)


#: (method, path, handler) of the users subset and the tenant-level endpoints
ROUTES = (
    ("GET", _USERS, list_users),
    ("POST", f"{_USERS}/actions/filter", filter_users),
    ("GET", f"{_USERS}/me", get_me),  # before {userId}, which "me" would match
    ("GET", f"{_USERS}/{{userId}}", get_user),
    ("POST", "/oauth/token", issue_token),
    ("GET", "/resources/autogenerated/product-info.json", product_info),
)
