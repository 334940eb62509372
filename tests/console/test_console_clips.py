"""Event clips in the console, in a real browser (Debian's headless Chromium, driven by Playwright) against a
running center: the incident panel shows the snapshot while the clip is pending, then plays the clip a worker
uploads (a real H.264 MP4 of a person on a street), marks the alert on its timeline and seeks there; an H.265
clip the browser cannot play says so and keeps its download; the live view saves the last N seconds.

The screenshot of the clip playing goes to build/screenshots/clip.png (see test_console_browser.py)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from contracts import (
    CLIP_REQUESTS_STREAM,
    Alert,
    AlertKind,
    CameraState,
    ClipMeta,
    ClipNote,
    ClipState,
    DetectedObject,
    GeoPoint,
    decode_clip_request,
    encode_alert_entry,
)
from gridwatch.demo.clips import Scene, Walker, make_clip
from tests.console.stack import (
    NANGUAN_1,
    CenterThread,
    Stack,
    center_settings,
    frame_stats,
    grey_std,
    redis_client,
    snapshot_jpeg,
    token,
)
from tests.console.test_console_browser import incident_for, open_console, save_screenshot
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration
OPERATOR = token("operator", "st-nanguan", "alice")
WORKER = token("worker", None, "w-test")
CLIP_SECONDS = 12.0
ALERT_AT_S = 8.0  # where the alert fires in the clip: the person has crossed into the right half
SHORT_SECONDS, SHORT_ALERT_AT_S = 6.0, 3.0
PREROLL_S = 8.0  # the center's clip_preroll_s here: the page's limit (10 s) is more, the center says no
HEVC_TYPE = 'video/mp4; codecs="hvc1.1.6.L120.90"'


def person_scene() -> Scene:
    """A person walks from the left pavement into the right half of a street scene (never a black frame)."""
    walker = Walker(path=((0.0, 0.15, 0.92), (ALERT_AT_S, 0.70, 0.95), (CLIP_SECONDS, 0.74, 0.95)))
    return Scene(seconds=CLIP_SECONDS, walkers=(walker,))


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_clip(tmp_path_factory.mktemp("clips") / "person.mp4", person_scene(), gop_seconds=1.0)
    return path.read_bytes()


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Another clip (6 s, another street): the second alert of an incident brings it."""
    walker = Walker(path=((0.0, 0.80, 0.95), (SHORT_SECONDS, 0.55, 0.93)), sprite=1)
    scene = Scene(seconds=SHORT_SECONDS, walkers=(walker,), seed=11)
    return make_clip(
        tmp_path_factory.mktemp("clips-short") / "short.mp4", scene, gop_seconds=1.0
    ).read_bytes()


@pytest.fixture(scope="module")
def hevc_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The same scene encoded as H.265 (libx265, tagged hvc1 as cameras' MP4s are)."""
    root = tmp_path_factory.mktemp("clips-hevc")
    source = make_clip(root / "person.mp4", person_scene(), gop_seconds=1.0)
    target = root / "person-hevc.mp4"
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream("libx265", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        stream.codec_tag = "hvc1"
        stream.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        for i, frame in enumerate(inp.decode(video=0)):
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target.read_bytes()


@pytest.fixture(scope="module")
def stack(
    live_clip: Path, tmp_path_factory: pytest.TempPathFactory, console_redis_url: str
) -> Iterator[Stack]:
    client = redis_client(console_redis_url)
    with RtspServer({"/cam": live_clip}) as rtsp:
        tmp = tmp_path_factory.mktemp("console-clips-stack")
        settings = center_settings(tmp, rtsp.url("/cam"), console_redis_url)
        center = CenterThread(settings.model_copy(update={"clip_preroll_s": PREROLL_S}))
        base = center.start()
        stack = Stack(base, center.app, client, rtsp.port)
        stack.set_health("cam-a1", CameraState.online, fps=10.0)
        try:
            yield stack
        finally:
            center.stop()
            client.close()


def publish(stack: Stack, rule: str, clip: ClipNote) -> Alert:
    """An intrusion on cam-a1 with its snapshot, on the bus. Each test has its own rule: alerts of one camera,
    rule and zone fold into one open incident."""
    alert = Alert(
        kind=AlertKind.intrusion,
        severity=2,
        camera_id="cam-a1",
        captured_at=datetime.now(UTC),
        location=GeoPoint(lat=NANGUAN_1[0], lon=NANGUAN_1[1]),
        rule=rule,
        zone="right-half",
        model="yolov8n",
        objects=(DetectedObject(cls="person", confidence=0.87, box=(0.62, 0.40, 0.78, 0.95), track_id=3),),
        clip=clip,
    )
    stack.redis.xadd("gw:alerts", encode_alert_entry(alert, snapshot_jpeg()))  # type: ignore[arg-type]
    return alert


def upload(
    stack: Stack,
    alert: Alert,
    body: bytes,
    codec: str = "h264",
    offset: float = ALERT_AT_S,
    duration: float = CLIP_SECONDS,
) -> None:
    """PUT the clip as the worker does: content-addressed, its ClipMeta in the query."""
    meta = ClipMeta(
        camera_id=alert.camera_id,
        alert_ids=(alert.id,),
        alert_offsets_s=(offset,),
        started_at=alert.captured_at - timedelta(seconds=offset),
        duration_s=duration,
        bytes=len(body),
        codec=codec,
        width=640,
        height=360,
        worker_id="w-test",
    )
    digest = hashlib.sha256(body).hexdigest()
    with stack.api(WORKER) as api:
        response = api.put(
            f"/api/v1/clips/{digest}",
            params={"meta": meta.model_dump_json()},
            content=body,
            headers={"Content-Type": "video/mp4"},
        )
    assert response.status_code in (200, 201, 202, 204), response.text


def clips_of(stack: Stack, incident: dict[str, Any], count: int = 1, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    with stack.api(OPERATOR) as api:
        while time.monotonic() < deadline:
            clips = api.get(incident["clips_url"]).json()
            if len(clips) >= count:
                return list(clips)
            time.sleep(0.2)
    raise AssertionError(f"incident {incident['id']} never listed {count} clip(s)")


def signed(url: str) -> re.Pattern[str]:
    """`url` of the clip list, whatever its expiry and signature: the page fetched its own list."""
    path, _, query = url.partition("?")
    rest = re.sub(r"^exp=\d+&sig=[A-Za-z0-9_-]+", "", query)
    return re.compile("^" + re.escape(path) + r"\?exp=\d+&sig=[A-Za-z0-9_-]{43}" + re.escape(rest) + "$")


def seek_and_wait(page: Page, action: Any) -> float:
    """Do `action` (which seeks the panel's video) and return currentTime when `seeked` fires."""
    page.evaluate(
        """() => { window.__seekedAt = null;
            document.querySelector('#p-video').addEventListener(
                'seeked', (e) => { window.__seekedAt = e.target.currentTime; }, { once: true }); }"""
    )
    action()
    page.wait_for_function("() => window.__seekedAt !== null", timeout=15_000)
    return float(page.evaluate("window.__seekedAt"))


def playing(page: Page, past: float, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "(t) => { const v = document.querySelector('#p-video'); return !v.paused && v.currentTime > t; }",
        arg=past,
        timeout=timeout,
    )


def test_pending_clip_shows_the_snapshot_then_plays_marks_seeks_and_downloads(
    stack: Stack, browser: Browser, h264_clip: bytes
) -> None:
    page = open_console(browser, stack, OPERATOR)
    try:
        alert = publish(stack, "clips-h264", ClipNote(state=ClipState.pending, preroll_s=ALERT_AT_S))
        incident = incident_for(stack, OPERATOR, alert.id)
        assert incident["clip_state"] == "pending", incident
        page.locator(f'#cards li[data-id="{incident["id"]}"]').click()
        expect(page.locator("#p-title")).to_contain_text(f"#{incident['id']}")

        # Pending: the snapshot, and a line that says the clip is on its way.
        expect(page.locator("#p-img")).to_have_attribute("src", re.compile(r"^blob:"), timeout=15_000)
        expect(page.locator("#p-snap")).to_be_visible()
        expect(page.locator("#p-clip-state")).to_contain_text(
            "Clip pending: the worker is recording/uploading"
        )
        expect(page.locator("#p-clip-player")).to_be_hidden()

        # The worker uploads it: the incident's update on the feed brings the player in place of the snapshot.
        upload(stack, alert, h264_clip)
        video = page.locator("#p-video")
        expect(video).to_be_visible(timeout=30_000)
        expect(page.locator("#p-snap")).to_be_hidden()
        expect(page.locator("#p-clip")).to_have_attribute("data-playable", "yes")
        (clip,) = clips_of(stack, incident)
        assert clip["alert_offsets_s"] == [ALERT_AT_S] and clip["duration_s"] == pytest.approx(CLIP_SECONDS)
        # The clip list's signed URL (the page listed it a moment apart from the test: its expiry may differ).
        expect(video).to_have_attribute("src", signed(clip["url"]))
        assert page.evaluate("document.querySelector('#p-video').preload") == "metadata"
        assert page.evaluate("document.querySelector('#p-video').controls") is True

        # The download link is the clip's download_url: the very bytes uploaded, as an attachment.
        download = page.locator("#p-clip-download")
        expect(download).to_be_visible()
        expect(download).to_have_attribute("href", signed(clip["download_url"]))
        got = httpx.get(httpx.URL(stack.base).join(download.get_attribute("href") or ""), timeout=30)
        assert got.status_code == 200 and got.content == h264_clip
        assert got.headers["content-disposition"].startswith("attachment")

        # It plays: time advances, on a frame of the street with the person (not black, not flat).
        page.evaluate("document.querySelector('#p-video').play()")
        playing(page, 1.0)
        stats = frame_stats(page, "#p-video")
        assert stats["width"] == 640 and stats["std"] > 10 and stats["mean"] > 20, f"black or flat: {stats}"
        assert grey_std(video.screenshot()) > 10, "the video element shows a flat picture"

        # The alert's mark sits at alert_offset / duration of the timeline, and a click seeks there.
        bar = page.locator("#p-timeline")
        mark = bar.locator(".mark")
        expect(mark).to_have_count(1)
        bar_box, mark_box = bar.bounding_box(), mark.bounding_box()
        assert bar_box and mark_box
        centre = mark_box["x"] + mark_box["width"] / 2 - bar_box["x"]
        assert centre == pytest.approx(bar_box["width"] * ALERT_AT_S / CLIP_SECONDS, abs=1.5)
        landed = seek_and_wait(page, mark.click)
        assert landed == pytest.approx(ALERT_AT_S, abs=0.15)
        playing(page, ALERT_AT_S + 0.3)
        # The screenshot: the clip playing just past the alert's mark, the native controls shown (hover).
        expect(page.locator("body")).not_to_have_class(re.compile(r"\balarm\b"), timeout=15_000)
        video.hover()
        save_screenshot(page, "clip.png")

        # Seeking by currentTime works (HTTP Range), and the frame there is a picture too.
        landed = seek_and_wait(
            page, lambda: page.evaluate("document.querySelector('#p-video').currentTime = 3")
        )
        assert landed == pytest.approx(3.0, abs=0.15)
        page.evaluate("document.querySelector('#p-video').pause()")
        assert frame_stats(page, "#p-video")["std"] > 10

        # Keyboard: on the focused timeline PageDown goes to the next alert, Home to the start.
        bar.focus()
        assert seek_and_wait(page, lambda: page.keyboard.press("PageDown")) == pytest.approx(
            ALERT_AT_S, abs=0.15
        )
        assert seek_and_wait(page, lambda: page.keyboard.press("Home")) == pytest.approx(0.0, abs=0.15)
        expect(page.locator("#p-title")).to_contain_text(
            f"#{incident['id']}"
        )  # the keys did not move the list

        # A signed URL that no longer works (as an expired one): the list is fetched again and it plays on.
        page.evaluate(
            "() => { const v = document.querySelector('#p-video'); v.src = v.src.split('?')[0] + '?x=1'; }"
        )
        page.wait_for_function(
            """(url) => { const v = document.querySelector('#p-video');
                return v.getAttribute('src') !== null && !v.getAttribute('src').endsWith('?x=1')
                    && v.readyState >= 1; }""",
            arg=clip["url"],
            timeout=30_000,
        )
        page.evaluate("document.querySelector('#p-video').play()")
        playing(page, 0.5)
        expect(page.locator("#p-clip-state")).to_be_empty()
    finally:
        page.context.close()


def test_a_clip_the_browser_cannot_play_says_so_and_an_unavailable_one_says_why(
    stack: Stack, browser: Browser, hevc_clip: bytes
) -> None:
    page = open_console(browser, stack, OPERATOR)
    try:
        alert = publish(stack, "clips-hevc", ClipNote(state=ClipState.pending))
        incident = incident_for(stack, OPERATOR, alert.id)
        upload(stack, alert, hevc_clip, codec="hevc")
        clips_of(stack, incident)
        page.locator(f'#cards li[data-id="{incident["id"]}"]').click()
        expect(page.locator("#p-clip-tools")).to_be_visible(timeout=30_000)
        (clip,) = clips_of(stack, incident)
        expect(page.locator("#p-clip-download")).to_have_attribute("href", signed(clip["download_url"]))
        if page.evaluate("(t) => document.createElement('video').canPlayType(t)", HEVC_TYPE) == "":
            expect(page.locator("#p-clip-state")).to_have_text(
                "This browser cannot play H.265; download the clip to watch it."
            )
            expect(page.locator("#p-clip")).to_have_attribute("data-playable", "no")
            expect(page.locator("#p-clip-player")).to_be_hidden()
            expect(page.locator("#p-snap")).to_be_visible()
            expect(page.locator("#p-clip-download")).to_be_visible()
        else:  # a browser with an H.265 decoder plays it
            expect(page.locator("#p-video")).to_be_visible()

        reason = "the camera reconnected; the ring held no keyframe"
        other = publish(stack, "clips-unavailable", ClipNote(state=ClipState.unavailable, reason=reason))
        unavailable = incident_for(stack, OPERATOR, other.id)
        page.locator(f'#cards li[data-id="{unavailable["id"]}"]').click()
        expect(page.locator("#p-title")).to_contain_text(f"#{unavailable['id']}")
        expect(page.locator("#p-clip-state")).to_have_text(f"No clip: {reason}.")
        expect(page.locator("#p-snap")).to_be_visible()
        expect(page.locator("#p-clip-player")).to_be_hidden()
        expect(page.locator("#p-clip-tools")).to_be_hidden()
    finally:
        page.context.close()


def test_an_incident_with_two_clips_offers_both(
    stack: Stack, browser: Browser, h264_clip: bytes, short_clip: bytes
) -> None:
    page = open_console(browser, stack, OPERATOR)
    try:
        first = publish(stack, "clips-two", ClipNote(state=ClipState.pending))
        incident = incident_for(stack, OPERATOR, first.id)
        upload(stack, first, h264_clip)
        page.locator(f'#cards li[data-id="{incident["id"]}"]').click()
        expect(page.locator("#p-video")).to_be_visible(timeout=30_000)
        expect(page.locator("#p-clip-pick")).to_be_hidden()  # one clip: no selector

        # A second alert folds into the incident and brings its own clip while the panel is open: the
        # clip_added on the feed lists the clips again; the clip in the player stays.
        second = publish(stack, "clips-two", ClipNote(state=ClipState.pending))
        upload(stack, second, short_clip, offset=SHORT_ALERT_AT_S, duration=SHORT_SECONDS)
        clips = clips_of(stack, incident, count=2)
        picker = page.locator("#p-clip-pick")
        expect(picker).to_be_visible(timeout=30_000)
        expect(picker.locator("option")).to_have_count(2)
        src = page.locator("#p-video").get_attribute("src") or ""
        assert src.split("?")[0] == clips[0]["url"].split("?")[0]

        # The other clip: its own file, marks and download; it plays on a picture.
        picker.select_option(clips[1]["id"])
        page.wait_for_function(
            "(path) => (document.querySelector('#p-video').getAttribute('src') || '').startsWith(path)",
            arg=clips[1]["url"].split("?")[0],
        )
        expect(page.locator("#p-clip-download")).to_have_attribute("href", signed(clips[1]["download_url"]))
        mark = page.locator("#p-timeline .mark")
        expect(mark).to_have_count(1)
        assert float(mark.get_attribute("data-offset") or "nan") == pytest.approx(SHORT_ALERT_AT_S)
        page.evaluate("document.querySelector('#p-video').play()")
        playing(page, 0.5)
        assert frame_stats(page, "#p-video")["std"] > 10
    finally:
        page.context.close()


def last_request(stack: Stack) -> Any:
    entries = stack.redis.xrevrange(CLIP_REQUESTS_STREAM, count=1)
    assert entries, f"no request on {CLIP_REQUESTS_STREAM}"
    fields: dict[bytes, bytes] = entries[0][1]  # type: ignore[assignment]
    return decode_clip_request(fields)


def test_live_view_saves_the_last_seconds_into_the_open_incident_or_a_new_one(
    stack: Stack, browser: Browser
) -> None:
    page = open_console(browser, stack, OPERATOR)
    try:
        alert = publish(stack, "clips-live", ClipNote(state=ClipState.pending))
        incident = incident_for(stack, OPERATOR, alert.id)
        page.locator(f'#cards li[data-id="{incident["id"]}"]').click()
        expect(page.locator("#p-title")).to_contain_text(f"#{incident['id']}")
        page.click("#act-live")
        expect(page.locator("#live")).to_be_visible()

        # Into the incident in the panel (the same camera: offered and ticked).
        expect(page.locator("#live-save-into-label")).to_be_visible()
        expect(page.locator("#live-save-into")).to_be_checked()
        page.fill("#live-save-s", "5")
        with page.expect_response(re.compile(r"/api/v1/cameras/cam-a1/clips$")) as answer:
            page.click("#live-save-btn")
        assert answer.value.status == 202
        body = answer.value.json()
        assert body["incident_id"] == incident["id"]
        message = page.locator("#live-save-msg")
        expect(message).to_contain_text(f"incident #{incident['id']}")
        expect(message).not_to_have_class(re.compile(r"\bbad\b"))
        request = last_request(stack)
        assert (request.request_id, request.camera_id, request.seconds) == (body["request_id"], "cam-a1", 5)
        assert answer.value.request.post_data_json == {
            "seconds": 5,
            "incident_id": incident["id"],
            "note": None,
        }

        # Into a new incident: the answer names it, the feed brings it, the button opens it in the panel.
        page.uncheck("#live-save-into")
        page.fill("#live-save-s", "6")
        with page.expect_response(re.compile(r"/api/v1/cameras/cam-a1/clips$")) as answer:
            page.keyboard.press("Enter")  # the form submits from the keyboard
        assert answer.value.status == 202
        new_id = answer.value.json()["incident_id"]
        assert new_id != incident["id"]
        expect(message).to_contain_text(f"new incident #{new_id}")
        assert last_request(stack).seconds == 6
        expect(page.locator(f'#cards li[data-id="{new_id}"]')).to_be_attached(timeout=30_000)
        page.click("#live-save-open")
        expect(page.locator("#live")).to_be_hidden()
        expect(page.locator("#p-title")).to_contain_text(f"#{new_id}")
        expect(page.locator("#p-clip-state")).to_contain_text("Clip pending")
        expect(page.locator("#p-history")).to_contain_text("clip requested", timeout=15_000)

        # More than this center's pre-roll: its refusal is on the page, and nothing reaches the workers.
        page.click("#act-live")
        expect(page.locator("#live")).to_be_visible()
        page.fill("#live-save-s", "9")
        with page.expect_response(re.compile(r"/api/v1/cameras/cam-a1/clips$")) as answer:
            page.click("#live-save-btn")
        assert answer.value.status == 422
        expect(message).to_contain_text("Not saved: 9 s is more than the workers keep (8 s")
        expect(message).to_have_class(re.compile(r"\bbad\b"))
        # More than any pre-roll the page offers: the form refuses it before asking the center.
        page.fill("#live-save-s", "11")
        page.click("#live-save-btn")
        assert page.evaluate("document.querySelector('#live-save-s').validity.rangeOverflow") is True
        assert last_request(stack).seconds == 6
    finally:
        page.context.close()


def test_the_center_refuses_more_than_its_preroll(stack: Stack) -> None:
    with stack.api(OPERATOR) as api:
        response = api.post("/api/v1/cameras/cam-a1/clips", json={"seconds": PREROLL_S + 1})
    assert response.status_code == 422, response.text
