"""Bearer credentials: an API key from the environment, or OAuth2 client credentials.

Tokens and secrets stay inside these objects; their reprs never show them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from bulkshare.config import TenantConfig
from bulkshare.errors import ConfigError, TenantError

__all__ = ["ApiKeyAuth", "Auth", "OAuthClientCredentials", "auth_for"]

#: POST {tenant}/oauth/token with a JSON body; returns (status, parsed JSON or None).
TokenPoster = Callable[[Mapping[str, str]], Awaitable[tuple[int, Any]]]

_REFRESH_MARGIN_S = 300.0  # refresh this long before expires_at, or at 90 % of a short life
#: the life given a token whose expires_at is missing, unparseable or already past: short, so
#: a wrong clock on either side costs one token request per few minutes, not one per request
FALLBACK_LIFETIME_S = 300.0
#: what an access token may look like: it goes into a header as it is
_TOKEN = re.compile(r"[\x21-\x7e]{1,16384}").fullmatch


class Auth(Protocol):
    """Supplies the Authorization header; may refresh on demand."""

    async def header(self) -> str: ...

    async def invalidate(self) -> None: ...


class ApiKeyAuth:
    """A static bearer key (an API key, or the simulator's token)."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "<ApiKeyAuth key=***>"

    async def header(self) -> str:
        return f"Bearer {self._key}"

    async def invalidate(self) -> None:
        """An API key cannot be refreshed; the caller reports the 401."""


class OAuthClientCredentials:
    """Client-credentials tokens, cached and refreshed before they expire."""

    __slots__ = (
        "_client_id",
        "_lock",
        "_post",
        "_refresh_at",
        "_secret",
        "_token",
        "clock",
        "fetches",
    )

    def __init__(
        self, client_id: str, secret: str, post: TokenPoster, clock: Callable[[], float] = time.time
    ) -> None:
        self._client_id = client_id
        self._secret = secret
        self._post = post
        self._token: str | None = None
        self._refresh_at = 0.0
        self.fetches = 0
        self._lock = asyncio.Lock()
        #: wall clock, seconds since the epoch (expires_at is wall time)
        self.clock = clock

    def __repr__(self) -> str:
        return f"<OAuthClientCredentials client_id={self._client_id} token=***>"

    def bind(self, post: TokenPoster) -> None:
        """Set how to reach the token endpoint (the HTTP client does, once it exists)."""
        self._post = post

    async def header(self) -> str:
        async with self._lock:
            if self._token is None or self.clock() >= self._refresh_at:
                await self._fetch()
            return f"Bearer {self._token}"

    async def invalidate(self) -> None:
        """Forget the token so the next header() fetches a new one (after a 401)."""
        async with self._lock:
            self._token = None

    async def _fetch(self) -> None:
        body = {
            "client_id": self._client_id,
            "client_secret": self._secret,
            "grant_type": "client_credentials",
        }
        status, data = await self._post(body)
        self._token, expires_at = self._accept(status, data)
        now = self.clock()
        expires = _parse_expiry(expires_at, now)
        self._refresh_at = expires - min(_REFRESH_MARGIN_S, 0.1 * max(0.0, expires - now))
        #: token requests made so far
        self.fetches += 1

    def _accept(self, status: int, data: Any) -> tuple[str, Any]:
        """(access token, expires_at) of a token answer; TenantError for any other answer."""
        if status != 200:
            raise TenantError(
                f"OAuth token request refused (HTTP {status}) for client {self._client_id}"
            )
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not _TOKEN(token):
            raise TenantError(
                "OAuth token endpoint answered HTTP 200 without a usable access_token "
                f"for client {self._client_id}"
            )
        return token, data.get("expires_at") if isinstance(data, dict) else None


def _parse_expiry(value: Any, now: float) -> float:
    """When the token expires; a short fixed life when `expires_at` cannot be trusted."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)  # the service writes UTC
            expires = when.timestamp()
        except (ValueError, OverflowError, OSError):
            expires = 0.0
        if expires > now + 1.0:
            return expires
    # unknown, or already past (a skewed clock): refresh on 401 as ever, and in a while
    return now + FALLBACK_LIFETIME_S


async def _no_poster(_: Mapping[str, str]) -> tuple[int, Any]:
    raise RuntimeError("token endpoint not bound")


def auth_for(tenant: TenantConfig, env: Mapping[str, str]) -> Auth:
    """Build the tenant's Auth from the environment variables its config names."""
    creds = tenant.credentials
    if tenant.is_builtin_sim:
        return ApiKeyAuth("bulkshare-builtin-sim")
    if creds.api_key_env:
        return ApiKeyAuth(_env(creds.api_key_env, tenant.name, env))
    if creds.client_id and creds.client_secret_env:
        secret = _env(creds.client_secret_env, tenant.name, env)
        return OAuthClientCredentials(creds.client_id, secret, _no_poster)
    raise ConfigError(f"tenant {tenant.name}: no credentials configured")


def _env(var: str, tenant: str, env: Mapping[str, str]) -> str:
    value = env.get(var)
    if not value:
        raise ConfigError(f"tenant {tenant}: environment variable {var} is not set or empty")
    return value
