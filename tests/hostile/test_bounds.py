"""Bounded answers: paging that cannot end is stopped with one error, and an answer over the
size limit is refused while it streams in, with memory bounded."""

from __future__ import annotations

import gzip
import tracemalloc
from typing import Any

import pytest
from aiohttp import web

from bulkshare.client import AnswerRefused, PagingStopped
from bulkshare.plan.listing import Listing, cursor_pages, offset_pages
from tests.conftest import Workdir, bulkshare, error_lines
from tests.hostile.conftest import (
    ClientFor,
    Origin,
    Reply,
    job_file,
    make_tasks,
    stream,
    task_list,
    write_config,
)

TASKS = "/api/v1/sharing-tasks"
MiB = 2**20


async def walk(client: Any, params: dict[str, Any] | None = None) -> list[str]:
    """Every id a cursor walk of the list gives."""
    pages = cursor_pages(client, params or {"limit": 100})
    return [t["id"] async for page in pages for t in page.items]


def pages_of(docs: list[dict[str, Any]]) -> Any:
    """A list answer giving these documents in turn, the last one for ever after."""
    served: list[int] = []

    def answer(_request: web.Request) -> Reply:
        doc = docs[min(len(served), len(docs) - 1)]
        served.append(1)
        return Reply(200, doc)

    return answer


async def test_a_next_link_to_itself_stops_at_once(hostile: Origin, client_for: ClientFor) -> None:
    """A page linking to itself is one PagingStopped, after one request."""
    doc = {"sharingTasks": make_tasks(100), "links": {"next": {"href": "?limit=100"}}}
    hostile.on("GET", TASKS, Reply(200, doc))
    async with client_for(hostile) as client:
        with pytest.raises(PagingStopped, match="links back to an earlier page"):
            await walk(client)
    assert len(hostile.seen) == 1


async def test_a_cycle_of_next_links_stops_when_it_comes_round(
    hostile: Origin, client_for: ClientFor
) -> None:
    """Pages A -> B -> A: stopped before A is asked for again."""
    tasks = make_tasks(200)

    def answer(request: web.Request) -> Reply:
        at = request.query.get("page", "a")
        nxt, part = ("b", tasks[:100]) if at == "a" else ("a", tasks[100:])
        return Reply(200, {"sharingTasks": part, "links": {"next": {"href": f"?page={nxt}"}}})

    hostile.on("GET", TASKS, answer)
    async with client_for(hostile) as client:
        with pytest.raises(PagingStopped, match="links back"):
            await walk(client, {"page": "a"})
    assert [s.query for s in hostile.seen] == ["page=a", "page=b"]


async def test_an_empty_page_that_links_on_stops(hostile: Origin, client_for: ClientFor) -> None:
    """An empty page with a next link (fresh cursors for ever) stops at the first one."""
    counter = iter(range(10**6))

    def answer(_request: web.Request) -> Reply:
        href = f"?next={next(counter)}"
        return Reply(
            200, {"sharingTasks": [], "totalCount": 10**9, "links": {"next": {"href": href}}}
        )

    hostile.on("GET", TASKS, answer)
    async with client_for(hostile) as client:
        with pytest.raises(PagingStopped, match="page 1 is empty but links to a next page"):
            await walk(client)
    assert len(hostile.seen) == 1


async def test_pages_past_what_total_count_allows_stop(
    hostile: Origin, client_for: ClientFor
) -> None:
    """totalCount 150 at 100 a page allows ceil(1.5) + 2 = 4 pages: the 4th linking on stops."""
    counter = iter(range(10**6))

    def answer(_request: web.Request) -> Reply:
        n = next(counter)
        href = f"?next={n + 1}"
        return Reply(
            200,
            {
                "sharingTasks": make_tasks(100, prefix=f"p{n}-"),
                "totalCount": 150,
                "links": {"next": {"href": href}},
            },
        )

    hostile.on("GET", TASKS, answer)
    async with client_for(hostile) as client:
        with pytest.raises(PagingStopped, match="totalCount 150 at 100 a page allows 4 pages"):
            await walk(client)
    assert len(hostile.seen) == 4


async def test_the_max_pages_ceiling_stops_a_listing_without_a_count(
    hostile: Origin, client_for: ClientFor
) -> None:
    """Without totalCount, fresh one-task pages go on until `max_pages`, then stop."""
    counter = iter(range(10**6))

    def answer(_request: web.Request) -> Reply:
        n = next(counter)
        tasks = [{"id": f"x{n}"}]
        return Reply(200, {"sharingTasks": tasks, "links": {"next": {"href": f"?next={n}"}}})

    hostile.on("GET", TASKS, answer)
    async with client_for(hostile, max_pages=7) as client:
        with pytest.raises(PagingStopped, match=r"more than 7 pages \(\[defaults\] max_pages\)"):
            await walk(client)
    assert len(hostile.seen) == 7


async def test_pages_of_tasks_already_listed_stop_the_listing(
    hostile: Origin, client_for: ClientFor
) -> None:
    """Fresh cursors handing back the same tasks for ever: stopped at the first repeat page."""
    counter = iter(range(10**6))
    tasks = make_tasks(100)

    def answer(_request: web.Request) -> Reply:
        href = f"?next={next(counter)}"
        return Reply(200, {"sharingTasks": tasks, "links": {"next": {"href": href}}})

    hostile.on("GET", TASKS, answer)
    async with client_for(hostile) as client:
        listing = Listing(cursor_pages(client, {"limit": 100}))
        with pytest.raises(PagingStopped, match="repeats tasks already listed"):
            async for _ in listing.tasks():
                pass
    assert len(hostile.seen) == 2


async def test_a_huge_total_count_is_refused_before_asking_for_pages(
    hostile: Origin, client_for: ClientFor
) -> None:
    """totalCount 10^12 would take 10^10 offset pages: refused after the first."""
    hostile.on("GET", TASKS, Reply(200, {"sharingTasks": make_tasks(100), "totalCount": 10**12}))
    async with client_for(hostile) as client:
        with pytest.raises(PagingStopped, match="more than 100,000"):
            async for _ in offset_pages(client, {"limit": 100}):
                pass
    assert len(hostile.seen) == 1


async def test_the_cli_with_a_high_total_count_and_empty_pages_exits_4_quickly(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` against totalCount 5,000,000 and empty pages: exit 4 in one line, a few requests."""

    def answer(request: web.Request) -> Reply:
        first = "offset" not in request.query and "next" not in request.query
        doc: dict[str, Any] = {"sharingTasks": make_tasks(100) if first else []}
        doc["totalCount"] = 5_000_000
        doc["links"] = {"next": {"href": f"?next={request.query.get('offset', 'x')}1"}}
        return Reply(200, doc)

    hostile.on("GET", TASKS, answer)
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "paging stopped" in line and "empty but links to a next page" in line
    assert len(hostile.seen) < 10


async def test_the_cli_with_a_self_linking_page_exits_4_in_one_line(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` against a list whose next link is itself: exit 4, one line, two list requests."""
    href = "/api/v1/sharing-tasks?limit=100&excludeDeleting=true"
    doc = {"sharingTasks": make_tasks(100), "links": {"next": {"href": href}}}
    hostile.on("GET", TASKS, Reply(200, doc))
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "links back to an earlier page" in line
    assert len(hostile.seen) == 3  # the probe, the first page (offset try), the cursor's first


async def test_a_streamed_100_mb_answer_is_refused_with_bounded_memory(
    hostile: Origin, client_for: ClientFor
) -> None:
    """A list answer streaming 100 MB is refused at 16 MiB; memory stays near the limit."""
    hostile.on("GET", TASKS, stream(100 * MiB))
    tracemalloc.start()
    try:
        async with client_for(hostile) as client:
            with pytest.raises(AnswerRefused, match="larger than 16,777,216 bytes"):
                await client.get_json("/v1/sharing-tasks")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, peak
    assert len(hostile.seen) == 1  # refused, not retried


async def test_an_answer_declaring_a_huge_length_is_refused_unread(
    hostile: Origin, client_for: ClientFor
) -> None:
    """A Content-Length over the limit is refused before a byte of the body is read."""
    hostile.on("GET", TASKS, stream(100 * MiB, declare_length=True))
    tracemalloc.start()
    try:
        async with client_for(hostile, max_response_bytes=MiB) as client:
            with pytest.raises(AnswerRefused, match="larger than 1,048,576 bytes"):
                await client.get_json("/v1/sharing-tasks")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, peak


async def test_a_small_compressed_answer_that_inflates_is_refused(
    hostile: Origin, client_for: ClientFor
) -> None:
    """A gzip body of 100 KB inflating to 100 MB is counted as it inflates, and refused."""
    bomb = gzip.compress(b'{"sharingTasks": [' + b" " * (100 * MiB) + b"]}", compresslevel=9)
    assert len(bomb) < MiB
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    hostile.on("GET", TASKS, Reply(200, body=bomb, headers=headers))
    async with client_for(hostile) as client:
        with pytest.raises(AnswerRefused, match="larger than"):
            await client.get_json("/v1/sharing-tasks")


async def test_the_cli_refuses_an_answer_over_max_response_bytes_in_one_line(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` with `max_response_bytes = 100000` against a 5 MB page: exit 4, one line."""
    write_config(hostile_workdir.config, hostile.url, "max_response_bytes = 100000\n")

    def answer(request: web.Request) -> Any:
        if request.query.get("limit") == "1":
            return Reply(200, {"sharingTasks": [], "totalCount": 0})
        return stream(5 * MiB)(request)  # type: ignore[operator]

    hostile.on("GET", TASKS, answer)
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "larger than 100,000 bytes" in line


async def test_a_well_behaved_listing_of_many_pages_is_not_stopped(
    hostile: Origin, client_for: ClientFor
) -> None:
    """1,050 tasks over 11 pages with a true totalCount: every guard lets it through."""
    tasks = make_tasks(1050)
    hostile.on("GET", TASKS, task_list(tasks))
    async with client_for(hostile) as client:
        assert await walk(client) == [t["id"] for t in tasks]
    assert len(hostile.seen) == 11
