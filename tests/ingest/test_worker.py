"""The worker end to end on file sources (paced to real time) with fake sinks: no server needed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from contracts import AlertKind, Camera, CameraState
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
