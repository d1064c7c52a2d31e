"""The hostile-tenant harness: a tenant on a loopback port that each test scripts, and a second
origin beside it that records every request it receives — and must receive none, ever.

How to use it (the fixtures are `hostile`, `elsewhere`, `client_for` and `hostile_workdir`):

    async def test_x(hostile: Origin, elsewhere: Origin, client_for: ClientFor) -> None:
        hostile.on("GET", "/api/v1/sharing-tasks", task_list(tasks))   # a compliant list
        hostile.on("POST", "/oauth/token", redirect(elsewhere.url + "/steal"))
        hostile.otherwise(lambda request: Reply(500))                  # every other request
        async with client_for(hostile) as client:
            ...
        assert [s.path for s in hostile.seen] == [...]                  # what it received

- An answer is a `Reply` (status, headers, JSON or raw body), or a callable taking the
  aiohttp request and returning a `Reply` or any `web.StreamResponse` (sync or async): use one
  to count calls, answer differently each time, or stream (`stream(...)`); `request[BODY]`
  holds the body, already read.
- Routes match the method (or "*") and the *raw* path as it came on the wire (percent-encoding
  kept, no query), so a test sees exactly what the client sent. Unmatched requests get the
  `otherwise` answer: a 404 unless set; `forward_to(sim_url)` passes them to a real simulator,
  so a test scripts only the part that misbehaves.
- Every request either origin received is in its `seen` list (method, raw path, raw query,
  body, headers). `elsewhere` is autouse: after every test in this directory it must have
  received nothing, so no secret, token or write ever left for another origin.
- `hostile_workdir` is a config naming the hostile tenant as tenant `h` (API key in the env),
  for running the CLI as a process with `tests.conftest.bulkshare`.
- `GET /api/v1/users/me` answers an admin (`CALLER`) unless a test scripts it: it is the first
  request the CLI sends to a tenant.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson
import pytest
from aiohttp import web

from bulkshare.client import ApiClient, ApiKeyAuth, Tier, TierBudgets
from tests.conftest import Workdir
from tests.test_limits import FakeClock

#: the hostile tenant's API key, and the variable the workdir config names for it
HOSTILE_KEY = "hostile-key-7e2f91"
HOSTILE_KEY_ENV = "BULKSHARE_HOSTILE_KEY"

_NO_JSON = object()
#: where a scripted answer finds the request's body (`request[BODY]`), already read
BODY = web.RequestKey("body", bytes)
#: the path of the caller's own user, the CLI's first request to any tenant
ME = "/api/v1/users/me"
#: who the hostile tenant says the caller is, unless a test scripts ME: an admin
CALLER = {"id": "u-admin", "name": "Hostile Admin", "roles": ["TenantAdmin"]}


@dataclass(frozen=True)
class Reply:
    """A scripted answer: a status, headers, and a JSON document or raw bytes."""

    status: int = 200
    json: Any = _NO_JSON
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        if self.json is not _NO_JSON:
            return web.Response(
                status=self.status,
                body=orjson.dumps(self.json),
                content_type="application/json",
                headers=dict(self.headers),
            )
        return web.Response(status=self.status, body=self.body, headers=dict(self.headers))


Result = Reply | web.StreamResponse
Answer = Reply | Callable[[web.Request], Result | Awaitable[Result]]


@dataclass(frozen=True)
class Seen:
    """One request an origin received, as it came on the wire."""

    method: str
    path: str  #: the raw path, percent-encoding kept
    query: str  #: the raw query string
    body: bytes
    headers: Mapping[str, str]

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class Origin:
    """An aiohttp app on its own loopback port: answers as scripted, records every request."""

    def __init__(self) -> None:
        self.url = ""  #: scheme://127.0.0.1:port, once started
        self.seen: list[Seen] = []
        self._routes: dict[tuple[str, str], Answer] = {}
        self._otherwise: Answer = Reply(404, {"errors": [{"title": "Not found"}]})

    def __repr__(self) -> str:
        return f"<Origin {self.url} seen={len(self.seen)}>"

    def on(self, method: str, path: str, answer: Answer) -> None:
        """Answer `method path` (raw path, no query; method "*" for any) with `answer`."""
        self._routes[(method.upper(), path)] = answer

    def otherwise(self, answer: Answer) -> None:
        """Answer every request no route matches with `answer`."""
        self._otherwise = answer

    def requests(self, method: str | None = None, prefix: str = "") -> list[Seen]:
        """The requests received, of one method and under a raw path prefix if given."""
        return [
            s
            for s in self.seen
            if (method is None or s.method == method) and s.path.startswith(prefix)
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path, _, query = request.raw_path.partition("?")
        body = request[BODY] = await request.read()
        self.seen.append(Seen(request.method, raw_path, query, body, dict(request.headers)))
        answer = self._routes.get((request.method, raw_path)) or self._routes.get(
            ("*", raw_path), self._otherwise
        )
        result = answer(request) if callable(answer) else answer
        if inspect.isawaitable(result):
            result = await result
        return result.response() if isinstance(result, Reply) else result

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Origin]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


def redirect(to: str, status: int = 307) -> Reply:
    """A redirect to `to` (307 keeps the method and body: the most tempting one to follow)."""
    return Reply(status, {"moved": to}, headers={"Location": to})


def forward_to(target: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An answer that passes the request on to `target` (a simulator's URL) as it came, and
    its answer back."""

    async def answer(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                target + request.raw_path,
                data=await request.read(),
                headers=headers,
                allow_redirects=False,
            ) as resp,
        ):
            body = await resp.read()
            kept = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(status=resp.status, body=body, headers=kept)

    return answer


def stream(total: int, chunk: int = 1 << 16, *, declare_length: bool = False) -> Answer:
    """A 200 JSON answer that streams `total` bytes in `chunk`s (a list that never ends)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json"}
        if declare_length:
            headers["Content-Length"] = str(total)
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        await resp.write(b'{"sharingTasks": [')
        piece = b'{"id": "x"},' * (chunk // 12)
        sent = 0
        try:
            while sent < total:
                await resp.write(piece)
                sent += len(piece)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass  # the client hung up: what it should do
        return resp

    return answer


def make_tasks(n: int, prefix: str = "t") -> list[dict[str, Any]]:
    """`n` enabled tasks with ids `t0000`, `t0001`, ..."""
    return [{"id": f"{prefix}{i:04d}", "name": f"task {i}", "enabled": True} for i in range(n)]


NextLink = Callable[[web.Request, int], str | None]


def page_link(request: web.Request, start: int) -> str:
    """An absolute next link to the page that starts at `start` (how a well-behaved tenant
    links)."""
    return f"{request.url.origin()}/api/v1/sharing-tasks?limit=100&page={start}"


def task_list(
    tasks: Sequence[dict[str, Any]],
    *,
    total: int | Callable[[int], int | None] | None = int,  # int: the true count
    page_size: int = 100,
    next_link: NextLink = page_link,
) -> Callable[[web.Request], Reply]:
    """A list endpoint over `tasks`: offset and cursor (`page=`) paging, `page_size` a page.

    `total` is the totalCount to report (a number, None for none, or a function of the true
    count); `next_link(request, start)` gives the next-page link, or None for none.
    """

    def answer(request: web.Request) -> Reply:
        query = request.query
        start = int(query.get("offset") or query.get("page") or 0)
        size = min(page_size, int(query.get("limit", 100)))
        doc: dict[str, Any] = {"sharingTasks": list(tasks[start : start + size])}
        count = total(len(tasks)) if callable(total) else total
        if count is not None:
            doc["totalCount"] = count
        href = next_link(request, start + size) if start + size < len(tasks) else None
        if href is not None:
            doc["links"] = {"next": {"href": href}}
        return Reply(200, doc)

    return answer


def budgets() -> TierBudgets:
    """Budgets far above anything a test sends, on a fake clock (no test waits on them)."""
    clock = FakeClock()
    return TierBudgets.from_limits(
        {Tier.TIER1: 10**6, Tier.TIER2: 10**6, Tier.USERS_FILTER: 10**6},
        300.0,
        clock=clock,
        sleep=clock.sleep,
    )


async def no_wait(_: float) -> None:
    """Backoff that costs no test time."""


ClientFor = Callable[..., AbstractAsyncContextManager[ApiClient]]


@pytest.fixture(autouse=True)
async def elsewhere() -> AsyncIterator[Origin]:
    """The second origin, up for every test here: it records every request and answers each as
    a token endpoint would, to tempt a client; the test fails if it received anything."""
    origin = Origin()
    origin.otherwise(Reply(200, {"access_token": "stolen", "token_type": "bearer"}))
    async with origin.running():
        yield origin
    assert origin.seen == [], f"the second origin received {len(origin.seen)} requests"


@pytest.fixture
async def hostile() -> AsyncIterator[Origin]:
    """The tenant each test scripts (every unscripted request but ME: 404)."""
    origin = Origin()
    origin.on("GET", ME, Reply(200, CALLER))
    async with origin.running():
        yield origin


@pytest.fixture
def client_for() -> ClientFor:
    """`client_for(origin, **ApiClient options)`: a client of that origin, with the hostile
    key, ample budgets and no backoff waits."""

    def make(origin: Origin, **options: Any) -> ApiClient:
        options.setdefault("sleep", no_wait)
        options.setdefault("max_attempts", 3)
        return ApiClient(origin.url, ApiKeyAuth(HOSTILE_KEY), budgets(), **options)

    return make


@pytest.fixture
def hostile_workdir(tmp_path: Path, hostile: Origin) -> Workdir:
    """A config naming the hostile tenant as tenant `h`; `defaults` can be added to it."""
    config = tmp_path / "bulkshare.toml"
    write_config(config, hostile.url)
    env = {**os.environ, HOSTILE_KEY_ENV: HOSTILE_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Workdir(tmp_path, config, env)


def write_config(config: Path, url: str, defaults: str = "max_attempts = 2\n") -> None:
    """(Re)write a workdir's config: tenant `h` at `url`, with these `[defaults]` lines."""
    config.write_text(
        f'state_dir = "state"\n[defaults]\n{defaults}'
        f'[tenants.h]\nurl = "{url}"\napi_key_env = "{HOSTILE_KEY_ENV}"\n'
    )


#: a job that disables every task (one PATCH per enabled task)
DISABLE_ALL = '[job]\nname = "h"\n[[operations]]\naction = "disable"\nwhere.all = true\n'


def job_file(wd: Workdir, text: str = DISABLE_ALL, name: str = "h.toml") -> Path:
    """Write a job file into the workdir."""
    path = wd.path / name
    path.write_text(text)
    return path


def task_endpoints(tasks: Sequence[dict[str, Any]]) -> Callable[[web.Request], Reply]:
    """An `otherwise` answer serving the tasks one by one: GET, PATCH (replace/remove ops)
    and DELETE of `/api/v1/sharing-tasks/{id}` (the id percent-decoded from the raw path),
    `POST /api/v1/sharing-tasks/actions/execute`; anything else is a 404."""
    store = {t["id"]: dict(t) for t in tasks}
    prefix = "/api/v1/sharing-tasks/"

    def answer(request: web.Request) -> Reply:
        raw = request.raw_path.partition("?")[0]
        if request.method == "POST" and raw == prefix + "actions/execute":
            return Reply(201, {"id": "e1", "status": "queued"})
        rest = raw[len(prefix) :] if raw.startswith(prefix) else "/"
        task = store.get(unquote(rest)) if "/" not in rest else None
        if task is None:
            return Reply(404, {"errors": [{"title": "Not found"}]})
        if request.method == "GET":
            return Reply(200, task)
        if request.method == "DELETE":
            del store[task["id"]]
            return Reply(204)
        if request.method == "PATCH":
            return _patched(task, request)
        return Reply(405)

    return answer


def _patched(task: dict[str, Any], request: web.Request) -> Reply:
    for op in orjson.loads(request[BODY] or b"[]"):
        name = op["path"].lstrip("/")
        name = "owner" if name == "ownerId" else name
        if op["op"] == "remove":
            task.pop(name, None)
        else:
            task[name] = op["value"]
    return Reply(204)
