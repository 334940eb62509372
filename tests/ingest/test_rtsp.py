"""Integration: the worker against a real RTSP server (GStreamer), real Redis, real misbehaving sources."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
import redis

from contracts import AlertKind, Camera, CameraState, StreamHealth, health_key
from ingest.cameras import StaticCameraSource
from ingest.config import IngestConfig
from ingest.health import format_health_table, read_health
from ingest.metrics import MetricsServer, WorkerCollector
from ingest.probe import ProbeError, probe
from ingest.sampling import SamplingMode
from ingest.worker import IngestWorker
from tests.ingest.badsources import BadServer, free_port, resolution_change_stream
from tests.ingest.conftest import FakeAlerts, FakeSink, make_config, reader_threads, wait_until

pytestmark = pytest.mark.integration


def config(**kw: object) -> IngestConfig:
    fields: dict[str, object] = dict(
        worker_id="w-rtsp", offline_after_s=3.0, stall_timeout_s=3.0, health_interval_s=0.5
    )
    return make_config(**{**fields, **kw})


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_frames_arrive_at_the_configured_rate_and_health_is_in_redis(
    clips: dict[str, Path],
    rtsp_server,
    sink: FakeSink,
    alerts: FakeAlerts,
    redis_client: redis.Redis,
    workers,
) -> None:
    server = rtsp_server({"/cam": clips["loop"]})
    secret_url = server.url("/cam").replace("rtsp://", "rtsp://admin:hunter2@")
    cams = [
        Camera(id="key", url=secret_url, sample_fps=1.0),
        Camera(id="all", url=server.url("/cam"), sample_fps=5.0),
    ]
    worker = workers(IngestWorker(config(), StaticCameraSource(cams), sink, alerts, redis_client))
    wait_until(lambda: len(sink.of("key")) >= 7 and len(sink.of("all")) >= 30, 90, "samples of both cameras")
    for cid, rate in (("key", 1.0), ("all", 5.0)):
        frames = sink.of(cid)[-6:] if cid == "key" else sink.of(cid)[-26:]
        pts_rate = (len(frames) - 1) / (frames[-1].pts - frames[0].pts)
        assert pts_rate == pytest.approx(rate, rel=0.1), cid
        wall = (frames[-1].captured_at - frames[0].captured_at).total_seconds()
        assert (len(frames) - 1) / wall == pytest.approx(rate, rel=0.5), cid  # loaded machine: loose
    assert all(f.keyframe for f in sink.of("key"))
    assert worker._streams["key"].reader.mode is SamplingMode.keyframes
    assert worker._streams["all"].reader.mode is SamplingMode.all
    wait_until(lambda: redis_client.exists(health_key("key")), 30, "health in Redis")
    stored = StreamHealth.model_validate_json(redis_client.get(health_key("key")))
    assert stored.state is CameraState.online and stored.worker_id == "w-rtsp"
    assert stored.fps == pytest.approx(25, rel=0.1) and stored.keyframe_interval == pytest.approx(
        1.0, rel=0.1
    )
    assert 0 < redis_client.pttl(health_key("key")) <= 30_000
    table = format_health_table(read_health(redis_client))
    assert "key" in table and "online" in table and "hunter2" not in table
    server = MetricsServer([WorkerCollector(worker)], "127.0.0.1", 0)  # as `ingest.run.serve` wires it
    try:
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
        )
    finally:
        server.close()
    assert 'gridwatch_ingest_cameras{state="online",worker="w-rtsp"} 2.0' in metrics
    assert 'gridwatch_ingest_decode_cpu_seconds_total{camera="key",mode="keyframes"}' in metrics
    assert "hunter2" not in metrics
    info = probe(secret_url, timeout_s=15)
    assert (info.codec, info.width, info.height) == ("h264", 320, 180)
    assert info.fps == pytest.approx(25, rel=0.1) and info.keyframe_interval == pytest.approx(1.0, rel=0.1)
    assert "hunter2" not in info.describe()


def test_server_killed_goes_offline_once_and_comes_back_once(
    clips: dict[str, Path], rtsp_server, sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    server = rtsp_server({"/cam": clips["loop"]})
    fds_before = open_fds()
    cam = Camera(id="k1", url=server.url("/cam"), sample_fps=1.0, site_id="site-1")
    worker = workers(IngestWorker(config(), StaticCameraSource([cam]), sink, alerts))
    wait_until(lambda: worker.health()["k1"].state is CameraState.online, 60, "online")
    server.kill()
    wait_until(lambda: worker.health()["k1"].state is CameraState.offline, 60, "offline after the kill")
    assert alerts.kinds("k1") == [AlertKind.camera_offline]
    wait_until(lambda: worker.health()["k1"].reconnects >= 2, 30, "reconnect attempts")
    assert alerts.kinds("k1") == [AlertKind.camera_offline]  # failed reconnects add no alerts
    server.start()
    wait_until(lambda: worker.health()["k1"].state is CameraState.online, 60, "online after the restart")
    assert alerts.kinds("k1") == [AlertKind.camera_offline, AlertKind.camera_online]
    n = len(sink.of("k1"))
    wait_until(lambda: len(sink.of("k1")) > n + 2, 30, "samples after the restart")
    worker.stop(timeout=20)
    assert reader_threads() == []
    wait_until(lambda: open_fds() <= fds_before + 2, 15, "file descriptors released")


def test_stalled_server_is_caught_by_the_watchdog_and_recovers(
    clips: dict[str, Path], rtsp_server, sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    server = rtsp_server({"/cam": clips["loop"]})
    cam = Camera(id="s1", url=server.url("/cam"), sample_fps=1.0)
    worker = workers(IngestWorker(config(offline_after_s=6.0), StaticCameraSource([cam]), sink, alerts))
    wait_until(lambda: worker.health()["s1"].state is CameraState.online, 60, "online")
    server.stop_process()  # SIGSTOP: the socket stays open, nothing arrives
    wait_until(lambda: worker.health()["s1"].state is not CameraState.online, 30, "the watchdog to notice")
    assert "stall" in (worker.health()["s1"].reason or "")
    wait_until(lambda: worker.health()["s1"].state is CameraState.offline, 60, "offline while stopped")
    # the reader itself gives up on the silent socket (FFmpeg's socket timeout) and reconnects
    wait_until(lambda: worker.health()["s1"].reconnects >= 1, 60, "the reader to give up and reconnect")
    assert alerts.kinds("s1") == [AlertKind.camera_offline]
    server.cont_process()
    wait_until(lambda: worker.health()["s1"].state is CameraState.online, 90, "online after SIGCONT")
    assert alerts.kinds("s1") == [AlertKind.camera_offline, AlertKind.camera_online]


def test_a_stream_whose_video_stops_while_bytes_flow_is_caught(
    sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    # Bytes keep arriving (audio), so FFmpeg's socket timeout never fires: the read loop's own check must.
    server = BadServer("videostops")
    try:
        cam = Camera(id="v1", url=f"http://127.0.0.1:{server.port}/stream", sample_fps=1.0)
        worker = workers(IngestWorker(config(), StaticCameraSource([cam]), sink, alerts))
        wait_until(lambda: len(sink.of("v1")) >= 1, 60, "a sample while the video lasts")
        wait_until(
            lambda: "no video" in (worker.health()["v1"].last_error or ""), 60, "the reader to give up"
        )
        assert worker.health()["v1"].reconnects >= 1
    finally:
        server.close()


def test_bad_sources_give_clear_reasons_and_never_hurt_the_others(
    tmp_path: Path, clips: dict[str, Path], rtsp_server, sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    server = rtsp_server({"/cam": clips["loop"]})
    nortsp, garbage = BadServer("nortsp"), BadServer("garbage")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(200_000))
    changing = resolution_change_stream(tmp_path / "change.h264")
    expect = {
        "good": (server.url("/cam"), None),
        "unresolvable": (
            "rtsp://camera.invalid/live",
            ("cannot resolve host",),
        ),
        "refused": (f"rtsp://127.0.0.1:{free_port()}/live", ("refused",)),
        "notfound": (server.url("/nope"), ("404", "not found")),
        "nortsp": (
            f"rtsp://127.0.0.1:{nortsp.port}/live",
            ("invalid", "data", "timed out", "end of", "stream"),
        ),
        "garbage": (
            f"http://127.0.0.1:{garbage.port}/stream",
            ("invalid", "data", "undecodable", "no video"),
        ),
        "junkfile": (str(junk), ("invalid", "data")),
    }
    cams = [Camera(id=cid, url=url, sample_fps=1.0) for cid, (url, _) in expect.items()]
    cams.append(Camera(id="change", url=str(changing), sample_fps=2.0))
    try:
        worker = workers(IngestWorker(config(offline_after_s=2.0), StaticCameraSource(cams), sink, alerts))
        bad = [cid for cid, (_, words) in expect.items() if words]
        wait_until(
            lambda: all(worker.health()[c].state is CameraState.offline for c in bad),
            120,
            "every bad source offline",
        )
        health = worker.health()
        for cid in bad:
            reason = (health[cid].reason or "").lower()
            assert any(w in reason for w in expect[cid][1]), f"{cid}: unclear reason {reason!r}"
            assert alerts.kinds(cid) == [AlertKind.camera_offline], cid
        wait_until(
            lambda: {f.image.shape for f in sink.of("change")} >= {(180, 320, 3), (270, 480, 3)},
            90,
            "samples at both resolutions",
        )
        n = len(sink.of("good"))
        wait_until(lambda: len(sink.of("good")) >= n + 3, 60, "the good camera to keep going")
        assert worker.health()["good"].state is CameraState.online
        assert alerts.kinds("good") == [] and alerts.kinds("change") == []
    finally:
        nortsp.close()
        garbage.close()


def test_probe_fails_clearly_without_credentials() -> None:
    with pytest.raises(ProbeError) as err:
        probe(f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/live", timeout_s=5)
    assert "refused" in str(err.value).lower() and "hunter2" not in str(err.value)
