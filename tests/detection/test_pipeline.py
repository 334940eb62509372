"""The pipeline with a fake detector at the Ultralytics seam: batching, gating, mapping, alerts."""

from __future__ import annotations

import time
from datetime import timedelta

import cv2
import numpy as np
import yaml

from contracts.camera import parse_cameras
from contracts.frames import Frame
from contracts.rules import IntrusionRuleConfig, TamperRuleConfig
from detection import DetectionConfig, DetectionPipeline
from detection.types import Detections
from gridwatch.demo.clips import background, paste, person_sprite
from tests.detection.builders import COCO, T0, make_camera, make_detections, person_at

RIGHT = IntrusionRuleConfig(id="r", zone="east", polygon=((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)))


class ListSink:
    def __init__(self) -> None:
        self.alerts: list = []

    def publish(self, alert, snapshot=None) -> None:
        self.alerts.append((alert, snapshot))


class MarkerDetector:
    """Sees a person at the x written (as a percentage) into the red channel of pixel (0, 0)."""

    name = "marker"
    names = COCO

    def __init__(self) -> None:
        self.calls: list[int] = []

    def detect(self, images):
        self.calls.append(len(images))
        out = []
        for img in images:
            x = int(img[0, 0, 2])
            out.append(make_detections(person_at(x / 100, 0.9, track=-1)) if x else Detections.empty(COCO))
        return out


def image(x_percent: int, seed: int = 7) -> np.ndarray:
    img = background(320, 180, seed)
    if x_percent:
        paste(img, person_sprite(0), x_percent / 100, 0.9, 0.5)
    img[0, 0] = (0, 0, x_percent)
    return img


def pipeline(**cfg) -> tuple[DetectionPipeline, MarkerDetector, ListSink]:
    sink, det = ListSink(), MarkerDetector()
    p = DetectionPipeline(DetectionConfig(model="unused.onnx", **cfg), sink, detector=det)
    return p, det, sink


def test_one_detector_call_per_batch_and_alerts_map_to_their_camera() -> None:
    p, det, sink = pipeline(batch_size=4)
    cams = {c: make_camera(c, [RIGHT]) for c in ("a", "b", "c")}
    p.cameras_changed(cams)
    for step in range(2):  # the tracker confirms a new object on its second sighting
        frames = [
            Frame("a", image(20 + step), T0 + timedelta(seconds=step), step),
            Frame("b", image(80 + step), T0 + timedelta(seconds=step), step),
            Frame("c", image(0), T0 + timedelta(seconds=step), step),
        ]
        p.process(frames)
    assert det.calls[0] == 3  # every camera's first frame, in one call
    assert [a.camera_id for a, _ in sink.alerts] == ["b"]
    alert, snap = sink.alerts[0]
    assert alert.site_id == "site-b" and alert.objects[0].box[0] > 0.5 and snap[:2] == b"\xff\xd8"


def test_still_cameras_are_gated_and_rules_still_see_time() -> None:
    p, det, sink = pipeline()
    tamper = TamperRuleConfig(id="t", learn_s=2, min_samples=2)
    p.cameras_changed({"s": make_camera("s", [RIGHT, tamper])})
    still = image(0)
    for step in range(10):
        p.process([Frame("s", still, T0 + timedelta(seconds=step), step)])
    assert sum(det.calls) == 1 and p.counts.gated == 9
    black = np.zeros_like(still)
    for step in range(10, 13):
        p.process([Frame("s", black, T0 + timedelta(seconds=step), step)])
    assert [a.kind for a, _ in sink.alerts] == ["tamper"]


class CountingPicture:
    """A `contracts.Picture` over a BGR array that counts colour conversions (ingest's keeps YUV)."""

    def __init__(self, bgr: np.ndarray, conversions: list[int]) -> None:
        self._bgr, self.conversions = bgr, conversions
        self.height, self.width = bgr.shape[:2]

    def bgr(self) -> np.ndarray:
        self.conversions.append(1)
        return self._bgr

    def grey(self, step: int) -> np.ndarray:
        return cv2.cvtColor(np.ascontiguousarray(self._bgr[::step, ::step]), cv2.COLOR_BGR2GRAY)


def test_gated_samples_are_never_converted_to_colour() -> None:
    p, det, sink = pipeline()
    p.cameras_changed({"s": make_camera("s", [RIGHT])})
    conversions: list[int] = []
    still = image(0)
    for step in range(10):
        p.process([Frame("s", CountingPicture(still, conversions), T0 + timedelta(seconds=step), step)])
    assert sum(det.calls) == 1 and p.counts.gated == 9
    assert len(conversions) == 1  # only the one sample that reached the detector was made BGR
    moved = CountingPicture(image(80), conversions)
    p.process([Frame("s", moved, T0 + timedelta(seconds=10), 10)])
    assert sum(det.calls) == 2 and len(conversions) == 2


def test_threaded_submit_unknown_cameras_and_stop() -> None:
    p, det, sink = pipeline()
    p.cameras_changed({"a": make_camera("a", [RIGHT])})
    p.start()
    try:
        p.submit(Frame("zzz", image(0), T0, 0))
        for step in range(3):
            p.submit(Frame("a", image(70), T0 + timedelta(seconds=step), step))
            deadline = time.monotonic() + 60
            while p.counts.processed < step + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        deadline = time.monotonic() + 60
        while not sink.alerts and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        p.stop()
    assert p.counts.unknown_camera == 1
    assert len(sink.alerts) == 1


def test_submit_keeps_one_frame_per_camera_and_reports_its_drops() -> None:
    p, _, _ = pipeline()
    p.cameras_changed({"a": make_camera("a", [RIGHT])})
    for step in range(3):  # the detector thread is not running: nothing is taken
        p.submit(Frame("a", image(0), T0 + timedelta(seconds=step), step))
    p.submit(Frame("zzz", image(0), T0, 0))  # not this worker's camera: not a drop of the buffer
    assert len(p.buffer) == 1 and p.dropped("a") == 2 and p.dropped("zzz") == 0
    assert p.counts.submitted == 4 and p.counts.unknown_camera == 1
    p.cameras_changed({})  # a camera no longer owned is forgotten, with its count
    assert len(p.buffer) == 0 and p.dropped("a") == 0


def test_cameras_changed_keeps_state_of_unchanged_cameras_and_drops_removed() -> None:
    p, _, _ = pipeline()
    a, b = make_camera("a", [RIGHT]), make_camera("b", [RIGHT])
    p.cameras_changed({"a": a, "b": b})
    state_a = p._cameras["a"]
    p.cameras_changed({"a": a})
    assert p._cameras["a"] is state_a and "b" not in p._cameras
    p.cameras_changed({"a": make_camera("a", [])})
    assert p._cameras["a"] is not state_a


CAMERA_YAML = """
cameras:
  - id: gate-1
    url: rtsp://u:p@10.0.0.1/stream
    rules:
      - {id: gate, kind: intrusion, zone: yard, polygon: [[0.5, 0.3], [1, 0.3], [1, 1], [0.5, 1]],
         min_samples: 2, windows: [{start: "22:00", end: "06:00"}], utc_offset_minutes: 480}
      - {id: linger, kind: loitering, zone: yard, polygon: [[0.5, 0.3], [1, 0.3], [1, 1]], dwell_s: 120}
      - {id: crowd, kind: crowd, zone: square, polygon: [[0, 0], [1, 0], [1, 1]], min_count: 8,
         min_duration_s: 30}
      - {id: door, kind: line_crossing, line: door, a: [0.2, 0.6], b: [0.8, 0.6], direction: a_to_b}
      - {id: no-cars, kind: vehicle_restricted, zone: plaza, polygon: [[0, 0.5], [1, 0.5], [1, 1]]}
      - {id: tamper, kind: tamper, learn_s: 30}
"""


def test_camera_yaml_builds_every_rule() -> None:
    cams = parse_cameras(yaml.safe_load(CAMERA_YAML), "cameras.yaml")
    kinds = [r.kind for r in cams[0].rules]
    assert kinds == ["intrusion", "loitering", "crowd", "line_crossing", "vehicle_restricted", "tamper"]
    p, _, _ = pipeline()
    p.cameras_changed({c.id: c for c in cams})
    assert [type(r).__name__ for r in p._cameras["gate-1"].rules] == [
        "ZoneIntrusionRule",
        "LoiteringRule",
        "CrowdRule",
        "LineCrossingRule",
        "ZoneIntrusionRule",
        "TamperRule",
    ]


def test_metrics_collector_reads_counters(tmp_path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from detection.metrics import DetectionCollector

    p, _, _ = pipeline()
    p.cameras_changed({"a": make_camera("a", [RIGHT])})
    p.process([Frame("a", image(70), T0, 0)])
    registry = CollectorRegistry()
    registry.register(DetectionCollector(p))
    text = generate_latest(registry).decode()
    assert 'gridwatch_detection_frames_total{outcome="inferred",worker="worker"} 1.0' in text
    assert "gridwatch_detection_gate_decisions_total" in text


def test_restart_after_stop() -> None:
    p, _, _ = pipeline()
    p.cameras_changed({"a": make_camera("a", [RIGHT])})
    p.start()
    p.stop()
    p.start()
    try:
        p.submit(Frame("a", image(70), T0, 0))
        deadline = time.monotonic() + 60
        while p.counts.processed < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        p.stop()
    assert p.counts.processed == 1
