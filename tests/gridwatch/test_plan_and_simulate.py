"""`gridwatch plan` arithmetic, and `gridwatch simulate` writing real alerts to a real Redis."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import redis
import yaml

from contracts import ALERTS_STREAM, decode_alert_entry, parse_cameras
from gridwatch.plan import PlanInput, describe, plan
from gridwatch.simulate import simulate
from tests.support.stack import DEMO_CONFIG


@pytest.mark.parametrize(
    ("spec", "cores", "hosts"),
    [
        # 100 cameras, 1/s, 20% active: 100 * (0.0035 + 1 * 0.018) = 2.15 cores to read
        # + (100 * (0.2 + 0.8 * 0.03)) * 0.14 = 3.136 to detect
        (PlanInput(cameras=100), 5.3, 1),
        # Everything still: only the gated 3% reach the detector; 0.5 samples/s halves the keyframe decodes.
        (PlanInput(cameras=1000, active_fraction=0.0, sample_fps=0.5), 12.5 + 500 * 0.03 * 0.14, 2),
        (PlanInput(cameras=8502, cores_per_host=16, headroom=0.5), None, None),
    ],
)
def test_plan_adds_decode_and_gated_detection(spec: PlanInput, cores: float | None, hosts: int | None):
    result = plan(spec)
    if cores is not None:
        assert result.total_cores == pytest.approx(cores, abs=0.06)
    if hosts is not None:
        assert result.hosts == hosts
    assert result.hosts * spec.cores_per_host * (1 - spec.headroom) >= result.total_cores
    assert (result.hosts - 1) * spec.cores_per_host * (1 - spec.headroom) < result.total_cores
    assert f"{result.hosts} worker host(s)" in describe(spec, result)


@pytest.mark.integration
def test_simulate_writes_valid_alerts_from_the_citys_cameras(redis_url: str) -> None:
    cameras = parse_cameras(yaml.safe_load((DEMO_CONFIG / "cameras.yaml").read_text()), "cameras.yaml")
    with redis.Redis.from_url(redis_url) as client:
        seen: list[int] = []
        sent = simulate(client, cameras, rate=200, count=30, seed=1, progress=lambda n, _t: seen.append(n))
        assert sent == 30 and seen[-1] == 30
        entries = client.xrange(ALERTS_STREAM)
        assert len(entries) == 30
        ids = set()
        for _entry_id, fields in entries:
            alert, jpeg = decode_alert_entry(fields)
            ids.add(alert.id)
            assert alert.camera_id == "demo-cam-1"
            assert alert.location == cameras[0].location
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape == (270, 480, 3)
        assert len(ids) == 30
