"""The async HTTP client: bearer auth, tier budgets, retries, paging and the dry-run guard.

Every request to a tenant goes through `ApiClient`; it follows no redirect and sends nothing
off the configured origin or outside its `/api` (see `bulkshare.client.urls`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import orjson
import structlog
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulkshare.client.answers import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY_AFTER_CAP_S,
    read_bounded,
    retry_after,
)
from bulkshare.client.auth import Auth, OAuthClientCredentials
from bulkshare.client.budget import TierBudgets, WindowBudget
from bulkshare.client.failures import AnswerRefused, RequestFailed, shown
from bulkshare.client.paging import DEFAULT_MAX_PAGES, Page, PageGuard, next_href, total_count
from bulkshare.client.slots import Slots
from bulkshare.client.tiers import Tier, tier_for
from bulkshare.client.urls import ApiOrigin
from bulkshare.errors import DryRunViolation, TenantError

__all__ = ["ApiClient", "Page", "RequestFailed", "Response"]

log = structlog.get_logger("bulkshare.client")

_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 20.0

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
        retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._origin = ApiOrigin(base_url)
        self.base_url = str(self._origin.base)
        #: when true, anything but a read raises DryRunViolation before it is sent
        self.read_only = read_only
        self.budgets = budgets
        self.max_attempts = max_attempts
        self.requests_sent = 0
        #: the longest pause a 429's Retry-After may impose
        self.retry_after_cap_s = retry_after_cap_s
        #: pages one listing may take at most
        self.max_pages = max_pages
        #: the largest answer read; a larger one is refused while it streams in
        self.max_response_bytes = max_response_bytes
        self._auth = auth
        self._headers: dict[tuple[str, bool], CIMultiDictProxy[str]] = {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._slots = Slots(concurrency)
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
        """Send `method /api{path}` with retries; returns the final answer, whatever its status.

        RequestRefused before sending for a path that could leave its endpoint; AnswerRefused
        for a redirect (never followed) or an answer over the size limit.
        """
        return await self._request(
            method.upper(), self._url(path), path, params=params, json=json, settle=settle
        )

    def _url(self, path: str) -> URL:
        """`/api{path}` on the tenant, checked and encoded."""
        return self._origin.api_url(path)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a JSON document; RequestFailed on any non-2xx answer."""
        resp = await self.request("GET", path, params=params)
        return _ok_json(resp)

    async def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        key: str,
        *,
        method: str = "GET",
        json: Any = None,
        require_key: bool = False,
    ) -> AsyncIterator[Page]:
        """Each page's `key` list and totalCount, following `links.next.href` to the end.

        Every link must lead to the same endpoint on this origin; the walk stops with
        PagingStopped on a repeated link, an empty page that links on, more pages than
        totalCount allows, or `max_pages`. A followed page is requested as the first was
        (the users filter is a POST with the same body).
        """
        guard = PageGuard(f"{method} /api{path}", self.max_pages)
        url = self._url(path).with_query(_query(params))
        while True:
            guard.link(url)
            resp = await self._request(method, url, path, params=None, json=json, settle=None)
            doc = _ok_json(resp)
            page = _page_of(doc, key, resp, require_key)
            href = next_href(doc)
            guard.page(page, href is not None)
            yield page
            if href is None:
                return
            url = self._origin.link(href, path)

    async def follow(
        self, href: str, path: str, *, method: str = "GET", json: Any = None
    ) -> Response:
        """Request a link the service gave (a next page); `path` names its endpoint.

        RequestRefused, before anything is sent, for a link off this origin or to any other
        endpoint than `path`'s.
        """
        url = self._origin.link(href, path)
        return await self._request(method.upper(), url, path, params=None, json=json, settle=None)

    async def _request(
        self,
        method: str,
        url: URL,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        settle: Settle | None,
    ) -> Response:
        tier = tier_for(method, path)
        is_write = tier is Tier.TIER2  # the users filter is a POST that only reads
        if self.read_only and not self._origin.is_read(method, url, json):
            # judged on the URL itself, not on the `path` a caller named: no route around it
            raise DryRunViolation(f"dry run: refusing to send {method} {url.raw_path}")
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
            if 300 <= status < 400:
                if in_doubt and settle is not None and await settle():
                    return Response(200, b"", attempt, settled=True)
                raise _redirected(status, headers, attempt)
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
        url: URL,
        params: Mapping[str, Any] | None,
        json: Any,
        budget: WindowBudget,
    ) -> tuple[int, Mapping[str, str], bytes]:
        session = self._require_session()
        await self._slots.acquire()
        try:
            header = await self._auth.header()
            await self.budgets.pace(budget.tier)
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
                    allow_redirects=False,
                ) as resp:
                    body = await read_bounded(resp, self.max_response_bytes)
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
        asked = headers.get("Retry-After")
        seconds, clamped = retry_after(asked, time.time(), self.retry_after_cap_s)
        if clamped:
            log.warning(
                "retry-after-clamped",
                asked=shown(asked, 40),
                retry_after_s=seconds,
                cap_s=self.retry_after_cap_s,
                tier=budget.tier,
            )
        else:
            log.warning("rate-limited", retry_after_s=seconds, tier=budget.tier)
        budget.pause_for(seconds)

    async def _backoff(self, attempt: int) -> None:
        # full jitter: uniform in [0, min(cap, base * 2^attempt)]
        await self._sleep(self._rng.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))

    async def _post_token(self, body: Mapping[str, str]) -> tuple[int, Any]:
        """POST the client credentials to `{origin}/oauth/token`, and only there."""
        session = self._require_session()
        budget = self.budgets[Tier.TIER2]
        token = await budget.acquire()
        try:
            async with session.post(
                self._origin.token_url, json=dict(body), allow_redirects=False
            ) as resp:
                if 300 <= resp.status < 400:
                    raise _redirected(resp.status, resp.headers, 1)
                raw = await read_bounded(resp, self.max_response_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TenantError(
                f"{self.base_url}: token endpoint unreachable: {_describe(exc)}"
            ) from None
        except AnswerRefused as exc:
            raise TenantError(f"{self.base_url}: token endpoint: {exc.reason}") from None
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


def _page_of(doc: Any, key: str, resp: Response, require_key: bool) -> Page:
    items = doc.get(key, None if require_key else []) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RequestFailed(resp.status, f"list answer without a {key!r} list", resp.attempts)
    return Page(items, total_count(doc))


def _redirected(status: int, headers: Mapping[str, str], attempts: int) -> AnswerRefused:
    where = headers.get("Location")
    return AnswerRefused(
        status,
        f"the tenant redirected to {shown(where) if where else 'nowhere given'}; bulkshare "
        "never follows a redirect (is the tenant URL in the config right?)",
        attempts,
    )


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            out.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
