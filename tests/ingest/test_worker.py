"""The worker end to end on file sources (paced to real time) with fake sinks (and once with detection's
pipeline as the sink): no server needed."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml

from contracts import AlertKind, Camera, CameraState, Frame
from ingest.cameras import StaticCameraSource, YamlCameraSource
from ingest.config import IngestConfig
from ingest.worker import IngestWorker
from tests.ingest.conftest import FakeAlerts, FakeSink, make_config, wait_until


def config(**kw: object) -> IngestConfig:
    return make_config(**{"offline_after_s": 1.0, "stall_timeout_s": 5.0, **kw})


def test_file_camera_is_sampled_at_the_configured_rate(
    clips: dict[str, Path], sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    cam = Camera(id="c1", url=str(clips["loop"]), sample_fps=2.0)
    worker = workers(IngestWorker(config(), StaticCameraSource([cam]), sink, alerts))
    assert sink.changes[0] == {"c1"}
    wait_until(lambda: len(sink.of("c1")) >= 12, 60, "12 samples")
    frames = sink.of("c1")[-10:]
    span = (frames[-1].captured_at - frames[0].captured_at).total_seconds()
    assert 9 / span == pytest.approx(2.0, rel=0.35)  # wall-clock pacing on a loaded machine: loose
    pts_rate = 9 / (frames[-1].pts - frames[0].pts)
    assert pts_rate == pytest.approx(2.0, rel=0.05)  # stream time: exact
    assert frames[0].image.shape == (180, 320, 3)
    health = worker.health()["c1"]
    assert health.state is CameraState.online
    assert health.fps == pytest.approx(25, rel=0.05)
    assert health.keyframe_interval == pytest.approx(1.0, rel=0.05)
    assert health.width == 320 and health.codec == "h264"
    assert alerts.alerts == []


def test_cameras_are_added_changed_and_removed_without_restart(
    clips: dict[str, Path], sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    c1 = Camera(id="c1", url=str(clips["loop"]), sample_fps=1.0)
    source = StaticCameraSource([c1])
    worker = workers(IngestWorker(config(), source, sink, alerts))
    wait_until(lambda: sink.of("c1"), 60, "c1 samples")
    c2 = Camera(id="c2", url=str(clips["loop"]), sample_fps=1.0)
    source.replace([c1, c2])
    wait_until(lambda: sink.of("c2"), 60, "c2 samples after it was added")
    assert sink.changes[-1] == {"c1", "c2"}
    source.replace([c1.model_copy(update={"sample_fps": 4.0}), c2.model_copy(update={"enabled": False})])
    wait_until(lambda: sink.changes[-1] == {"c1"}, 30, "c2 disabled")
    wait_until(lambda: set(worker.health()) == {"c1"}, 30, "c2 reader stopped")
    before = len(sink.of("c1"))
    wait_until(lambda: len(sink.of("c1")) >= before + 8, 60, "c1 at the new rate")
    source.replace([])
    wait_until(lambda: sink.changes[-1] == set() and worker.health() == {}, 30, "every camera removed")


def test_yaml_source_reloads_on_change(
    tmp_path: Path, clips: dict[str, Path], sink: FakeSink, alerts: FakeAlerts, workers
) -> None:
    path = tmp_path / "cameras.yaml"
    entry = {"id": "y1", "url": str(clips["loop"]), "sample_fps": 1.0}
    path.write_text(yaml.safe_dump({"cameras": [entry]}))
    workers(IngestWorker(config(), YamlCameraSource(path), sink, alerts))
    wait_until(lambda: sink.of("y1"), 60, "y1 samples")
    path.write_text(yaml.safe_dump({"cameras": [entry, {**entry, "id": "y2"}]}))
    wait_until(lambda: sink.of("y2"), 60, "y2 samples after editing the file")
    path.write_text("cameras: [{id: 'bad id!'}]")  # a broken edit keeps the running set
    path.write_text(yaml.safe_dump({"cameras": [{**entry, "id": "y2"}]}))
    wait_until(lambda: sink.changes[-1] == {"y2"}, 30, "y1 removed")


def test_missing_source_goes_offline_once_and_never_leaks_credentials(
    tmp_path: Path, sink: FakeSink, alerts: FakeAlerts, workers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cam = Camera(id="gone", url="rtsp://admin:hunter2@127.0.0.1:1/live", sample_fps=1.0, site_id="s1")
    worker = workers(IngestWorker(config(offline_after_s=1.0), StaticCameraSource([cam]), sink, alerts))
    wait_until(lambda: alerts.kinds("gone"), 30, "an offline alert")
    wait_until(lambda: worker.health()["gone"].reconnects >= 3, 30, "three reconnects")
    assert alerts.kinds("gone") == [AlertKind.camera_offline]
    alert = alerts.alerts[0]
    assert alert.severity == 3 and alert.site_id == "s1" and alert.worker_id == "w-test"
    assert "refused" in (alert.detail or "").lower()
    health = worker.health()["gone"]
    assert health.state is CameraState.offline and "refused" in (health.reason or "").lower()
    everything = caplog.text + health.model_dump_json() + alert.model_dump_json()
    assert "hunter2" not in everything and "admin" not in everything


def test_bad_camera_file_fails_the_start(tmp_path: Path, sink: FakeSink, alerts: FakeAlerts) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras: [{id: c1}]")
    worker = IngestWorker(config(), YamlCameraSource(path), sink, alerts)
    with pytest.raises(ValueError, match="c1"):
        worker.start()


def test_a_failing_sink_does_not_stop_the_reader(
    clips: dict[str, Path], alerts: FakeAlerts, workers, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakeSink):
        def submit(self, frame: Frame) -> None:
            if frame.camera_id == "bad":
                raise RuntimeError("boom")
            super().submit(frame)

    sink = Broken()
    cams = [Camera(id=c, url=str(clips["loop"]), sample_fps=1.0) for c in ("bad", "good")]
    worker = workers(IngestWorker(config(), StaticCameraSource(cams), sink, alerts))
    wait_until(lambda: len(sink.of("good")) >= 2, 60, "the good camera's samples")
    wait_until(lambda: worker.stream_counters()["bad"].samples >= 3, 60, "the bad camera to go on sampling")
    assert worker.health()["bad"].state is CameraState.online
    assert "frame sink failed on camera bad" in caplog.text


class SlowDetector:
    """A detector that takes `seconds` per batch and sees nothing: the pipeline falls behind the reader."""

    name = "slow"
    names = ("person",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def detect(self, images):  # noqa: ANN001, ANN201
        from detection.types import Detections

        time.sleep(self.seconds)
        return [Detections.empty(self.names) for _ in images]


def test_a_slow_sink_drops_samples_once_and_health_and_metrics_show_each_once(
    clips: dict[str, Path], alerts: FakeAlerts
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from detection import DetectionConfig, DetectionPipeline, MotionConfig, TrackerConfig
    from detection.metrics import DetectionCollector
    from ingest.metrics import WorkerCollector

    detection = DetectionConfig(
        model="unused.onnx",
        motion=MotionConfig(enabled=False),  # every sample goes to the (slow) detector
        tracker=TrackerConfig(enabled=False),
        max_frame_age_s=0.3,
    )
    pipeline = DetectionPipeline(detection, alerts, detector=SlowDetector(2.5))
    cam = Camera(id="c1", url=str(clips["loop"]), sample_fps=1.0)
    worker = IngestWorker(config(), StaticCameraSource([cam]), pipeline, alerts)
    registry = CollectorRegistry()  # one registry for both, as `gridwatch ingest` serves them
    registry.register(WorkerCollector(worker))
    registry.register(DetectionCollector(pipeline))
    pipeline.start()
    try:
        worker.start()
        reader = worker._streams["c1"].reader
        wait_until(lambda: pipeline.dropped("c1") >= 3, 60, "samples dropped by the busy pipeline")
        for _ in range(100):  # a read between two samples (they come once a second)
            made, dropped = reader.samples, pipeline.dropped("c1")
            health = worker.health()["c1"]
            text = generate_latest(registry).decode()
            submitted = pipeline.counts.submitted
            if (reader.samples, pipeline.dropped("c1")) == (made, dropped) and submitted == made:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no read saw every sample the reader made reach the sink, with the counts still")
        # every sample the reader made reached the sink: no drop before it (one slot per camera, in detection)
        assert health.dropped_samples == dropped
        series = [
            line
            for line in text.splitlines()
            if not line.startswith("#") and any(w in line for w in ("drop", "replaced", "stale"))
        ]
        assert series == [f'gridwatch_ingest_dropped_samples_total{{camera="c1"}} {float(dropped)}']
    finally:
        worker.stop(timeout=20)
        pipeline.stop()
    # each sample that reached the buffer was taken, dropped (once) or is still waiting
    counts = pipeline.buffer.counts
    assert counts.accepted == pipeline.counts.submitted
    assert counts.accepted == counts.taken + pipeline.dropped("c1") + len(pipeline.buffer)
    assert pipeline.dropped("c1") == counts.replaced + counts.stale
