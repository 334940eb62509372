"""The console and the live view in a real browser (Debian's headless Chromium, driven by Playwright),
against a running stack: the center API, a Redis DB, a real RTSP camera. Screenshots go to build/screenshots/;
with GRIDWATCH_UPDATE_SCREENSHOTS=1 (`make screenshots`) they replace the README's too (docs/screenshots/)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from contracts import CameraState
from tests.console.conftest import established_to
from tests.console.stack import (
    NANGUAN_1,
    VIEWPORT,
    XIADU_2,
    CenterThread,
    Stack,
    center_settings,
    frame_stats,
    redis_client,
    token,
)
from tests.support.paths import REPO
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration
BLOB = re.compile(r"^blob:")
SCREENSHOTS = REPO / "build" / "screenshots"  # git-ignored: a test run leaves the working tree as it was
README_SCREENSHOTS = REPO / "docs" / "screenshots"
A_TOKEN = token("operator", "st-nanguan", "alice")
A2_TOKEN = token("operator", "st-nanguan", "bob")
B_TOKEN = token("operator", "st-xiadu", "carol")


@pytest.fixture(scope="module")
def stack(
    live_clip: Path, tmp_path_factory: pytest.TempPathFactory, console_redis_url: str
) -> Iterator[Stack]:
    client = redis_client(console_redis_url)
    with RtspServer({"/cam": live_clip}) as rtsp:
        tmp = tmp_path_factory.mktemp("console-stack")
        center = CenterThread(center_settings(tmp, rtsp.url("/cam"), console_redis_url))
        base = center.start()
        stack = Stack(base, center.app, client, rtsp.port)
        stack.set_health("cam-a1", CameraState.online, fps=10.0)
        stack.set_health("cam-a2", CameraState.offline)
        stack.set_health("cam-b1", CameraState.offline)
        try:
            yield stack
        finally:
            center.stop()
            client.close()


def save_screenshot(page: Page, name: str) -> None:
    """Into build/screenshots/, and the README's docs/screenshots/ with GRIDWATCH_UPDATE_SCREENSHOTS=1."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))
    if os.environ.get("GRIDWATCH_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCREENSHOTS / name, README_SCREENSHOTS / name)


def open_console(browser: Browser, stack: Stack, tok: str) -> Page:
    context = browser.new_context(viewport=VIEWPORT, timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(stack.base + "/")
    page.fill("#token", tok)
    page.click("#signin-submit")
    expect(page.locator("#layout")).to_be_visible(timeout=30_000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "on", timeout=30_000)
    expect(page.locator("#map path.cell").first).to_be_attached(timeout=30_000)
    return page


def incident_for(stack: Stack, tok: str, alert_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with stack.api(tok) as api:
        while time.monotonic() < deadline:
            for item in api.get("/api/v1/incidents", params={"limit": 50}).json()["items"]:
                if item["alert_id"] == alert_id:
                    return item  # type: ignore[no-any-return]
            time.sleep(0.2)
    raise AssertionError(f"alert {alert_id} never became an incident")


def test_console_feed_acknowledge_map_and_station_isolation(stack: Stack, browser: Browser) -> None:
    page_a, page_a2, page_b = (open_console(browser, stack, t) for t in (A_TOKEN, A2_TOKEN, B_TOKEN))
    try:
        expect(page_a.locator("#scope")).to_contain_text("Nanguan Police Station")
        expect(page_b.locator("#scope")).to_contain_text("Xiadu Police Station")
        cell = page_a.locator('#map path.cell[data-cell="c-nanguan-01"]')
        expect(cell).to_have_attribute("data-count", "0", timeout=15_000)
        expect(page_a.locator("#cam-rows tr")).to_have_count(2, timeout=30_000)  # station A's cameras only
        expect(page_a.locator('#cam-rows tr[data-camera="cam-a1"]')).to_have_attribute("data-state", "online")

        # An alert on the bus appears on both station-A pages; the feed latency is measured and printed
        # (the suite never fails on speed: the machine is shared).
        sent = time.monotonic()
        alert_a = stack.publish(NANGUAN_1, "cam-a1", severity=1, detail="person in the restricted zone")
        incident_a = incident_for(stack, A_TOKEN, alert_a.id)
        card_a = page_a.locator(f'#cards li[data-id="{incident_a["id"]}"]')
        expect(card_a).to_be_visible(timeout=30_000)
        print(f"\nfeed latency XADD -> card on the page: {time.monotonic() - sent:.2f} s")
        expect(page_a2.locator(f'#cards li[data-id="{incident_a["id"]}"]')).to_be_visible(timeout=30_000)
        expect(card_a).to_have_class(re.compile(r"\bsev1\b.*\bfresh\b"))
        expect(card_a.locator("img")).to_have_attribute("src", BLOB, timeout=15_000)
        # Counts in the tab title (other suites sharing this Redis may add foreign events: match loosely).
        expect(page_a).to_have_title(re.compile(r"^\(\d+\) \d+ open · GridWatch · Nanguan"))

        # The map cell of the incident changes color.
        expect(cell).to_have_attribute("data-count", "1", timeout=30_000)
        expect(cell).to_have_class(re.compile(r"\bl1\b"))

        # Station B's operator never sees station A's alert; B's own alert reaches B and not A.
        alert_b = stack.publish(XIADU_2, "cam-b1", severity=3)
        incident_b = incident_for(stack, B_TOKEN, alert_b.id)
        expect(page_b.locator(f'#cards li[data-id="{incident_b["id"]}"]')).to_be_visible(timeout=30_000)
        assert page_b.locator(f'#cards li[data-id="{incident_a["id"]}"]').count() == 0
        assert page_b.locator('#map path.cell[data-cell="c-nanguan-01"]').count() == 0
        assert page_a.locator(f'#cards li[data-id="{incident_b["id"]}"]').count() == 0

        # Acknowledge from page A: the API and the second station-A page both show it.
        card_a.click()
        expect(page_a.locator("#p-title")).to_contain_text(f"#{incident_a['id']}")
        expect(page_a.locator("#p-img")).to_have_attribute("src", BLOB, timeout=15_000)
        page_a.click("#act-ack")
        expect(page_a.locator("#p-status")).to_have_text("acknowledged", timeout=15_000)
        with stack.api(A_TOKEN) as api:
            assert api.get(f"/api/v1/incidents/{incident_a['id']}").json()["status"] == "acknowledged"
        expect(page_a2.locator(f'#cards li[data-id="{incident_a["id"]}"]')).to_have_attribute(
            "data-status", "acknowledged", timeout=30_000
        )
        expect(page_a.locator("#p-history")).to_contain_text("alice", timeout=15_000)

        # Keyboard on page B: next new alert, then acknowledge.
        page_b.locator("#cards").focus()
        page_b.keyboard.press("n")
        expect(page_b.locator("#p-title")).to_contain_text(f"#{incident_b['id']}")
        page_b.keyboard.press("a")
        expect(page_b.locator("#p-status")).to_have_text("acknowledged", timeout=15_000)
        expect(page_b).to_have_title(re.compile(r"^(\(\d+\) )?\d+ open · GridWatch · Xiadu"))

        # Dispatch to a named patrol with a note, on page A.
        page_a.click("#act-dispatch")
        page_a.fill("#d-to", "Patrol 7")
        page_a.fill("#d-note", "check the gate")
        page_a.click("#dispatch-form button[type=submit]")
        expect(page_a.locator("#p-status")).to_have_text("dispatched", timeout=15_000)
        expect(page_a.locator("#p-history")).to_contain_text("to Patrol 7: check the gate", timeout=15_000)

        # Clicking the cell lists its incidents over the chosen window.
        cell.click()
        expect(page_a.locator("#cell-incidents li")).to_contain_text(["Intrusion"], timeout=15_000)

        expect(page_a.locator("#dispatch-form")).to_be_hidden()
        expect(page_a.locator("body")).not_to_have_class(re.compile(r"\balarm\b"), timeout=15_000)
        save_screenshot(page_a, "console.png")
    finally:
        for page in (page_a, page_a2, page_b):
            page.context.close()


def test_live_view_plays_then_the_pull_stops_when_the_page_closes(stack: Stack, browser: Browser) -> None:
    page = open_console(browser, stack, A_TOKEN)
    try:
        page.locator('#cam-rows tr[data-camera="cam-a1"] button').click()
        video = page.locator("#live-video")
        expect(video).to_be_visible()
        try:
            page.wait_for_function(
                "() => document.querySelector('#live-video').currentTime > 1", timeout=60_000
            )
        except AssertionError:
            raise
        except Exception as exc:
            diag = page.evaluate("() => window.gridwatchLiveStats()")
            msg = page.locator("#live-msg").text_content()
            raise AssertionError(f"live video did not play: {diag} message={msg!r}") from exc
        first = page.evaluate("document.querySelector('#live-video').currentTime")
        page.wait_for_function(
            "(t) => document.querySelector('#live-video').currentTime > t + 1", arg=first, timeout=30_000
        )
        stats = frame_stats(page)
        assert stats["width"] == 640 and stats["std"] > 10 and stats["mean"] > 20, (
            f"black or flat frame: {stats}"
        )
        expect(page.locator("#live-msg")).to_be_empty()
        expect(page.locator("#live-codec")).to_contain_text("H.264")
        with stack.api(A_TOKEN) as api:
            pulls = api.get("/api/v1/live").json()
        assert [(p["camera_id"], p["viewers"]) for p in pulls] == [("cam-a1", 1)]
        assert established_to(stack.rtsp_port) == 1
        save_screenshot(page, "live.png")
    finally:
        page.context.close()
    deadline = time.monotonic() + 10
    while established_to(stack.rtsp_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert established_to(stack.rtsp_port) == 0, "the RTSP pull did not stop within 10 s of the page closing"
    with stack.api(A_TOKEN) as api:
        assert api.get("/api/v1/live").json() == []


def test_live_view_of_an_offline_camera_says_so(stack: Stack, browser: Browser) -> None:
    page = open_console(browser, stack, A_TOKEN)
    try:
        page.locator('#cam-rows tr[data-camera="cam-a2"] button').click()
        message = page.locator("#live-msg")
        expect(message).to_contain_text("Camera cam-a2 is offline", timeout=30_000)
        expect(message).to_have_class(re.compile(r"\bbad\b"))
    finally:
        page.context.close()


def test_live_view_follows_the_station_scope(stack: Stack) -> None:
    offer = {"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n", "type": "offer"}
    with stack.api(B_TOKEN) as api:
        response = api.post("/api/v1/cameras/cam-a1/live", json=offer)
    assert response.status_code == 404
    with stack.api(A_TOKEN) as api:
        assert api.post("/api/v1/cameras/cam-a1/live", json={"sdp": "x", "type": "offer"}).status_code == 422
