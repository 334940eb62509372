"""Chaos: a camera flapping ten times (issue #11, section 2).

A real ingest worker reads a camera from GStreamer's RTSP server (a real clip); the test kills the server
process (SIGKILL) and starts it again on its port, ten times, at seeded random intervals. Some outages are
longer than `offline_after_s`, some are blips. The worker's alerts go through the real publisher to the
test's own Redis DB; exactly one `camera_offline` and one `camera_online` must come per long outage, in
that order and inside it, and none for a blip (nor before the first kill).

How down time is seen: the worker's `CameraMonitor` counts a camera down from the failure the reader reports
(the killed server closes the socket, so within milliseconds of the kill) to the next sample. After a restart
the reader is back within its reconnect delay, which the backoff cap (`BACKOFF_MAX_S`) bounds, plus the
RTSP open and the first keyframe (about a second here). Margins (with `OFFLINE_AFTER_S` = 5 s):
- a long outage keeps the server dead for `OFFLINE_AFTER_S` + 1.0 to 1.5 s, so the camera is down at least
  1 s longer than `offline_after_s` whatever the reconnect does;
- a blip keeps it dead 0 to 0.5 s; with the restart, the reconnect delay and the open the camera is back in
  1.3 to 2 s (measured on the 2-core development VM), and the case requires each blip measured (kill to
  first frame) under `OFFLINE_AFTER_S` - 1.5 s, else it fails saying the machine was too slow for a blip,
  not that the worker alerted wrongly.
About 45 s on the 2-core development VM.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from contracts import AlertKind, Camera
from contracts.bus import ALERTS_STREAM, decode_alert_entry
from detection.publisher import RedisAlertPublisher
from gridwatch.demo.clips import Scene, loop_clip, make_clip
from ingest.cameras import StaticCameraSource
from ingest.config import IngestConfig
from ingest.worker import IngestWorker
from tests.chaos.flap_camera import Kind, Outage, RecordingAlerts, TimedSink, plan_outages
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration

SEED = 4  # blips of 0.01 to 0.48 s, two long outages in a row
OFFLINE_AFTER_S = 5.0
BACKOFF_MAX_S = 0.5
LONG_DOWN_S = (OFFLINE_AFTER_S + 1.0, OFFLINE_AFTER_S + 1.5)
BLIP_DOWN_S = (0.0, 0.5)
BLIP_MARGIN_S = 1.5  # a blip, kill to first frame, stays at least this far under offline_after_s
FRAME_TIMEOUT_S = 30.0  # generous: a loaded CI machine


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 320x180 clip at 25 fps, a keyframe a second, looped to a minute (each connection plays it anew)."""
    root = tmp_path_factory.mktemp("flap-clip")
    base = make_clip(root / "base.mp4", Scene(width=320, height=180, fps=25, seconds=2), gop_seconds=1.0)
    return loop_clip(base, root / "loop.mp4", 30)


@pytest.fixture
def rtsp(clip: Path) -> Iterator[RtspServer]:
    server = RtspServer({"/cam": clip})
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"RTSP server could not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.kill()


def stored_alerts(url: str) -> list[tuple[str, AlertKind, str]]:
    """(id, kind, camera) of each alert in the stream, in stream order."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        entries = [decode_alert_entry(fields)[0] for _, fields in client.xrange(ALERTS_STREAM)]
    finally:
        client.close()
    return [(a.id, a.kind, a.camera_id) for a in entries]


def flap(server: RtspServer, sink: TimedSink, outage: Outage) -> tuple[float, float]:
    """Kill the server, keep it dead for the outage, start it again, wait for frames, let the camera run.
    Returns (kill time, arrival of the first frame after the restart), monotonic."""
    killed_at = time.monotonic()
    server.kill()
    time.sleep(outage.down_s)
    server.start()
    back_at = sink.first_after(time.monotonic(), FRAME_TIMEOUT_S)
    time.sleep(outage.up_s)
    return killed_at, back_at


@pytest.mark.timeout(120)
def test_a_flapping_camera_alerts_once_per_long_outage_and_never_for_a_blip(
    tmp_path: Path, redis_url: str, rtsp: RtspServer
) -> None:
    plan = plan_outages(SEED, longs=3, blips=7, long_down_s=LONG_DOWN_S, blip_down_s=BLIP_DOWN_S)
    config = IngestConfig(
        worker_id="w-flap",
        offline_after_s=OFFLINE_AFTER_S,
        backoff_initial_s=0.1,
        backoff_max_s=BACKOFF_MAX_S,
        open_timeout_s=5.0,
        read_timeout_s=5.0,
        stall_timeout_s=3.0,
        health_interval_s=1.0,
    )
    camera = Camera(id="flap", url=rtsp.url("/cam"), sample_fps=1.0, site_id="site-f")
    sink = TimedSink()
    publisher = RedisAlertPublisher(redis_url, tmp_path / "journal", socket_timeout_s=2.0)
    alerts = RecordingAlerts(publisher)
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    worker = IngestWorker(config, StaticCameraSource([camera]), sink, alerts, client)
    spans: list[tuple[float, float]] = []
    try:
        worker.start()
        try:
            sink.first_after(0.0, FRAME_TIMEOUT_S)
            time.sleep(0.5)
            for outage in plan:
                spans.append(flap(rtsp, sink, outage))
        finally:
            worker.stop(timeout=20)
        assert publisher.wait_drained(30), "alerts still journaled with Redis up"
    finally:
        publisher.close()
        client.close()

    for n, (outage, (killed_at, back_at)) in enumerate(zip(plan, spans, strict=True)):
        down = back_at - killed_at
        if outage.kind is Kind.long:
            assert down > OFFLINE_AFTER_S + 1.0, f"outage {n}: long, yet frames were back after {down:.1f} s"
        else:
            assert down < OFFLINE_AFTER_S - BLIP_MARGIN_S, (
                f"outage {n}: a blip took {down:.1f} s from kill to frames: the machine is too slow for this "
                f"case (blips must stay {BLIP_MARGIN_S} s under offline_after_s), not a wrong alert"
            )

    seen = alerts.seen
    first_kill = spans[0][0]
    assert [a.kind for t, a in seen if t < first_kill] == [], "alerts before the first kill"
    for n, (outage, (killed_at, back_at)) in enumerate(zip(plan, spans, strict=True)):
        until = spans[n + 1][0] if n + 1 < len(spans) else float("inf")
        inside = [(t, a) for t, a in seen if killed_at <= t < until]
        kinds = [a.kind for _, a in inside]
        if outage.kind is Kind.blip:
            assert kinds == [], f"outage {n} (blip of {back_at - killed_at:.1f} s) alerted {kinds}"
            continue
        assert kinds == [AlertKind.camera_offline, AlertKind.camera_online], f"outage {n} (long): {kinds}"
        (offline_at, offline), (online_at, _) = inside
        assert offline_at - killed_at >= OFFLINE_AFTER_S, f"outage {n}: offline before offline_after_s"
        assert offline_at < back_at <= online_at, f"outage {n}: alerts out of step with the frames"
        assert "camera offline" in (offline.detail or "")
    longs = sum(o.kind is Kind.long for o in plan)
    assert len(seen) == 2 * longs
    assert stored_alerts(redis_url) == [(a.id, a.kind, "flap") for _, a in seen]  # once each, in order
