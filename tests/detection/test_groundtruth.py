"""Ground truth: generated clips with scripted events; every rule fires as scripted (within one sample),
once, and never on the quiet clip. Real model, real decoding, the full pipeline (gating, tracking)."""

from __future__ import annotations

import pytest

from detection import DetectionConfig, DetectionPipeline
from tests.detection.builders import T0, feed_clip, make_camera
from tests.detection.groundtruth import SAMPLE_FPS, Case, cases, quiet_case

pytestmark = pytest.mark.integration


class ListSink:
    def __init__(self) -> None:
        self.alerts: list = []

    def publish(self, alert, snapshot=None) -> None:
        self.alerts.append((alert, snapshot))


def run_case(case: Case, clip_cache, model) -> list:
    sink = ListSink()
    pipeline = DetectionPipeline(DetectionConfig(model=model, worker_id="gt"), sink)
    camera = make_camera(f"gt-{case.name}".replace("_", "-"), case.rules)
    pipeline.cameras_changed({camera.id: camera})
    pipeline.start()
    try:
        feed_clip(pipeline, clip_cache(case.name, case.scene), camera.id, sample_fps=SAMPLE_FPS)
    finally:
        pipeline.stop()
    return [alert for alert, _ in sink.alerts]


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_rules_fire_as_scripted(case: Case, clip_cache, fp32_model) -> None:
    alerts = run_case(case, clip_cache, fp32_model)
    got = sorted(
        ((a.kind.value, a.rule, a.zone, (a.captured_at - T0).total_seconds()) for a in alerts),
        key=lambda x: x[3],
    )
    want = sorted(((e.kind, e.rule, e.zone, e.t) for e in case.expected), key=lambda x: x[3])
    assert [g[:3] for g in got] == [w[:3] for w in want], got
    for g, w in zip(got, want, strict=True):
        assert abs(g[3] - w[3]) <= 1 / SAMPLE_FPS + 1e-6, f"{g[1]} fired at {g[3]} s, scripted {w[3]} s"


def test_quiet_clip_raises_nothing(clip_cache, fp32_model) -> None:
    alerts = run_case(quiet_case(), clip_cache, fp32_model)
    assert alerts == [], [(a.kind, a.rule, a.detail) for a in alerts]
