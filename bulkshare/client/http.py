"""The async HTTP client: bearer auth, tier budgets, retries, paging and the dry-run guard.

Every request to a tenant goes through `ApiClient.request`; nothing else opens a connection.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
import orjson
import structlog
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulkshare.client.auth import Auth, OAuthClientCredentials
from bulkshare.client.budget import TierBudgets, WindowBudget
from bulkshare.client.tiers import Tier, tier_for
from bulkshare.errors import DryRunViolation, TenantError

__all__ = ["ApiClient", "RequestFailed", "Response"]

log = structlog.get_logger("bulkshare.client")

_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 20.0
#: a path that needs no percent-encoding and no dot-segment handling: joined as it is
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_~\-][A-Za-z0-9._~\-]*)+").fullmatch

#: Asked before retrying a write whose first attempt may have landed; True means it did.
Settle = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Response:
    """A final answer from the service (any status the caller must judge itself)."""

    status: int
    body: bytes
    attempts: int
    settled: bool = False  #: an in-doubt write was found applied by reading, not by its answer

    def json(self) -> Any:
        """The body as JSON; RequestFailed if it is not JSON."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            raise RequestFailed(
                self.status, "malformed JSON in the answer", self.attempts
            ) from None


class RequestFailed(Exception):
    """A request that did not get a usable answer within its attempts."""

    def __init__(self, status: int | None, reason: str, attempts: int) -> None:
        self.status = status
        self.reason = reason
        self.attempts = attempts
        super().__init__(f"HTTP {status}: {reason}" if status else reason)


class ApiClient:
    """One tenant's client: use as `async with ApiClient(...) as client`."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        budgets: TierBudgets,
        *,
        concurrency: int = 16,
        max_attempts: int = 6,
        timeout_s: float = 30.0,
        read_only: bool = False,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: when true, any write raises DryRunViolation before it is sent
        self.read_only = read_only
        self.budgets = budgets
        self.max_attempts = max_attempts
        self.requests_sent = 0
        self._auth = auth
        self._origin = _origin(self.base_url)
        self._api = URL(self.base_url + "/api")
        self._headers: dict[tuple[str, bool], CIMultiDictProxy[str]] = {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._slots = _Slots(concurrency)
        self._concurrency = concurrency
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        if isinstance(auth, OAuthClientCredentials):
            auth.bind(self._post_token)

    def __repr__(self) -> str:
        return f"<ApiClient {self.base_url} read_only={self.read_only} sent={self.requests_sent}>"

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self._concurrency + 2)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            json_serialize=lambda o: orjson.dumps(o).decode(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def throttled(self) -> int:
        """429 answers seen so far."""
        return self.budgets.throttled

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        settle: Settle | None = None,
    ) -> Response:
        """Send `method /api{path}` with retries; returns the final answer, whatever its status."""
        return await self._request(
            method.upper(), self._url(path), path, params=params, json=json, settle=settle
        )

    def _url(self, path: str) -> URL | str:
        """`/api{path}` on the tenant; a plain path skips yarl's parsing and encoding."""
        if _PLAIN_PATH(path):
            return self._api.with_path(self._api.raw_path + path, encoded=True)
        return self.base_url + "/api" + path

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a JSON document; RequestFailed on any non-2xx answer."""
        resp = await self.request("GET", path, params=params)
        return _ok_json(resp)

    async def pages(
        self, path: str, params: Mapping[str, Any], key: str
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page's `key` list, following `links.next.href` until it is absent."""
        resp = await self.request("GET", path, params=params)
        while True:
            doc = _ok_json(resp)
            if not isinstance(doc, dict) or not isinstance(doc.get(key, []), list):
                raise RequestFailed(
                    resp.status, f"list answer without a {key!r} list", resp.attempts
                )
            yield list(doc.get(key) or [])
            href = _next_href(doc)
            if href is None:
                return
            resp = await self.follow(href, path)

    async def follow(
        self, href: str, path: str, *, method: str = "GET", json: Any = None
    ) -> Response:
        """Request a link the service gave (a next page); `path` names its endpoint's tier."""
        if _origin(href) != self._origin:
            # never send our bearer token to another host
            raise RequestFailed(None, f"next page link points elsewhere: {href}", 1)
        return await self._request(method, href, path, params=None, json=json, settle=None)

    async def _request(
        self,
        method: str,
        url: URL | str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        settle: Settle | None,
    ) -> Response:
        tier = tier_for(method, path)
        is_write = tier is Tier.TIER2  # the users filter is a POST that only reads
        if is_write and self.read_only:
            raise DryRunViolation(f"dry run: refusing to send {method} {path}")
        budget = self.budgets[tier]
        in_doubt = False
        refreshed = False
        reason = "no attempt made"
        status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            if in_doubt and settle is not None and await settle():
                return Response(200, b"", attempt - 1, settled=True)
            try:
                status, headers, body = await self._send(method, url, params, json, budget)
            except (aiohttp.ClientError, TimeoutError) as exc:
                in_doubt, status, reason = is_write, None, _describe(exc)
                log.warning(
                    "request-retry", method=method, path=path, reason=reason, attempt=attempt
                )
                await self._backoff(attempt)
                continue
            if status == 429:
                reason = "rate limited (429)"
                self._pause(budget, headers)
                continue
            if status == 401 and not refreshed:
                refreshed, reason = True, "unauthorized (401)"
                await self._auth.invalidate()
                continue
            if status >= 500:
                in_doubt, reason = is_write, f"server error {status}"
                log.warning(
                    "request-retry", method=method, path=path, status=status, attempt=attempt
                )
                await self._backoff(attempt)
                continue
            return Response(status, body, attempt)
        if in_doubt and settle is not None and await settle():
            return Response(200, b"", self.max_attempts, settled=True)
        raise RequestFailed(
            status, f"{reason} after {self.max_attempts} attempts", self.max_attempts
        )

    async def _send(
        self,
        method: str,
        url: URL | str,
        params: Mapping[str, Any] | None,
        json: Any,
        budget: WindowBudget,
    ) -> tuple[int, Mapping[str, str], bytes]:
        session = self._require_session()
        await self._slots.acquire()
        try:
            header = await self._auth.header()
            token = await budget.acquire()
            try:
                self.requests_sent += 1
                data = None if json is None else orjson.dumps(json)  # once, straight to bytes
                async with session.request(
                    method,
                    url,
                    params=_query(params) if params else None,
                    data=data,
                    headers=self._headers_for(header, data is not None),
                ) as resp:
                    body = await resp.read()
                    return resp.status, resp.headers, body
            finally:
                budget.release(token)
        finally:
            self._slots.release()

    def _headers_for(self, authorization: str, has_body: bool) -> CIMultiDictProxy[str]:
        """The request headers, built once per token (aiohttp takes a multidict as it is)."""
        key = (authorization, has_body)
        headers = self._headers.get(key)
        if headers is None:
            if len(self._headers) >= 4:  # a refreshed token: forget the old one
                self._headers.clear()
            built = CIMultiDict(Authorization=authorization)
            if has_body:
                built["Content-Type"] = "application/json"
            headers = self._headers[key] = CIMultiDictProxy(built)
        return headers

    def _pause(self, budget: WindowBudget, headers: Mapping[str, str]) -> None:
        retry_after = _retry_after(headers.get("Retry-After"))
        log.warning("rate-limited", retry_after_s=retry_after)
        budget.pause_for(retry_after)

    async def _backoff(self, attempt: int) -> None:
        # full jitter: uniform in [0, min(cap, base * 2^attempt)]
        await self._sleep(self._rng.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))

    async def _post_token(self, body: Mapping[str, str]) -> tuple[int, Any]:
        session = self._require_session()
        budget = self.budgets[Tier.TIER2]
        token = await budget.acquire()
        try:
            async with session.post(self.base_url + "/oauth/token", json=dict(body)) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TenantError(
                f"{self.base_url}: token endpoint unreachable: {_describe(exc)}"
            ) from None
        finally:
            budget.release(token)
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, None

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ApiClient used outside 'async with'")
        return self._session


class _Slots:
    """Requests in flight, at most `n`: a semaphore whose free path is a counter.

    (asyncio's scans its waiters on every acquire.) Waiters are served first come, first served;
    a released slot goes straight to the next live waiter.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return f"<_Slots free={self._free} waiting={len(self._waiters)}>"

    async def acquire(self) -> None:
        if self._free > 0:  # only ever with no one waiting: release hands slots over first
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # skip waiters that were cancelled
                waiter.set_result(None)
                return
        self._free += 1


def _ok_json(resp: Response) -> Any:
    if not 200 <= resp.status < 300:
        raise RequestFailed(resp.status, _error_detail(resp.body), resp.attempts)
    return resp.json()


def _error_detail(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
        first = doc["errors"][0]
        return f"{first.get('title', '')}: {first.get('detail', '')}".strip(": ")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return "unexpected answer"


def _next_href(doc: dict[str, Any]) -> str | None:
    links = doc.get("links")
    if not isinstance(links, dict):
        return None
    nxt = links.get("next")
    href = nxt.get("href") if isinstance(nxt, dict) else None
    return href if isinstance(href, str) and href else None


def _retry_after(value: str | None) -> float:
    try:
        return max(1.0, math.ceil(float(value))) if value else 1.0
    except ValueError:
        return 1.0


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            out.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return out


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
