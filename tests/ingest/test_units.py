"""Unit tests of the small pieces: rendezvous hashing, health table, metrics, credential redaction.

The one slot per camera between readers and detection is `detection.buffer.LatestFrameBuffer`
(tests/detection/test_motion_buffer.py); a failing sink is tested on a running worker (test_worker.py).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import av.error
import numpy as np
import pytest

from contracts import CameraState, Frame, StreamHealth
from ingest.config import IngestConfig
from ingest.health import format_health_table
from ingest.metrics import StreamCounters, WorkerCollector
from ingest.reader import describe_error, source_spec
from ingest.sharding import assign

CAMERAS = [f"cam-{i:04d}" for i in range(2000)]


def test_rendezvous_spreads_evenly_and_a_join_moves_about_a_quarter() -> None:
    three = assign(CAMERAS, ["w1", "w2", "w3"])
    counts = [sum(1 for o in three.values() if o == w) for w in ("w1", "w2", "w3")]
    assert all(abs(c - len(CAMERAS) / 3) < len(CAMERAS) * 0.05 for c in counts)
    four = assign(CAMERAS, ["w1", "w2", "w3", "w4"])
    moved = [c for c in CAMERAS if three[c] != four[c]]
    assert all(four[c] == "w4" for c in moved)  # only cameras the newcomer wins move
    assert abs(len(moved) / len(CAMERAS) - 0.25) < 0.04


def test_rendezvous_death_moves_only_the_dead_workers_cameras() -> None:
    three = assign(CAMERAS, ["w1", "w2", "w3"])
    two = assign(CAMERAS, ["w1", "w3"])
    for camera in CAMERAS:
        if three[camera] != "w2":
            assert two[camera] == three[camera]


@pytest.mark.parametrize(
    ("url", "transport", "paced"),
    [
        ("rtsp://cam/stream", "tcp", False),
        ("rtsp+udp://cam/stream", "udp", False),
        ("rtsp+http://cam/stream", "http", False),
        ("http://cam/video.ts", None, False),
        ("/data/clip.mp4", None, True),
        ("file:///data/clip.mp4", None, True),
    ],
)
def test_source_spec_by_url(url: str, transport: str | None, paced: bool) -> None:
    spec = source_spec(url, 5, 7)
    assert spec.options.get("rtsp_transport") == transport
    assert spec.paced is paced
    if transport:
        assert spec.url.startswith("rtsp://") and spec.options["timeout"] == "7000000"
    if url.startswith("file://"):
        assert spec.url == "/data/clip.mp4"


@pytest.mark.parametrize(
    "exc",
    [
        av.error.HTTPNotFoundError(0, "Server returned 404 Not Found", "rtsp://admin:hunter2@10.0.0.9/live"),
        ConnectionRefusedError(111, "Connection refused"),
        ValueError("bad rtsp://admin:hunter2@10.0.0.9/live"),
    ],
)
def test_reasons_never_carry_credentials(exc: BaseException) -> None:
    reason = describe_error(exc, "rtsp://admin:hunter2@10.0.0.9/live")
    assert "hunter2" not in reason and "admin" not in reason
    assert reason


def test_health_table_shows_the_columns_an_operator_needs() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    rows = [
        StreamHealth(
            camera_id="c1",
            state=CameraState.online,
            fps=25.0,
            keyframe_interval=2.0,
            bitrate_kbps=4012,
            sample_fps=0.5,
            width=1920,
            height=1080,
            last_frame_at=now - timedelta(seconds=1.5),
            reconnects=2,
            worker_id="w1",
        ),
        StreamHealth(
            camera_id="c2",
            state=CameraState.offline,
            reason="ConnectionRefusedError: Connection refused",
            reconnects=7,
            last_error="ConnectionRefusedError: Connection refused",
        ),
    ]
    table = format_health_table(rows, now=now)
    header, first, second, summary = table.splitlines()
    for column in ("state", "fps", "keyint", "kbps", "frame age", "reconn", "last error"):
        assert column in header
    assert "online" in first and "25.0" in first and "2.00" in first and "4012" in first and "1.5s" in first
    assert "offline" in second and "Connection refused" in second and "7" in second
    assert summary == "(1 offline, 1 online)"


class FakeStatus:
    """A `WorkerStatus`: what the metrics collector reads of a worker."""

    worker_id = "w1"

    def __init__(self, rows: list[StreamHealth], counters: dict[str, StreamCounters]) -> None:
        self.rows, self.counters = rows, counters

    def health(self) -> dict[str, StreamHealth]:
        return {r.camera_id: r for r in self.rows}

    def stream_counters(self) -> dict[str, StreamCounters]:
        return self.counters


def test_worker_metrics_read_health_and_typed_counters() -> None:
    from prometheus_client import CollectorRegistry

    rows = [
        StreamHealth(
            camera_id="c1", state=CameraState.online, sample_fps=0.5, reconnects=2, dropped_samples=7
        ),
        StreamHealth(camera_id="c2", state=CameraState.offline),
    ]
    status = FakeStatus(rows, {"c1": StreamCounters(decode_cpu_s=1.5, samples=40, mode="keyframes")})
    registry = CollectorRegistry()
    registry.register(WorkerCollector(status))
    value = registry.get_sample_value
    assert value("gridwatch_ingest_cameras", {"worker": "w1", "state": "online"}) == 1
    assert value("gridwatch_ingest_cameras", {"worker": "w1", "state": "offline"}) == 1
    assert value("gridwatch_ingest_dropped_samples_total", {"camera": "c1"}) == 7
    assert value("gridwatch_ingest_dropped_samples_total", {"camera": "c2"}) == 0
    assert value("gridwatch_ingest_reconnects_total", {"camera": "c1"}) == 2
    assert value("gridwatch_ingest_decode_cpu_seconds_total", {"camera": "c1", "mode": "keyframes"}) == 1.5
    assert value("gridwatch_ingest_samples_total", {"camera": "c1"}) == 40
    assert value("gridwatch_ingest_samples_total", {"camera": "c2"}) is None  # no reader counters yet


def test_config_bounds() -> None:
    with pytest.raises(ValueError):
        IngestConfig(worker_id="w", backoff_initial_s=10, backoff_max_s=1)
    with pytest.raises(ValueError):
        IngestConfig(worker_id="w", unknown=1)  # type: ignore[call-arg]
    assert IngestConfig(worker_id="w", heartbeat_s=2).worker_ttl_s == 3


def test_keyframe_decoder_skips_deblocking_and_converts_on_one_thread(tmp_path) -> None:  # noqa: ANN001
    import av

    from contracts import Camera
    from gridwatch.demo.clips import Scene, make_clip
    from ingest.reader import StreamReader
    from ingest.sampling import SamplingMode

    clip = make_clip(tmp_path / "k.mp4", Scene(width=320, height=240, fps=10, seconds=1), gop_seconds=1.0)
    frames: list[Frame] = []

    class Listener:
        def on_connected(self, reader) -> None: ...  # noqa: ANN001
        def on_sample(self, reader, frame) -> None:  # noqa: ANN001
            frames.append(frame)

        def on_failure(self, reader, reason) -> None: ...  # noqa: ANN001
        def on_reconnect(self, reader, delay) -> None: ...  # noqa: ANN001

    camera = Camera(id="k", url="rtsp://127.0.0.1:9/k", sample_fps=1)
    for skip in (True, False):
        config = IngestConfig(worker_id="w", keyframe_skip_loop_filter=skip)
        reader = StreamReader(camera, config, Listener(), threading.Semaphore(1))
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            decoder = reader._new_decoder(stream.codec_context, SamplingMode.keyframes)
            assert (decoder.options.get("skip_loop_filter") == "all") is skip
            key = next(p for p in container.demux(stream) if p.is_keyframe and p.size)
            for frame in reader._decode(decoder, key):
                reader._emit(frame, 0.0, True)
    assert len(frames) == 2
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    # deblocking changes a compressed picture only slightly
    diff = np.abs(frames[0].image.astype(np.int16) - frames[1].image.astype(np.int16)).mean()
    assert diff < 4.0


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
def test_decoded_picture_reads_luma_in_place_and_converts_colour_once(pix_fmt: str) -> None:
    import cv2

    from gridwatch.demo.clips import Scene, Walker, background, render
    from ingest.reader import DecodedPicture

    scene = Scene(width=320, height=180, walkers=(Walker(path=((0.0, 0.5, 0.9),)),))
    bgr = render(scene, 0.0, background(320, 180), np.random.default_rng(1))
    yuv = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format=pix_fmt)
    picture = DecodedPicture(yuv)
    assert (picture.width, picture.height) == (320, 180)
    for step in (1, 2, 6):
        grey = picture.grey(step)
        expected = cv2.cvtColor(np.ascontiguousarray(bgr[::step, ::step]), cv2.COLOR_BGR2GRAY)
        assert grey is not None and grey.shape == expected.shape and grey.dtype == np.uint8
        # limited-range luma is stretched to full range, so grey levels match a BGR->grey conversion
        assert np.abs(grey.astype(np.int16) - expected.astype(np.int16)).mean() < 2.0
    assert picture._bgr is None  # luminance alone never converts the picture
    first = picture.bgr()
    assert first.shape == (180, 320, 3) and picture.bgr() is first
    assert np.abs(first.astype(np.int16) - bgr.astype(np.int16)).mean() < 3.0
    frame = Frame("k", picture, datetime.now(UTC), 1)
    assert frame.image is first and (frame.width, frame.height) == (320, 180)


def test_a_picture_without_a_luma_plane_falls_back_to_colour() -> None:
    from detection.motion import small_grey
    from ingest.reader import DecodedPicture

    rgb = av.VideoFrame.from_ndarray(np.full((60, 80, 3), (10, 200, 30), np.uint8), format="rgb24")
    picture = DecodedPicture(rgb)
    assert picture.grey(2) is None
    grey = small_grey(Frame("k", picture, datetime.now(UTC), 1), 40)
    assert grey.shape == (30, 40) and 120 < int(grey.mean()) < 140  # 0.299*10 + 0.587*200 + 0.114*30 ~ 124
