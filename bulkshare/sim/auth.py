"""Bearer authentication and `POST /oauth/token` (client credentials), as the tenant does it.

An identity ("principal") is what the rate limiter counts per: the API key, or the OAuth client.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from bulkshare.sim.config import SimConfig
from bulkshare.sim.errors import SimError
from bulkshare.sim.ids import iso

__all__ = ["Authenticator", "client_principal", "credential_principals", "read_token_request"]


@dataclass(frozen=True, slots=True)
class _Issued:
    principal: str
    expires: float  # on the injected clock


class Authenticator:
    """Checks bearer tokens and issues OAuth access tokens."""

    __slots__ = ("_clock", "_issued", "config")

    def __init__(self, config: SimConfig, clock: Callable[[], float]) -> None:
        #: api_key, client_id/client_secret and token_ttl_s come from here
        self.config = config
        self._clock = clock
        self._issued: dict[str, _Issued] = {}

    def __repr__(self) -> str:
        mode = "api_key" if self.config.api_key else "any bearer"
        return f"<Authenticator accepts={mode!r} tokens={len(self._issued)}>"

    def principal(self, authorization: str | None) -> str:
        """Who a request's Authorization header identifies; 401 SimError if nobody."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise SimError(401, "missing or malformed Authorization: Bearer header")
        issued = self._issued.get(token)
        if issued is not None:
            if issued.expires <= self._clock():
                raise SimError(401, "access token expired")
            return issued.principal
        if self.config.api_key is None:
            return "bearer:" + _fingerprint(token)
        if secrets.compare_digest(token, self.config.api_key):
            return "apikey:" + _fingerprint(token)
        raise SimError(401, "invalid bearer token")

    def issue(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer a client-credentials token request (400 / 401 SimError if refused)."""
        if form.get("grant_type") != "client_credentials":
            raise SimError(400, 'grant_type must be "client_credentials"')
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id or not secret:
            raise SimError(400, "client_id and client_secret are required")
        if not self._client_ok(client_id, secret):
            raise SimError(401, "invalid client credentials")
        self._forget_expired()
        token = secrets.token_urlsafe(48)
        ttl = self.config.token_ttl_s
        self._issued[token] = _Issued(client_principal(client_id), self._clock() + ttl)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ttl,
            "expires_at": iso(time.time() + ttl),
        }

    def _client_ok(self, client_id: str, secret: str) -> bool:
        if self.config.client_id is None or self.config.client_secret is None:
            return True
        return secrets.compare_digest(client_id, self.config.client_id) and secrets.compare_digest(
            secret, self.config.client_secret
        )

    def _forget_expired(self) -> None:
        now = self._clock()
        for token in [t for t, i in self._issued.items() if i.expires <= now]:
            del self._issued[token]


def client_principal(client_id: str) -> str:
    """The identity of an OAuth client: its token requests and its calls share one budget."""
    return "client:" + client_id


def credential_principals(credential: str) -> tuple[str, ...]:
    """Every identity a credential can be: a bearer token (open or the API key), or a client."""
    fingerprint = _fingerprint(credential)
    return ("bearer:" + fingerprint, "apikey:" + fingerprint, client_principal(credential))


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


async def read_token_request(request: web.Request) -> dict[str, str]:
    """The fields of a token request sent as JSON or as a form; 400 SimError otherwise."""
    raw = await request.read()
    if request.content_type == "application/x-www-form-urlencoded":
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"))
        return dict(pairs)
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise SimError(400, "token request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SimError(400, "token request body must be a JSON object or a form")
    return {k: v for k, v in body.items() if isinstance(v, str)}
