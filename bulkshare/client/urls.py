"""Where the client may send a request: the configured origin, under /api, and nowhere else.

Paths are checked and encoded here, and links the service gives are held to the same rule.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from yarl import URL

from bulkshare.client.failures import RequestRefused, shown
from bulkshare.vocab import USERS_FILTER_PATH

__all__ = ["ApiOrigin"]

#: a path that needs no percent-encoding and holds no dot-segment: joined as it is
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_~\-][A-Za-z0-9._~\-]*)+").fullmatch
#: what may stand in a path as it is: RFC 3986 pchar, "/" and existing %XX escapes
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
#: characters a path may not hold at all: "?" and "#" would end it, "\" is "/" to some servers
_PATH_FORBIDDEN = re.compile(r"[?#\\\x00-\x1f\x7f]").search
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})").search
#: a link from the service: visible ASCII only (a real next link is a URL with a cursor)
_LINK = re.compile(r"[\x21-\x7e]{1,8192}").fullmatch
_READS = frozenset({"GET", "HEAD"})


def _key(url: URL) -> tuple[str, str, int | None]:
    """What makes an origin: scheme, host and port (the default port when none is given)."""
    return url.scheme.lower(), (url.host or "").lower(), url.port


class ApiOrigin:
    """The one origin a client talks to, and the URLs under its `/api` it may request."""

    __slots__ = ("_api", "_key", "base", "token_url")

    def __init__(self, base_url: str) -> None:
        url = URL(base_url)
        if (
            url.scheme not in ("http", "https")
            or not url.host
            or url.user is not None
            or url.password is not None
            or url.raw_path not in ("", "/")
            or url.raw_query_string
            or url.raw_fragment
        ):
            raise ValueError("a tenant URL is scheme://host[:port] and nothing more")
        self.base = url.origin()
        self._key = _key(self.base)
        self._api = self.base.with_path("/api", encoded=True)
        #: the only place the OAuth client secret is ever sent
        self.token_url = self.base.with_path("/oauth/token", encoded=True)

    def __repr__(self) -> str:
        return f"<ApiOrigin {self.base}>"

    def api_url(self, path: str) -> URL:
        """`/api{path}` on this origin; RequestRefused for a path that could leave its endpoint."""
        if not _PLAIN_PATH(path):
            path = _checked_path(path)
        return self._api.with_path("/api" + path, encoded=True)

    def link(self, href: str, path: str) -> URL:
        """A link the service gave (a next page of `path`), resolved against `/api{path}`.

        It must stay on this origin and lead to the same endpoint: a next page of a list is
        that list again, so a link anywhere else is refused before anything is sent.
        """
        endpoint = self.api_url(path)
        if not isinstance(href, str) or not _LINK(href):
            raise RequestRefused(f"next-page link {shown(href)} is not a plain URL")
        try:
            url = endpoint.join(URL(href)).with_fragment(None)
        except (ValueError, TypeError):
            raise RequestRefused(f"next-page link {shown(href)} is not a URL") from None
        if _key(url) != self._key or url.user is not None or url.password is not None:
            raise RequestRefused(
                f"next-page link {shown(href)} points elsewhere (the tenant is {self.base})"
            )
        if url.raw_path.rstrip("/") != endpoint.raw_path:
            raise RequestRefused(
                f"next-page link {shown(href)} leaves {endpoint.raw_path} (a next page is the "
                "same endpoint)"
            )
        return url

    @staticmethod
    def is_read(method: str, url: URL, body: Any) -> bool:
        """True for a request that only reads: a GET, or exactly the users-filter POST."""
        if method in _READS:
            return True
        return (
            method == "POST"
            and url.raw_path == "/api" + USERS_FILTER_PATH
            and isinstance(body, dict)
            and set(body) == {"filter"}
            and isinstance(body["filter"], str)
        )


def _checked_path(path: str) -> str:
    """`path` as it goes on the wire: refused if it could reach another endpoint, else encoded."""
    if not path.startswith("/"):
        raise RequestRefused(f"path {shown(path)} does not start with '/'")
    if _PATH_FORBIDDEN(path) or _BAD_ESCAPE(path):
        raise RequestRefused(
            f"path {shown(path)} holds '?', '#', '\\', a control character or a bad %-escape"
        )
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise RequestRefused(f"path {shown(path)} holds a dot-segment")
    return quote(path, safe=_PATH_SAFE)
