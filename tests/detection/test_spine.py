"""The spine end to end: a real clip, the real model, the real Redis (DB 12)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from contracts.bus import ALERTS_STREAM, decode_alert_entry
from contracts.rules import IntrusionRuleConfig
from detection import DetectionConfig, DetectionPipeline, RedisAlertPublisher
from gridwatch.demo.clips import demo_scene, quiet_scene
from tests.detection.builders import T0, feed_clip, make_camera

pytestmark = pytest.mark.integration

RIGHT_HALF = IntrusionRuleConfig(
    id="right-half", zone="east", severity=2, polygon=((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
)


def run_clip(clip: Path, model: Path, redis_url: str, tmp_path: Path) -> list:
    publisher = RedisAlertPublisher(redis_url, tmp_path / "journal")
    pipeline = DetectionPipeline(DetectionConfig(model=model, worker_id="w-test"), publisher)
    camera = make_camera("cam-spine", [RIGHT_HALF])
    pipeline.cameras_changed({camera.id: camera})
    pipeline.start()
    try:
        feed_clip(pipeline, clip, camera.id, sample_fps=2.0)
    finally:
        pipeline.stop()
        assert publisher.wait_drained(30), "alerts were not all delivered to Redis"
        publisher.close()
    client = redis.Redis.from_url(redis_url)
    try:
        return client.xrange(ALERTS_STREAM)
    finally:
        client.close()


def test_demo_clip_gives_one_intrusion_alert(clip_cache, fp32_model, redis_url, tmp_path) -> None:
    clip = clip_cache("demo", demo_scene(seconds=24.0))
    entries = run_clip(clip, fp32_model, redis_url, tmp_path)
    assert len(entries) == 1, [decode_alert_entry(f)[0].detail for _, f in entries]
    alert, snapshot = decode_alert_entry(entries[0][1])
    assert alert.kind == "intrusion" and alert.rule == "right-half" and alert.zone == "east"
    assert alert.camera_id == "cam-spine" and alert.site_id == "site-cam-spine"
    assert alert.location is not None and alert.worker_id == "w-test" and alert.model == fp32_model.name
    assert alert.severity == 2
    entered = (alert.captured_at - T0).total_seconds()
    assert 5.5 <= entered <= 8.5, entered  # the walker's feet cross x=0.5 at t=5.9 s; samples are 0.5 s apart
    assert alert.objects and alert.objects[0].cls == "person" and alert.objects[0].track_id is not None
    x1, _, x2, _ = alert.objects[0].box
    assert (x1 + x2) / 2 > 0.5
    assert snapshot is not None and len(snapshot) < 200_000
    image = cv2.imdecode(np.frombuffer(snapshot, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] > 100


def test_quiet_clip_gives_no_alert(clip_cache, fp32_model, redis_url, tmp_path) -> None:
    clip = clip_cache("quiet", quiet_scene(seconds=16.0))
    assert run_clip(clip, fp32_model, redis_url, tmp_path) == []
