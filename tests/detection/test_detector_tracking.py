"""The Ultralytics edge: batching correctness (YAML-built model, any batch size), the shared ONNX model at
320 and 640, tracking with stable ids, snapshots."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detection.config import TrackerConfig
from detection.detector import UltralyticsDetector
from detection.snapshot import draw_alert, encode_jpeg
from detection.tracking import CameraTracker
from detection.types import Detections
from gridwatch.demo.clips import background, paste, person_sprite, ultralytics_asset
from tests.detection.builders import make_detections


def scene(x: float, seed: int = 7) -> np.ndarray:
    img = background(640, 360, seed)
    paste(img, person_sprite(0), x, 0.95, 0.6)
    return img


@pytest.fixture(scope="module")
def yaml_detector(tmp_path_factory: pytest.TempPathFactory) -> UltralyticsDetector:
    """A batch-capable model Ultralytics builds from `yolov8n.yaml` (random weights, nothing downloaded).

    Freshly initialized, its activations fade to nothing layer by layer, so every image would give the same
    output; calibrating the BatchNorm statistics on random input makes the output depend on the image.
    The model is saved as `.pt` and loaded back, which also exercises the `.pt` path.
    """
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)  # before the build: its weights are drawn at random
    yolo = YOLO("yolov8n.yaml")
    net = yolo.model
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None
        net.train()
        for _ in range(3):
            net(torch.rand(4, 3, 320, 320))
        net.eval()
    path = tmp_path_factory.mktemp("yaml-model") / "yolov8n_random.pt"
    yolo.save(str(path))
    return UltralyticsDetector(path, imgsz=320, conf=0.001)


def same_boxes(a: Detections, b: Detections, tol: float = 2e-3, floor: float = 0.01) -> bool:
    """Whether every box of one set above `floor` has its twin in the other (order-free; `floor` stays well
    above the detector threshold, so boxes at the threshold that float noise lets in or out do not matter)."""

    def covered(x: Detections, y: Detections) -> bool:
        keep = x.xyxy[x.confidence >= floor]
        if len(keep) == 0 or len(y) == 0:
            return len(keep) == 0
        dist = np.abs(keep[:, None, :] - y.xyxy[None, :, :]).max(axis=2)
        return bool((dist.min(axis=1) < tol).all())

    return covered(a, b) and covered(b, a)


def test_batch_results_map_back_to_their_frames(yaml_detector: UltralyticsDetector) -> None:
    images = [scene(0.2, 1), scene(0.5, 2), scene(0.8, 3), scene(0.4, 4)]
    singles = [yaml_detector.detect([img])[0] for img in images]
    batched = yaml_detector.detect(images)
    reordered = yaml_detector.detect(images[::-1])[::-1]
    assert len(batched) == len(reordered) == len(images)
    for i, single in enumerate(singles):
        assert (single.confidence >= 0.01).sum() > 3, "the random model should see something in every frame"
        assert same_boxes(batched[i], single), f"batched frame {i} does not match its single run"
        assert same_boxes(reordered[i], single), f"reordered frame {i} does not match"
        for j, other in enumerate(singles):
            if j != i:
                assert not same_boxes(other, single), f"frames {i} and {j} are indistinguishable"


@pytest.mark.parametrize("imgsz", [320, 640])
def test_shared_model_finds_the_people_of_bus_jpg(fp32_model, imgsz: int) -> None:
    detector = UltralyticsDetector(fp32_model, imgsz=imgsz, conf=0.5)
    image = cv2.imread(str(ultralytics_asset("bus.jpg")))
    det = detector.detect([image, image])  # a fixed-batch-1 model still takes a list in one call
    assert len(det) == 2
    people = [det[0].class_name(i) for i in range(len(det[0]))].count("person")
    assert people >= 3
    assert (det[0].xyxy >= 0).all() and (det[0].xyxy <= 1).all()


def test_detector_class_filter(fp32_model) -> None:
    detector = UltralyticsDetector(fp32_model, conf=0.3, classes=["bus"])
    det = detector.detect([cv2.imread(str(ultralytics_asset("bus.jpg")))])[0]
    assert len(det) == 1 and det.class_name(0) == "bus"
    with pytest.raises(ValueError):
        UltralyticsDetector(fp32_model, classes=["unicorn"])


def test_tracker_keeps_ids_at_sampled_rates() -> None:
    tracker = CameraTracker(TrackerConfig(), 640, 360)
    ids = []
    for i in range(12):  # two people walking in opposite directions, moving a fifth of their width per sample
        a = {"box": (0.10 + 0.02 * i, 0.3, 0.18 + 0.02 * i, 0.9), "track": -1}
        b = {"box": (0.80 - 0.02 * i, 0.3, 0.88 - 0.02 * i, 0.9), "track": -1}
        out = tracker.update(make_detections(a, b))
        ids.append(sorted(zip(out.xyxy[:, 0].round(2).tolist(), out.tracker_id.tolist(), strict=True)))
    assert ids[0] and len(ids[0]) == 2  # the first frame confirms at once
    left, right = ids[0][0][1], ids[0][1][1]
    for row in ids[1:6]:
        assert [tid for _, tid in row] == [left, right]
    assert tracker.alive


def test_tracker_survives_a_missed_sample() -> None:
    tracker = CameraTracker(TrackerConfig(), 640, 360)
    box = {"box": (0.4, 0.3, 0.5, 0.9), "track": -1}
    first = tracker.update(make_detections(box)).tracker_id.tolist()
    tracker.update(make_detections())
    again = tracker.update(make_detections(box)).tracker_id.tolist()
    assert first == again


def test_snapshot_under_limit_with_drawing() -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (1080, 1920, 3), np.uint8)  # noise: the worst case for JPEG
    det = make_detections({"box": (0.1, 0.1, 0.3, 0.9), "track": 7})
    canvas = draw_alert(
        big, det, polygon=((0.5, 0.0), (1.0, 0.0), (1.0, 1.0)), label="intrusion r", max_width=960
    )
    assert canvas.shape[1] == 960
    data = encode_jpeg(canvas, 200_000)
    assert len(data) <= 200_000 and data[:2] == b"\xff\xd8"
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    assert len(encode_jpeg(big, 20_000)) <= 20_000


@pytest.mark.parametrize("fps", [0.5, 1.0, 2.0, 5.0])
def test_walkers_keep_their_ids_at_sampled_rates(fps: float) -> None:
    """Two people walking one behind the other at a normal pace (~0.8 body heights per second)."""
    tracker = CameraTracker(TrackerConfig(), 640, 360, sample_interval_s=1 / fps)
    h = 0.15
    w = h * 0.4 * 360 / 640
    speed = 0.8 * h * 360 / 640  # frame widths per second
    seen: dict[int, list[int]] = {0: [], 1: []}
    steps = int(10 * fps)
    for i in range(steps):
        xs = (0.05 + speed * i / fps, 0.30 + speed * i / fps)
        det = make_detections(*({"box": (x - w / 2, 0.9 - h, x + w / 2, 0.9), "track": -1} for x in xs))
        out = tracker.update(det, (640, 360))
        for j in range(len(out)):
            cx = float(out.xyxy[j, 0] + out.xyxy[j, 2]) / 2
            seen[0 if abs(cx - xs[0]) < abs(cx - xs[1]) else 1].append(int(out.tracker_id[j]))
    for person, ids in seen.items():
        assert len(ids) == steps, f"person {person} was dropped by the tracker: {ids}"
        assert len(set(ids)) == 1, f"person {person} changed id: {ids}"
