"""The ways a request can fail in the client, from "no usable answer" to "refused before sending".

Every one is a RequestFailed, so callers that judge a failed request need only catch that.
"""

from __future__ import annotations

__all__ = ["AnswerRefused", "PagingStopped", "RequestFailed", "RequestRefused", "shown"]


class RequestFailed(Exception):
    """A request that did not get a usable answer within its attempts."""

    def __init__(self, status: int | None, reason: str, attempts: int) -> None:
        self.status = status
        self.reason = reason
        self.attempts = attempts
        super().__init__(f"HTTP {status}: {reason}" if status else reason)


class RequestRefused(RequestFailed):
    """Refused before sending: the URL would leave the tenant's origin or its API, or a dry run
    was asked for a write through a route that is not a request."""

    def __init__(self, reason: str) -> None:
        super().__init__(None, f"refused before sending: {reason}", 0)


class AnswerRefused(RequestFailed):
    """An answer bulkshare will not use and does not retry: a redirect, or one over the size
    limit."""


class PagingStopped(RequestFailed):
    """A paged listing that would not end, or ends in a way that cannot be right."""

    def __init__(self, reason: str, attempts: int = 1) -> None:
        super().__init__(None, f"paging stopped: {reason}", attempts)


def shown(text: object, limit: int = 120) -> str:
    """Text from the tenant, quoted for a message: escaped to ASCII (no control characters)
    and cut to `limit` characters."""
    quoted = ascii(str(text))
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "...'"
