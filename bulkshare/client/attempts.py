"""One request's attempts as `ApiClient` retries it: the tries counted against its limit, and
whether a write may have landed unanswered (then it is settled by reading before a resend).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bulkshare.client.failures import RequestFailed
from bulkshare.client.response import Response

__all__ = ["Attempts", "Settle"]

#: Asked before retrying a write whose first attempt may have landed; True means it did.
Settle = Callable[[], Awaitable[bool]]


@dataclass
class Attempts:
    """The attempts of one request so far (mutable: it lives inside one request's loop)."""

    max_attempts: int
    is_write: bool  #: only a write can be in doubt
    settle: Settle | None
    tries: int = 0  #: counted against max_attempts; a 429 is no failed try
    sends: int = 0
    in_doubt: bool = False
    refreshed: bool = False  #: the token was refreshed once after a 401
    reason: str = "no attempt made"
    status: int | None = None
    throttled_at: float | None = None  #: when this request met its first 429

    @property
    def left(self) -> bool:
        """Whether another try is allowed."""
        return self.tries < self.max_attempts

    async def landed(self) -> bool:
        """Whether an in-doubt write is found applied by reading (never asked otherwise)."""
        return self.in_doubt and self.settle is not None and await self.settle()

    def settled(self) -> Response:
        """The answer of a write found applied by reading."""
        return Response(200, b"", self.sends, settled=True)

    def lost(self, reason: str) -> None:
        """A try that got no answer: a write may have landed."""
        self.tries += 1
        self.in_doubt, self.status, self.reason = self.is_write, None, reason

    def server_error(self, status: int) -> None:
        """A 5xx answer (its try already counted): a write may have landed."""
        self.in_doubt, self.reason = self.is_write, f"server error {status}"

    def first_throttled(self, now: float) -> float:
        """When this request met its first 429, `now` if this is it."""
        if self.throttled_at is None:
            self.throttled_at = now
        return self.throttled_at

    def failed(self) -> RequestFailed:
        """The failure once no try is left."""
        return RequestFailed(
            self.status, f"{self.reason} after {self.max_attempts} attempts", self.sends
        )
