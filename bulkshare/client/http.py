"""The async HTTP client: bearer auth, tier budgets, retries, paging and the dry-run guard.

Every request to a tenant goes through `ApiClient`; it follows no redirect and sends nothing
off the configured origin or outside its `/api` (see `bulkshare.client.urls`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
from bulkshare.client.attempts import Attempts, Settle
from bulkshare.client.auth import Auth, OAuthClientCredentials
from bulkshare.client.budget import Halt, TierBudgets, WindowBudget
from bulkshare.client.failures import AnswerRefused, RequestFailed, shown
from bulkshare.client.paging import DEFAULT_MAX_PAGES, Page, PageGuard, next_href
from bulkshare.client.response import (
    Response,
    describe,
    ok_json,
    page_of,
    query_pairs,
    redirected,
)
from bulkshare.client.retries import backoff_s, throttled_too_long
from bulkshare.client.slots import Slots
from bulkshare.client.tiers import Tier, tier_for
from bulkshare.client.urls import ApiOrigin
from bulkshare.errors import DryRunViolation, TenantError

__all__ = ["ApiClient", "Page", "RequestFailed", "Response"]

log = structlog.get_logger("bulkshare.client")


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
        clock: Callable[[], float] = time.monotonic,
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
        self._clock = clock  # times how long one request has been throttled
        self._session: aiohttp.ClientSession | None = None
        self.halt = Halt()  #: once set, requests not yet sent are dropped (RequestDropped)
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
        return ok_json(resp)

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
        url = self._url(path).with_query(query_pairs(params))
        while True:
            guard.link(url)
            resp = await self._request(method, url, path, params=None, json=json, settle=None)
            doc = ok_json(resp)
            page = page_of(doc, key, resp, require_key)
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
        if self.read_only and not self._origin.is_read(method, url, json):
            # judged on the URL itself, not on the `path` a caller named: no route around it
            raise DryRunViolation(f"dry run: refusing to send {method} {url.raw_path}")
        budget = self.budgets[tier]
        # the users filter is a POST that only reads: only tier 2 writes
        at = Attempts(self.max_attempts, tier is Tier.TIER2, settle)
        while at.left:
            if await at.landed():
                return at.settled()
            at.sends += 1
            try:
                at.status, headers, body = await self._send(method, url, params, json, budget)
            except (aiohttp.ClientError, TimeoutError) as exc:
                at.lost(describe(exc))
                log.warning(
                    "request-retry", method=method, path=path, reason=at.reason, attempt=at.sends
                )
                await self._backoff(at.tries)
                continue
            answer = await self._judged(at, budget, headers, body, (method, path))
            if answer is not None:
                return answer
        if await at.landed():
            return at.settled()
        raise at.failed()

    async def _judged(
        self,
        at: Attempts,
        budget: WindowBudget,
        headers: Mapping[str, str],
        body: bytes,
        what: tuple[str, str],
    ) -> Response | None:
        """The final answer of one attempt, or None to try again (after any pause it needs)."""
        status = at.status
        assert status is not None
        if 300 <= status < 400:
            if await at.landed():
                return at.settled()
            raise redirected(status, headers, at.sends)
        if status == 429:
            # refused unseen: no failed try; paused, it waits its turn (retries.py bounds it)
            self._pause(budget, headers)
            now = self._clock()
            if failed := throttled_too_long(
                budget.window_s, at.first_throttled(now), now, at.sends
            ):
                raise failed
            return None
        at.tries += 1
        if status == 401 and not at.refreshed:
            at.refreshed, at.reason = True, "unauthorized (401)"
            await self._auth.invalidate()
            return None
        if status >= 500:
            at.server_error(status)
            method, path = what
            log.warning("request-retry", method=method, path=path, status=status, attempt=at.sends)
            await self._backoff(at.tries)
            return None
        return Response(status, body, at.sends)

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
            header = await self._auth.header()  # a token fetched waits for budget too
            token = await self._admitted(budget)
            try:
                self.requests_sent += 1
                return await self._transmit(session, method, url, params, json, header)
            finally:
                budget.release(token)
        finally:
            self._slots.release()

    async def _admitted(self, budget: WindowBudget) -> int:
        """Wait for the pace and the window's budget; a stop drops either wait (RequestDropped)."""
        if self.budgets.pacer is not None:
            await self.halt.before_sending(lambda: self.budgets.pace(budget.tier))
        return await budget.acquire(self.halt)  # a window's wait at worst

    async def _transmit(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        params: Mapping[str, Any] | None,
        json: Any,
        authorization: str,
    ) -> tuple[int, Mapping[str, str], bytes]:
        data = None if json is None else orjson.dumps(json)  # once, straight to bytes
        async with session.request(
            method,
            url,
            params=query_pairs(params) if params else None,
            data=data,
            headers=self._headers_for(authorization, data is not None),
            allow_redirects=False,
        ) as resp:
            body = await read_bounded(resp, self.max_response_bytes)
            return resp.status, resp.headers, body

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
        if attempt >= self.max_attempts:
            return  # no attempt follows: nothing to wait for
        delay = backoff_s(self._rng, attempt)  # full jitter; a stop ends the wait (not yet sent)
        await self.halt.before_sending(lambda: self._sleep(delay))

    async def _post_token(self, body: Mapping[str, str]) -> tuple[int, Any]:
        """POST the client credentials to `{origin}/oauth/token`, and only there."""
        session = self._require_session()
        budget = self.budgets[Tier.TIER2]
        token = await budget.acquire(self.halt)
        try:
            async with session.post(
                self._origin.token_url, json=dict(body), allow_redirects=False
            ) as resp:
                if 300 <= resp.status < 400:
                    raise redirected(resp.status, resp.headers, 1)
                raw = await read_bounded(resp, self.max_response_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TenantError(
                f"{self.base_url}: token endpoint unreachable: {describe(exc)}"
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
