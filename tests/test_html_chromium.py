"""The HTML reports as a browser shows them: headless Chromium, driven over the DevTools protocol.

Skipped only when Chromium is missing and BULKSHARE_REQUIRE_CHROMIUM is unset (CI sets it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT, Sim, Workdir, bulkshare
from tests.test_safety import patch_task

# slow (`.ci/run` runs it with `pytest -m slow`): reports rendered in a real Chromium
pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<script>alert(1)</script>"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)

#: what the page shows, measured in the page itself
PAGE_CHECKS = """(() => {
  const size = el => el ? [el.getBoundingClientRect().width, el.getBoundingClientRect().height]
                        : [0, 0];
  const summary = document.getElementById('summary');
  const table = document.querySelector('table.changes');
  const rows = [...document.querySelectorAll('table.changes tbody tr')];
  const bars = [...document.querySelectorAll('svg rect.bar')];
  return {
    summary: size(summary),
    summaryText: summary ? summary.innerText : '',
    table: size(table),
    rows: rows.length,
    firstRows: rows.slice(0, 3).map(r => [...r.cells].map(c => c.innerText)),
    charts: document.querySelectorAll('svg').length,
    bars: bars.length,
    visibleBars: bars.filter(b => b.getBoundingClientRect().width > 0).length,
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').length,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    text: document.body.innerText,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
  };
})()"""


@pytest.fixture
def chromium() -> Path:
    """The browser; its absence fails the test where CI asks for it."""
    if not CHROMIUM.exists():
        if os.environ.get("BULKSHARE_REQUIRE_CHROMIUM"):
            pytest.fail(f"{CHROMIUM} is missing and BULKSHARE_REQUIRE_CHROMIUM is set")
        pytest.skip(f"{CHROMIUM} is not installed")
    return CHROMIUM


class Cdp:
    """Just enough of the Chrome DevTools Protocol: commands, and the events seen meanwhile."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._id = 0

    async def _next(self) -> dict[str, Any]:
        msg = await self.ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if "method" in data:
            self.events.append(data)
        return data

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result."""
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while (data := await self._next()).get("id") != self._id:
            pass
        assert "error" not in data, data
        result: dict[str, Any] = data["result"]
        return result

    async def until(self, event: str) -> None:
        """Wait for an event (or find it among those already seen)."""
        while not any(e["method"] == event for e in self.events):
            await self._next()


async def devtools_url(proc: asyncio.subprocess.Process) -> str:
    """The browser announces its DevTools endpoint on stderr."""
    assert proc.stderr is not None
    while line := (await proc.stderr.readline()).decode():
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"chromium exited ({await proc.wait()}) without a DevTools endpoint")


async def drain(stream: asyncio.StreamReader) -> None:
    """Keep reading the browser's chatter so that it never blocks on a full pipe."""
    while await stream.read(65536):
        pass


@asynccontextmanager
async def browser_page(chromium: Path, profile: Path) -> AsyncIterator[Cdp]:
    """A fresh headless browser and its first page; the whole process group is killed after."""
    proc = await asyncio.create_subprocess_exec(
        str(chromium),
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    drainer: asyncio.Task[None] | None = None
    try:
        port = int(re.sub(r"^ws://[^:]+:(\d+)/.*$", r"\1", await devtools_url(proc)))
        assert proc.stderr is not None
        drainer = asyncio.create_task(drain(proc.stderr))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Cdp(ws)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if drainer is not None:
            drainer.cancel()
            with suppress(asyncio.CancelledError):
                await drainer


async def open_report(
    cdp: Cdp, page: Path, width: int = 1280, height: int = 1600
) -> dict[str, Any]:
    """Load the report in a window `width` px wide, and return what the page shows."""
    await cdp.call("Network.enable")
    await cdp.call("Page.enable")
    await cdp.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    # a page loaded before in this browser must not pass for this one
    cdp.events = [e for e in cdp.events if e["method"] != "Page.loadEventFired"]
    await cdp.call("Page.navigate", url=page.as_uri())
    await cdp.until("Page.loadEventFired")
    evaluated = await cdp.call("Runtime.evaluate", expression=PAGE_CHECKS, returnByValue=True)
    shown: dict[str, Any] = evaluated["result"]["value"]
    return shown


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the inflated image data of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    idat, pos = b"", 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        if png[pos + 4 : pos + 8] == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


async def screenshot(cdp: Cdp, full_page: bool = False) -> bytes:
    """The window (or with `full_page`, the whole page) as a PNG."""
    if not full_page:
        shot = await cdp.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])
    size = (await cdp.call("Page.getLayoutMetrics"))["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = await cdp.call(
        "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
    )
    return base64.b64decode(shot["data"])


def keep_picture(png: bytes, path: Path) -> None:
    """Check a screenshot is a real picture, and keep it next to the test's files."""
    width, height, pixels = png_pixels(png)
    assert width > 0 and height > 0
    assert len(set(pixels)) > 16, "the screenshot is one flat colour"
    path.write_bytes(png)


def requests_made(cdp: Cdp) -> list[str]:
    """URLs the page asked the network for."""
    return [
        e["params"]["request"]["url"]
        for e in cdp.events
        if e["method"] == "Network.requestWillBeSent"
    ]


async def test_plan_report_in_chromium(
    chromium: Path, demo_sim: Sim, workdir: Workdir, tmp_path: Path
) -> None:
    """A plan's page shows its summary, charts and table, runs no script and fetches nothing."""
    job = ROOT / "jobs" / "disable-orphaned.toml"
    listed = await bulkshare(workdir, "plan", str(job), "--format", "json")
    changes = json.loads(listed.out)["changes"]
    rename = [{"op": "replace", "path": "/name", "value": HOSTILE}]
    await patch_task(demo_sim, changes[0]["task_id"], rename)
    report = tmp_path / "plan.html"
    result = await bulkshare(workdir, "plan", str(job), "--report", str(report))
    assert result.code == 0, result.err
    async with browser_page(chromium, tmp_path / "profile") as cdp:
        shown = await open_report(cdp, report)
        keep_picture(await screenshot(cdp), tmp_path / "plan.png")
        assert requests_made(cdp) == [report.as_uri()]
    assert shown["summary"][0] > 0 and shown["summary"][1] > 0
    assert shown["table"][0] > 0 and shown["table"][1] > 0
    assert (
        "disable-orphaned" in shown["summaryText"] and "fit in one window" in shown["summaryText"]
    )
    assert shown["rows"] == len(changes)
    first = shown["firstRows"][0]
    assert first[:3] == ["1", changes[0]["task_id"], HOSTILE]
    assert first[-2:] == ["disable", "enabled: true → false"]
    assert [r[1] for r in shown["firstRows"]] == [c["task_id"] for c in changes[:3]]
    assert shown["charts"] == 3 and shown["bars"] == shown["visibleBars"] >= 3
    assert shown["scripts"] == 0 and shown["resources"] == 0
    assert not any(e["method"] == "Page.javascriptDialogOpening" for e in cdp.events)


async def test_run_report_in_chromium(
    chromium: Path, demo_sim: Sim, workdir: Workdir, tmp_path: Path
) -> None:
    """A finished run's page shows its outcomes and every change with its outcome."""
    applied = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert applied.code == 0, applied.err
    [run] = (workdir.state / "runs").iterdir()
    report = tmp_path / "run.html"
    result = await bulkshare(workdir, "show", run.name, "--report", str(report))
    assert result.code == 0, result.err
    async with browser_page(chromium, tmp_path / "profile") as cdp:
        shown = await open_report(cdp, report)
        keep_picture(await screenshot(cdp), tmp_path / "run.png")
        assert requests_made(cdp) == [report.as_uri()]
    assert shown["summary"][1] > 0 and shown["table"][1] > 0
    assert "Outcomes per action" in shown["summaryText"] and "finished" in shown["summaryText"]
    assert shown["rows"] == 40
    assert all(r[6:9] == ["delete", "task → deleted", "applied"] for r in shown["firstRows"])
    assert shown["charts"] == 3 and shown["resources"] == 0


#: the widths an approver reads a report at: a desktop window, and a narrow one (a tablet, a
#: mail client's reading pane)
WIDTHS = (1400, 760)


async def shown_at(chromium: Path, report: Path, profile: Path, shots: Path) -> list[Any]:
    """The report at each width, with a screenshot kept per width (`<stem>-<width>.png`)."""
    found = []
    async with browser_page(chromium, profile) as cdp:
        for width in WIDTHS:
            shown = await open_report(cdp, report, width, 2000)
            picture = await screenshot(cdp, full_page=True)
            keep_picture(picture, shots / f"{report.stem}-{width}.png")
            # the picture of the whole page is no wider than the window either
            assert png_pixels(picture)[0] == width
            found.append(shown)
        assert requests_made(cdp) == [report.as_uri()] * len(WIDTHS)
    return found


async def test_reports_fit_narrow_windows_and_name_new_owners(
    chromium: Path, demo_sim: Sim, workdir: Workdir, tmp_path: Path
) -> None:
    """A reassignment plan and its run, at 1400 and 760 px: nothing wider than the window, no
    script, no fetch; the plan shows each new owner's name, its hash and its criteria."""
    job = ROOT / "jobs" / "reassign-owners.toml"
    plan_file, plan_page = tmp_path / "plan.json", tmp_path / "plan.html"
    planned = await bulkshare(
        workdir, "plan", str(job), "--out", str(plan_file), "--report", str(plan_page)
    )
    assert planned.code == 0, planned.err
    doc = json.loads(plan_file.read_text())
    new_owners = {c["task"]["newOwnerName"] for c in doc["changes"]}
    applied = await bulkshare(workdir, "apply", str(plan_file), "--yes")
    assert applied.code == 0, applied.err
    [run] = (workdir.state / "runs").iterdir()
    run_page = tmp_path / "run.html"
    shown = await bulkshare(workdir, "show", run.name, "--report", str(run_page))
    assert shown.code == 0, shown.err
    plans = await shown_at(chromium, plan_page, tmp_path / "profile-plan", tmp_path)
    runs = await shown_at(chromium, run_page, tmp_path / "profile-run", tmp_path)
    for width, page in zip(WIDTHS * 2, plans + runs, strict=True):
        assert page["innerWidth"] == width
        assert page["scrollWidth"] <= page["innerWidth"], (width, page["scrollWidth"])
        assert page["scripts"] == 0 and page["resources"] == 0
    for page in plans:
        assert new_owners and all(name in page["text"] for name in new_owners)
        assert doc["content_hash"] in page["summaryText"]
        assert "criteria" in page["sections"] and "changes-per-new-owner" in page["sections"]
        assert page["rows"] == len(doc["changes"])
    for page in runs:
        assert doc["content_hash"] in page["summaryText"] and page["rows"] == len(doc["changes"])
