"""The `links` of list answers (tasks, executions, users): self, next and prev, written absolute,
relative or as a bare query as the config says, and an empty next on the last page if told so.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDict
from yarl import URL

from bulkshare.sim.context import context
from bulkshare.sim.rules import LinkStyle

__all__ = ["list_links", "page_url", "self_url"]

Json = dict[str, Any]

#: the query parameters that place a page; a link to another page drops them all
_PLACING = ("page", "next", "prev", "offset")


def _written(request: web.Request, url: URL) -> str:
    style = context(request).config.next_links
    if style is LinkStyle.ABSOLUTE:
        return str(url)
    relative = url.relative()
    if style is LinkStyle.RELATIVE:
        return str(relative)
    return f"?{relative.query_string}"


def self_url(request: web.Request) -> str:
    """This request's URL, in the configured link style."""
    return _written(request, request.url)


def page_url(request: web.Request, token: str, name: str = "page") -> str:
    """This request's URL moved to the page `token` names, in the configured link style."""
    query = MultiDict(request.query)
    for key in _PLACING:
        query.popall(key, None)
    query.add(name, token)
    return _written(request, request.url.with_query(query))


def list_links(request: web.Request, next_link: Json | None, prev_link: Json | None) -> Json:
    """The `links` object of a list page; the last page's next is {"href": ""} if so configured."""
    links: Json = {"self": {"href": self_url(request)}}
    if next_link is not None:
        links["next"] = next_link
    elif context(request).config.empty_last_next:
        links["next"] = {"href": ""}
    if prev_link is not None:
        links["prev"] = prev_link
    return links
