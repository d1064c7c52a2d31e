"""One origin: no redirect is followed, no link leaves the tenant's API, the OAuth secret goes
only to the configured token endpoint, and a URL with a password in it is refused."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web

from bulkshare import audit
from bulkshare.client import AnswerRefused, ApiClient, OAuthClientCredentials, RequestRefused
from bulkshare.errors import TenantError
from bulkshare.plan.listing import cursor_pages
from tests.conftest import Workdir, bulkshare, error_lines
from tests.hostile.conftest import (
    HOSTILE_KEY,
    ME,
    ClientFor,
    NextLink,
    Origin,
    Reply,
    budgets,
    job_file,
    make_tasks,
    no_wait,
    redirect,
    task_endpoints,
    task_list,
    write_config,
)

TASKS = "/api/v1/sharing-tasks"


def fixed_link(href: str) -> NextLink:
    """A next link that is always `href`."""

    def link(_request: web.Request, _start: int) -> str | None:
        return href

    return link


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirected_read_is_one_error_naming_the_location(
    hostile: Origin, elsewhere: Origin, client_for: ClientFor, status: int
) -> None:
    """A 3xx is never followed nor retried: one error that names where it pointed."""
    hostile.on("GET", TASKS, redirect(f"{elsewhere.url}/api/v1/sharing-tasks", status))
    async with client_for(hostile) as client:
        with pytest.raises(AnswerRefused) as info:
            await client.get_json("/v1/sharing-tasks", {"limit": 100})
    assert info.value.status == status
    assert f"redirected to '{elsewhere.url}/api/v1/sharing-tasks'" in info.value.reason
    assert len(hostile.seen) == 1


async def test_redirected_writes_are_recorded_failed_never_applied(
    hostile: Origin, elsewhere: Origin, hostile_workdir: Workdir
) -> None:
    """PATCH, DELETE and execute answered by 307s: each sent once, each recorded failed, exit 1."""
    tasks = make_tasks(3)
    hostile.on("GET", TASKS, task_list(tasks))
    to = redirect(f"{elsewhere.url}/api/v1/sharing-tasks/x")
    for method, path in (
        ("PATCH", f"{TASKS}/t0000"),
        ("DELETE", f"{TASKS}/t0001"),
        ("POST", f"{TASKS}/actions/execute"),
    ):
        hostile.on(method, path, to)
    hostile.otherwise(task_endpoints(tasks))
    job = job_file(
        hostile_workdir,
        '[job]\nname = "h"\n'
        '[[operations]]\naction = "disable"\nwhere.ids = ["t0000"]\n'
        '[[operations]]\naction = "delete"\nwhere.ids = ["t0001"]\n'
        '[[operations]]\naction = "execute"\nwhere.ids = ["t0002"]\n',
    )
    result = await bulkshare(hostile_workdir, "apply", str(job), "--yes")
    assert result.code == 1, result.err
    [log] = hostile_workdir.state.glob("runs/*/audit.jsonl")
    changes = [r for r in audit.read_records(log) if r["event"] == "change"]
    assert sorted(r["outcome"] for r in changes) == ["failed"] * 3
    assert all("redirected to" in r["error"] and r["http_status"] == 307 for r in changes)
    writes = [s for s in hostile.seen if s.method != "GET"]
    assert sorted((s.method, s.path) for s in writes) == [
        ("DELETE", f"{TASKS}/t0001"),
        ("PATCH", f"{TASKS}/t0000"),
        ("POST", f"{TASKS}/actions/execute"),
    ]


async def test_a_307_on_the_token_endpoint_sends_the_secret_nowhere(
    hostile: Origin, elsewhere: Origin
) -> None:
    """A redirected token request is one TenantError; the secret went only to /oauth/token."""
    hostile.on("POST", "/oauth/token", redirect(f"{elsewhere.url}/oauth/token"))
    auth = OAuthClientCredentials("cron", "s3cr3t-value", post=_unbound)
    async with ApiClient(hostile.url, auth, budgets(), sleep=no_wait) as client:
        with pytest.raises(TenantError, match="redirected to") as info:
            await client.request("GET", "/v1/sharing-tasks")
    assert "s3cr3t" not in str(info.value)
    [token_post] = hostile.seen  # the list itself was never asked for: there was no token
    assert (token_post.method, token_post.path) == ("POST", "/oauth/token")
    assert token_post.json["client_secret"] == "s3cr3t-value"


async def _unbound(_: object) -> tuple[int, object]:
    raise AssertionError("the client binds the token poster")


async def test_the_cli_with_a_redirected_token_endpoint_exits_4_in_one_line(
    hostile: Origin, elsewhere: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` with OAuth against a redirecting token endpoint: exit 4, one line, no secret."""
    hostile.on("POST", "/oauth/token", redirect(f"{elsewhere.url}/oauth/token", 308))
    hostile_workdir.config.write_text(
        f'state_dir = "state"\n[tenants.h]\nurl = "{hostile.url}"\n'
        'client_id = "cron"\nclient_secret_env = "H_SECRET"\n'
    )
    hostile_workdir.env["H_SECRET"] = "s3cr3t-value"
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "redirected to" in line and elsewhere.url in line
    assert "s3cr3t" not in result.err + result.out and "Traceback" not in result.err
    assert [(s.method, s.path) for s in hostile.seen] == [("POST", "/oauth/token")]


def off_links(hostile: Origin, elsewhere: Origin) -> list[str]:
    """Next links that leave the origin or the list endpoint, each one way."""
    here = hostile.url
    port = here.rsplit(":", 1)[1]
    return [
        f"{elsewhere.url}/api/v1/sharing-tasks?page=100",
        f"//127.0.0.1:{elsewhere.url.rsplit(':', 1)[1]}/api/v1/sharing-tasks?page=100",
        f"https://127.0.0.1:{port}/api/v1/sharing-tasks?page=100",
        f"http://localhost:{port}/api/v1/sharing-tasks?page=100",
        f"http://u:p@127.0.0.1:{port}/api/v1/sharing-tasks?page=100",
        "/api/v1/users/me",
        "/oauth/token",
        "../../oauth/token",
        "/api/v1/sharing-tasks/../users",
        "/api/v1/%2e%2e/v1/users",
        "/api/v1/sharing-tasks/t0000/actions/cancel",
        "actions/execute",
        f"{here}/v1/sharing-tasks?page=100",
        "javascript:alert(1)",
        "/api/v1/sharing-tasks?page=1 00",
        "/api/v1/sharing-tasks?page=\x1b[2J",
        "/api/v1/sharing-tasks?é=1",
    ]


async def test_next_links_off_the_origin_or_the_endpoint_are_refused_before_sending(
    hostile: Origin, elsewhere: Origin, client_for: ClientFor
) -> None:
    """Each link that leaves the origin or the list endpoint is refused; only page 1 was sent."""
    tasks = make_tasks(250)
    links = off_links(hostile, elsewhere)
    for href in links:
        hostile.seen.clear()
        hostile.on("GET", TASKS, task_list(tasks, next_link=fixed_link(href)))
        async with client_for(hostile) as client:
            with pytest.raises(RequestRefused, match="refused before sending") as info:
                async for _ in cursor_pages(client, {"limit": 100}):
                    pass
        assert "\x1b" not in str(info.value), href
        assert len(hostile.seen) == 1, (href, hostile.seen)


@pytest.mark.parametrize(
    "style",
    ["absolute", "query-only", "path-relative", "root-relative", "trailing-slash", "fragment"],
)
async def test_relative_next_links_on_the_endpoint_are_followed(
    hostile: Origin, client_for: ClientFor, style: str
) -> None:
    """Absolute, `?page=`, path-relative and root-relative next links all reach every task."""
    tasks = make_tasks(250)

    def link(request: object, start: int) -> str:
        return {
            "absolute": f"{hostile.url}/api/v1/sharing-tasks?limit=100&page={start}",
            "query-only": f"?limit=100&page={start}",
            "path-relative": f"sharing-tasks?limit=100&page={start}",
            "root-relative": f"/api/v1/sharing-tasks?page={start}",
            "trailing-slash": f"/api/v1/sharing-tasks/?page={start}",
            "fragment": f"?page={start}#frag",
        }[style]

    hostile.on("GET", TASKS, task_list(tasks, next_link=link))
    hostile.on("GET", TASKS + "/", task_list(tasks, next_link=link))
    async with client_for(hostile) as client:
        listed = [
            t["id"] async for page in cursor_pages(client, {"limit": 100}) for t in page.items
        ]
    assert listed == [t["id"] for t in tasks]
    assert len(hostile.seen) == 3


async def test_a_next_link_elsewhere_fails_the_plan_with_exit_4(
    hostile: Origin, elsewhere: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` against a tenant whose next link points elsewhere: exit 4 in one line."""
    href = f"{elsewhere.url}/api/v1/sharing-tasks?page=100"
    hostile.on("GET", TASKS, task_list(make_tasks(250), total=None, next_link=lambda _r, _s: href))
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "points elsewhere" in line and "refused before sending" in line
    assert HOSTILE_KEY not in result.err


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:hunter2-pw@acme.eu.qlikcloud.com",
        "https://admin@acme.eu.qlikcloud.com",
        "https://:hunter2-pw@acme.eu.qlikcloud.com",
        "http://admin:hunter2-pw@127.0.0.1:8080",
    ],
)
async def test_a_url_with_userinfo_is_refused_at_load_without_its_password(
    hostile: Origin, hostile_workdir: Workdir, url: str
) -> None:
    """A tenant URL with a user or password: exit 2, one line naming the key, no password."""
    write_config(hostile_workdir.config, url)
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 2, result.err
    [line] = result.err.strip().splitlines()
    assert "tenants.h.url" in line and "user or password" in line
    assert "hunter2" not in result.err + result.out
    assert hostile.seen == []


async def test_the_token_goes_to_the_configured_origin_only(
    hostile: Origin, client_for: ClientFor
) -> None:
    """A working OAuth exchange: the token request and the read both go to the tenant itself."""
    hostile.on("POST", "/oauth/token", Reply(200, {"access_token": "tok-1", "expires_at": None}))
    hostile.on("GET", TASKS, task_list(make_tasks(3)))
    auth = OAuthClientCredentials("cron", "s3cr3t-value", post=_unbound)
    async with ApiClient(hostile.url, auth, budgets(), sleep=no_wait) as client:
        doc = await client.get_json("/v1/sharing-tasks")
    assert len(doc["sharingTasks"]) == 3
    assert [(s.method, s.path) for s in hostile.seen] == [("POST", "/oauth/token"), ("GET", TASKS)]
    assert hostile.seen[1].headers["Authorization"] == "Bearer tok-1"
    assert orjson.loads(hostile.seen[0].body)["client_id"] == "cron"


async def test_a_redirected_probe_exits_4_naming_the_location(
    hostile: Origin, elsewhere: Origin, hostile_workdir: Workdir
) -> None:
    """A front end that redirects every request: `plan` exits 4 in one line naming where to."""
    hostile.otherwise(redirect(f"{elsewhere.url}/login?next=/api", 302))
    hostile.on("GET", ME, redirect(f"{elsewhere.url}/login?next=/api", 302))  # the probe too
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert f"HTTP 302: the tenant redirected to '{elsewhere.url}/login?next=/api'" in line
    assert "never follows a redirect" in line
    assert len(hostile.seen) == 1
