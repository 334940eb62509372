"""The clip recorder: real packets of a generated clip fed into a ring on a scripted timeline (no clock), a
fake spool that keeps what it gets; and once end to end, the worker reading a real RTSP server."""

from __future__ import annotations

import hashlib
import math
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from prometheus_client import CollectorRegistry

from contracts import Alert, AlertKind, Camera, ClipFailure, ClipMeta, ClipRequest, ClipState
from gridwatch.demo.clips import Scene, loop_clip, make_clip
from ingest.cameras import StaticCameraSource
from ingest.clips import ClipRecorder
from ingest.config import ClipConfig
from ingest.metrics import WorkerCollector
from ingest.ring import PacketRing, RingPacket, StreamParams
from ingest.worker import IngestWorker
from tests.ingest.conftest import FakeAlerts, FakeSink, make_config, wait_until
from tests.support.clipcheck import probe_clip, read_timecodes, timecode_of, timecode_overlay

FPS = 10
W0 = 1_700_000_000.0  # wall clock = W0 + stream time in the scripted cameras
CONFIG = ClipConfig(preroll_s=3, postroll_s=2, clip_max_s=8)


class FakeSpool:
    """A `ClipSpoolLike` in a directory: keeps each clip under its digest, and every failure."""

    def __init__(self, root: Path, refuse: bool = False) -> None:
        self.root = root
        self.refuse = refuse
        self.clips: list[tuple[Path, ClipMeta]] = []
        self.failures: list[ClipFailure] = []
        self._lock = threading.Lock()

    def staging_path(self) -> Path:
        return self.root / f"tmp-{uuid.uuid4().hex}.mp4"

    def add(self, staged: Path, meta: ClipMeta) -> str:
        if self.refuse:
            raise OSError(28, "No space left on device")
        digest = hashlib.sha256(staged.read_bytes()).hexdigest()
        path = staged.replace(self.root / f"{digest}.mp4")
        with self._lock:
            self.clips.append((path, meta))
        return digest

    def add_failure(self, failure: ClipFailure) -> None:
        with self._lock:
            self.failures.append(failure)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[StreamParams, list[RingPacket]]:
    """60 s of a 320x180 scene at 10 fps, a keyframe every second, each frame's index stamped in it."""
    root = tmp_path_factory.mktemp("recorder-source")
    scene = Scene(width=320, height=180, fps=FPS, seconds=60, overlays=(timecode_overlay(FPS),))
    path = make_clip(root / "source.mp4", scene, gop_seconds=1.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        params = StreamParams(ctx.name, ctx.width, ctx.height, stream.time_base, ctx.extradata)
        packets = [
            RingPacket(bytes(p), p.pts, p.dts, p.is_keyframe, p.duration or 0, 0.0)
            for p in container.demux(stream)
            if p.size and p.dts is not None
        ]
    return params, packets


class ScriptedCamera:
    """Feeds the source's packets into a ring as a reader would, up to a stream time, on the test's thread."""

    def __init__(self, camera_id: str, source: tuple[StreamParams, list[RingPacket]]) -> None:
        self.params, self.packets = source
        self.tb = float(self.params.time_base)
        self.ring = PacketRing(camera_id, CONFIG.preroll_s, CONFIG.ring_max_bytes)
        self.ring.reset(self.params, wall_offset=W0)
        self.next = 0

    def feed(self, until_t: float) -> None:
        while self.next < len(self.packets) and self.packets[self.next].dts * self.tb < until_t - 1e-9:
            p = self.packets[self.next]
            t = p.pts * self.tb
            self.ring.add(p.data, p.pts, p.dts, p.key, p.duration, t)
            if p.key:
                self.ring.mark(W0 + t, t)  # sampled at 1 frame/s, as the reader marks its samples
            self.next += 1


def alert(
    t: float, camera: str = "cam", rule: str = "r1", zone: str = "z1", kind: str = "intrusion"
) -> Alert:
    return Alert(
        kind=AlertKind(kind),
        severity=2,
        camera_id=camera,
        captured_at=datetime.fromtimestamp(W0 + t, UTC),
        rule=rule,
        zone=zone,
    )


@pytest.fixture
def spool(tmp_path: Path) -> FakeSpool:
    return FakeSpool(tmp_path)


@pytest.fixture
def recorders():
    made: list[ClipRecorder] = []

    def make(spool: FakeSpool, config: ClipConfig = CONFIG) -> ClipRecorder:
        recorder = ClipRecorder(config, spool, "w-test")
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close(10)


def shown(t: float) -> int:
    """The source frame on screen at stream time `t`."""
    return math.floor(t * FPS + 1e-6)


def frame_at(path: Path, offset: float) -> int:
    """The stamped source index of the clip's frame shown at `offset` seconds."""
    shown = [index for pts, index in read_timecodes(path) if pts <= offset + 1e-6]
    return shown[-1]


def test_an_alert_gets_preroll_and_postroll_and_its_offset_lands_on_its_frame(
    source, spool: FakeSpool, recorders
) -> None:
    recorder = recorders(spool)
    cam = ScriptedCamera("cam", source)
    recorder.attach("cam", cam.ring)
    published = FakeAlerts()
    sink = recorder.alert_sink(published)
    cam.feed(8.3)
    sink.publish(alert(8.25), b"jpeg")
    note = published.alerts[0].clip
    assert note is not None and note.state is ClipState.pending
    assert note.preroll_s == pytest.approx(3.25)  # from the keyframe at 5.0, at or before 8.25 - 3
    cam.feed(20)
    wait_until(lambda: spool.clips, 30, "the clip")
    path, meta = spool.clips[0]
    assert meta.alert_ids == (published.alerts[0].id,) and meta.camera_id == "cam"
    assert meta.alert_offsets_s == (pytest.approx(3.25),)
    assert meta.duration_s == pytest.approx(5.3)  # 5.0 .. 10.3: the frames before the alert + 2 s
    assert meta.started_at.timestamp() == pytest.approx(W0 + 5.0)
    assert (meta.codec, meta.width, meta.height, meta.worker_id) == ("h264", 320, 180, "w-test")
    assert meta.short_reason is None and meta.bytes == path.stat().st_size
    probe = probe_clip(path)
    assert probe.first_frame_key and probe.first_pts_s == 0.0
    assert frame_at(path, meta.alert_offsets_s[0]) == shown(8.25), "the alert's frame is at its offset"
    assert spool.failures == []
    counters = recorder.counters()
    assert counters.clips == 1 and counters.clip_seconds == pytest.approx(5.3) and counters.cut_cpu_s > 0


@pytest.mark.parametrize(
    ("alerts", "clips"),
    [
        # (time, rule, zone) of each alert -> each clip's (start, duration, offsets)
        ([(8.0, "r1", "z1")], [(5.0, 5.0, (3.0,))]),
        ([(8.0, "r1", "z1"), (9.0, "r1", "z1")], [(5.0, 6.0, (3.0, 4.0))]),  # extended to 9 + 2
        ([(8.0, "r1", "z1"), (9.5, "r1", "z1"), (11.4, "r1", "z1")], [(5.0, 8.0, (3.0, 4.5, 6.4))]),  # capped
        ([(8.0, "r1", "z1"), (14.0, "r1", "z1")], [(5.0, 5.0, (3.0,)), (11.0, 5.0, (3.0,))]),  # ended before
        ([(8.0, "r1", "z1"), (9.0, "r1", "z2")], [(5.0, 5.0, (3.0,)), (6.0, 5.0, (3.0,))]),  # another zone
        ([(8.0, "r1", "z1"), (9.0, "r2", "z1")], [(5.0, 5.0, (3.0,)), (6.0, 5.0, (3.0,))]),  # another rule
    ],
)
def test_alerts_of_one_incident_extend_its_clip_up_to_clip_max(
    alerts: list[tuple[float, str, str]],
    clips: list[tuple[float, float, tuple[float, ...]]],
    source,
    spool: FakeSpool,
    recorders,
) -> None:
    recorder = recorders(spool)
    cam = ScriptedCamera("cam", source)
    recorder.attach("cam", cam.ring)
    published = FakeAlerts()
    sink = recorder.alert_sink(published)
    for t, rule, zone in alerts:
        cam.feed(t + 0.05)
        sink.publish(alert(t, rule=rule, zone=zone))
    assert all(a.clip is not None and a.clip.state is ClipState.pending for a in published.alerts)
    cam.feed(40)
    wait_until(lambda: len(spool.clips) == len(clips), 30, f"{len(clips)} clips")
    got = sorted(
        (round(m.started_at.timestamp() - W0, 3), round(m.duration_s, 3), m.alert_offsets_s, m.alert_ids)
        for _, m in spool.clips
    )
    ids = [a.id for a in published.alerts]
    assert [g[:2] for g in got] == [(start, duration) for start, duration, _ in clips]
    assert [g[2] for g in got] == [pytest.approx(offsets) for _, _, offsets in clips]
    assert sorted(i for g in got for i in g[3]) == sorted(ids), "every alert is in exactly one clip"
    for path, meta in spool.clips:
        for alert_id, offset in zip(meta.alert_ids, meta.alert_offsets_s, strict=True):
            t = next(a.captured_at.timestamp() - W0 for a in published.alerts if a.id == alert_id)
            assert frame_at(path, offset) == shown(t)


@pytest.mark.parametrize(
    ("seconds", "start", "short"),
    [
        (2.5, 17.0, None),  # the keyframe at or before 19.9 - 2.5
        (3.0, 16.0, None),
        (30.0, 16.0, "asked 30 s; the ring keeps at most 3 s"),
    ],
)
def test_save_the_last_seconds_on_demand(
    seconds: float, start: float, short: str | None, source, spool: FakeSpool, recorders
) -> None:
    recorder = recorders(spool)
    cam = ScriptedCamera("cam", source)
    recorder.attach("cam", cam.ring)
    cam.feed(20)
    request = ClipRequest(
        request_id="req-1",
        camera_id="cam",
        seconds=seconds,
        requested_at=datetime.now(UTC),
        requested_by="op",
    )
    assert recorder.save_last(request)
    assert not recorder.save_last(request.model_copy(update={"camera_id": "elsewhere"}))
    wait_until(lambda: spool.clips, 30, "the on-demand clip")
    path, meta = spool.clips[0]
    assert meta.alert_ids == ("req-1",)
    assert meta.duration_s == pytest.approx(20.0 - start)
    assert meta.alert_offsets_s == (pytest.approx(meta.duration_s),)  # the press: the end of the clip
    assert meta.short_reason == short
    frames = read_timecodes(path)
    assert frames[0][1] == round(start * FPS) and frames[-1][1] == 199


def test_no_clip_when_none_can_come_and_none_for_stream_health(source, spool: FakeSpool, recorders) -> None:
    recorder = recorders(spool)
    published = FakeAlerts()
    sink = recorder.alert_sink(published)
    sink.publish(alert(1.0, camera="nowhere"))
    connecting = ScriptedCamera("connecting", source)  # connected, no keyframe yet
    recorder.attach("connecting", connecting.ring)
    sink.publish(alert(1.0, camera="connecting"))
    lost = ScriptedCamera("lost", source)
    recorder.attach("lost", lost.ring)
    lost.feed(5)
    lost.ring.disconnect("end of stream")
    sink.publish(alert(4.0, camera="lost"))
    for kind in ("camera_offline", "camera_online", "operator_clip"):
        sink.publish(alert(4.0, camera="lost", kind=kind))
    notes = [(a.clip.state.value, a.clip.reason) if a.clip else None for a in published.alerts]
    assert notes == [
        ("unavailable", "this worker does not read the camera"),
        ("unavailable", "no video held yet (waiting for a keyframe)"),
        ("unavailable", "camera not connected"),
        None,
        None,
        None,
    ]
    off = recorders(spool, ClipConfig(enabled=False))
    off_alerts = FakeAlerts()
    off.alert_sink(off_alerts).publish(alert(1.0))
    assert (
        off_alerts.alerts[0].clip is not None
        and off_alerts.alerts[0].clip.reason == "clips are off on this worker"
    )
    recorder.close(10)
    sink.publish(alert(5.0, camera="lost"))
    assert (
        published.alerts[-1].clip is not None and published.alerts[-1].clip.reason == "the worker is stopping"
    )
    assert recorder.counters().unavailable == 4 and spool.clips == [] and spool.failures == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("reconnect", "the stream reconnected"),
        ("lost", "the stream was lost (end of stream)"),
        ("detach", "the camera stopped on this worker"),
        ("close", "the worker stopped"),
    ],
)
def test_a_recording_cut_short_is_written_with_what_it_has(
    event: str, reason: str, source, spool: FakeSpool, recorders
) -> None:
    recorder = recorders(spool)
    cam = ScriptedCamera("cam", source)
    recorder.attach("cam", cam.ring)
    cam.feed(8.05)
    recorder.alert_sink(FakeAlerts()).publish(alert(8.0))
    cam.feed(9.05)
    if event == "reconnect":
        cam.ring.reset(cam.params, W0)
    elif event == "lost":
        cam.ring.disconnect("end of stream")
    elif event == "detach":
        recorder.detach("cam")
    else:
        recorder.close(10)
    wait_until(lambda: spool.clips, 30, "the cut clip")
    path, meta = spool.clips[0]
    assert meta.short_reason == reason
    assert meta.duration_s == pytest.approx(4.1)  # 5.0 .. 9.1: what the ring had
    assert read_timecodes(path)[-1][1] == 90


def test_a_clip_that_cannot_be_made_is_reported_as_a_failure(source, tmp_path: Path, recorders) -> None:
    full = FakeSpool(tmp_path, refuse=True)
    recorder = recorders(full)
    cam = ScriptedCamera("cam", source)
    recorder.attach("cam", cam.ring)
    cam.feed(8.05)
    published = FakeAlerts()
    recorder.alert_sink(published).publish(alert(8.0))
    cam.feed(12)
    wait_until(lambda: full.failures, 30, "the failure report")
    failure = full.failures[0]
    assert failure.alert_ids == (published.alerts[0].id,) and failure.camera_id == "cam"
    assert "No space left on device" in failure.reason and failure.worker_id == "w-test"
    assert list(tmp_path.glob("tmp-*")) == [], "the staged file is removed"
    assert recorder.counters().failures == 1


@pytest.fixture(scope="module")
def looped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recorder-rtsp")
    scene = Scene(width=320, height=180, fps=FPS, seconds=60, overlays=(timecode_overlay(FPS),))
    return loop_clip(make_clip(root / "base.mp4", scene, gop_seconds=1.0), root / "loop.mp4", 5)


@pytest.mark.integration
def test_the_worker_cuts_a_clip_of_a_real_rtsp_camera_where_the_alert_frame_is(
    looped: Path, rtsp_server, sink: FakeSink, alerts: FakeAlerts, spool: FakeSpool, workers, recorders
) -> None:
    server = rtsp_server({"/cam": looped})
    config = make_config(clips=CONFIG, health_interval_s=0.5)
    recorder = recorders(spool)
    wrapped = recorder.alert_sink(alerts)
    cam = Camera(id="cam", url=server.url("/cam"), sample_fps=2.0)
    worker = workers(IngestWorker(config, StaticCameraSource([cam]), sink, wrapped, clips=recorder))
    wait_until(lambda: len(sink.of("cam")) >= 10, 90, "samples")
    frame = sink.of("cam")[-1]
    grey = frame.grey(1)
    assert grey is not None
    wrapped.publish(
        Alert(kind=AlertKind.intrusion, severity=2, camera_id="cam", captured_at=frame.captured_at, rule="r")
    )
    note = alerts.alerts[-1].clip
    assert note is not None and note.state is ClipState.pending and note.preroll_s >= 3.0
    wait_until(lambda: spool.clips, 60, "the clip")
    path, meta = spool.clips[0]
    probe = probe_clip(path)
    assert probe.first_frame_key and probe.first_pts_s == 0.0
    assert 5.0 <= meta.duration_s <= 6.0 + 1 / FPS  # pre-roll + post-roll within one GOP
    assert frame_at(path, meta.alert_offsets_s[0]) == timecode_of(grey), "the alert lands on its frame"
    health = worker.health()["cam"]
    assert health.ring_limit_bytes == CONFIG.ring_max_bytes and health.ring_note is None
    assert health.ring_bytes and health.ring_bytes > 0 and health.preroll_s and health.preroll_s >= 3.0
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))
    value = registry.get_sample_value
    assert (value("gridwatch_ingest_ring_bytes", {"camera": "cam"}) or 0) > 0
    assert (value("gridwatch_ingest_rings_bytes", {"worker": "w-test"}) or 0) > 0
    assert value("gridwatch_ingest_clips_total", {"worker": "w-test"}) == 1
    assert value("gridwatch_ingest_ring_budget_bytes", {"worker": "w-test"}) == CONFIG.ring_budget_bytes
