"""Builders for detection tests: detections, cameras, clip decoding and feeding a pipeline."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

from contracts.camera import Camera
from contracts.frames import Frame
from detection.rules.base import Observation
from detection.types import Detections

COCO = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, noon UTC


def make_detections(*objects: tuple[float, float, float, float] | dict[str, Any]) -> Detections:
    """Each object is a box (x1, y1, x2, y2) or a dict(box=..., cls='person', conf=0.9, track=1)."""
    boxes, conf, cls, tracks = [], [], [], []
    for obj in objects:
        spec = obj if isinstance(obj, dict) else {"box": obj}
        boxes.append(spec["box"])
        conf.append(spec.get("conf", 0.9))
        cls.append(COCO.index(spec.get("cls", "person")))
        tracks.append(spec.get("track", -1))
    if not boxes:
        return Detections.empty(COCO)
    return Detections.from_lists(boxes, conf, cls, COCO, tracks)


def person_at(
    x: float, y: float, track: int = 1, cls: str = "person", conf: float = 0.9, h: float = 0.3
) -> dict:
    """A person whose bottom-center is at (x, y)."""
    w = h / 3
    return {"box": (x - w / 2, y - h, x + w / 2, y), "cls": cls, "conf": conf, "track": track}


def obs(t: float, *objects: tuple | dict, fresh: bool = True) -> Observation:
    return Observation(t=T0.timestamp() + t, detections=make_detections(*objects), fresh=fresh)


def make_camera(camera_id: str = "cam-1", rules: Sequence[Any] = (), **extra: Any) -> Camera:
    data = {
        "id": camera_id,
        "url": f"rtsp://user:pw@127.0.0.1/{camera_id}",
        "site_id": f"site-{camera_id}",
        "location": {"lat": 36.61, "lon": 101.78},
        "rules": [r.model_dump() if hasattr(r, "model_dump") else r for r in rules],
    }
    data.update(extra)
    return Camera.model_validate(data)


def decode_samples(path: Path, sample_fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """Decode a clip with PyAV, yielding (seconds, BGR image) at `sample_fps`."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_t = 0.0
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else next_t
            if t + 1e-6 >= next_t:
                yield t, frame.to_ndarray(format="bgr24")
                next_t += 1.0 / sample_fps


def feed_clip(
    pipeline: Any,
    path: Path,
    camera_id: str,
    *,
    sample_fps: float = 2.0,
    start: datetime = T0,
    timeout: float = 120.0,
) -> int:
    """Submit a clip's samples one at a time, waiting until each is processed (no frame is replaced)."""
    count = 0
    for seq, (t, image) in enumerate(decode_samples(path, sample_fps)):
        before = pipeline.counts.processed
        pipeline.submit(Frame(camera_id, image, start + timedelta(seconds=t), seq, pts=t))
        deadline = time.monotonic() + timeout
        while pipeline.counts.processed <= before:
            if time.monotonic() > deadline:
                raise AssertionError(f"pipeline did not process sample {seq} of {path.name} in {timeout} s")
            time.sleep(0.005)
        count += 1
    return count
