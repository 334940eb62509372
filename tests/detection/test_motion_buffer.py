from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from contracts.frames import Frame
from detection.buffer import LatestFrameBuffer
from detection.config import MotionConfig
from detection.motion import MotionGate
from gridwatch.demo.clips import background, paste, person_sprite

BASE = background(640, 360, seed=3)


def noisy(img: np.ndarray, seed: int, std: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.int16) + rng.normal(0, std, img.shape).astype(np.int16), 0, 255).astype(
        np.uint8
    )


def with_person(x: float) -> np.ndarray:
    img = BASE.copy()
    paste(img, person_sprite(1), x, 0.9, 0.5)
    return img


def decisions(images, alive=False, **kw) -> list[str]:
    gate = MotionGate(MotionConfig(**kw))
    return [gate.decide(img, float(t), alive).reason for t, img in enumerate(images)]


def test_still_noisy_scene_costs_no_inference_after_the_first() -> None:
    reasons = decisions([noisy(BASE, i) for i in range(50)], refresh_s=1000)
    assert reasons[0] == "first" and set(reasons[1:]) == {"still"}


def test_walking_person_is_motion() -> None:
    reasons = decisions([noisy(with_person(0.2 + 0.05 * i), i) for i in range(6)], hangover_samples=0)
    assert reasons == ["first"] + ["motion"] * 5


def test_standing_person_is_checked_at_the_slow_interval() -> None:
    images = [noisy(with_person(0.5), i) for i in range(20)]
    reasons = decisions(images, alive=True, track_check_s=5, refresh_s=1000)
    assert [t for t, r in enumerate(reasons) if r != "still"] == [0, 5, 10, 15]


def test_refresh_runs_on_any_camera() -> None:
    reasons = decisions([BASE] * 25, refresh_s=10)
    assert [t for t, r in enumerate(reasons) if r != "still"] == [0, 10, 20]


def test_hangover_and_disabled() -> None:
    images = [BASE, with_person(0.3), with_person(0.3), with_person(0.3)]
    assert decisions(images, hangover_samples=1) == ["first", "motion", "hangover", "still"]
    assert decisions(images, enabled=False) == ["off"] * 4


def test_motion_mask_ignores_an_area() -> None:
    gate = MotionGate(
        MotionConfig(hangover_samples=0), ignore=[((0.0, 0.0), (0.6, 0.0), (0.6, 1.0), (0.0, 1.0))]
    )
    reasons = [gate.decide(with_person(0.1 + 0.05 * i), float(i), False).reason for i in range(5)]
    assert reasons == ["first"] + ["still"] * 4


def frame(cam: str, seq: int = 0) -> Frame:
    return Frame(cam, np.zeros((4, 4, 3), np.uint8), datetime.now(UTC), seq)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_latest_frame_per_camera_wins() -> None:
    buf = LatestFrameBuffer(max_age_s=3)
    for seq in range(5):
        buf.put(frame("a", seq))
    buf.put(frame("b"))
    batch = buf.take(10, timeout=0)
    assert [(f.camera_id, f.seq) for f in batch] == [("a", 4), ("b", 0)]
    assert buf.counts.replaced == 4


def test_a_busy_detector_gets_the_newest_sample_and_drops_are_counted_per_camera() -> None:
    buf = LatestFrameBuffer(max_age_s=3)
    buf.put(frame("a", 0))
    assert [(f.camera_id, f.seq) for f in buf.take(10, timeout=0)] == [("a", 0)]  # now the detector is busy
    for seq in range(1, 6):
        buf.put(frame("a", seq))
    buf.put(frame("b", 1))
    assert len(buf) == 2  # one slot per camera, never more
    assert buf.dropped("a") == 4 and buf.dropped("b") == 0
    assert [(f.camera_id, f.seq) for f in buf.take(10, timeout=0)] == [("a", 5), ("b", 1)]
    buf.discard({"a"})  # a camera no longer watched is forgotten, its count too
    assert buf.dropped("a") == 0


@pytest.mark.parametrize(("batch", "expected"), [(1, 1), (3, 3), (8, 5)])
def test_batches_up_to_b(batch: int, expected: int) -> None:
    buf = LatestFrameBuffer(max_age_s=3)
    for cam in "abcde":
        buf.put(frame(cam))
    assert len(buf.take(batch, timeout=0)) == expected


def test_stale_frames_are_dropped_and_counted() -> None:
    clock = FakeClock()
    buf = LatestFrameBuffer(max_age_s=3, clock=clock)
    buf.put(frame("a"))
    clock.now = 2.0
    buf.put(frame("b"))
    clock.now = 4.0
    assert [f.camera_id for f in buf.take(10, timeout=0)] == ["b"]
    assert buf.counts.stale == 1
    assert buf.dropped("a") == 1 and buf.dropped("b") == 0


def test_a_sample_replaced_and_then_gone_stale_is_two_drops_of_two_samples() -> None:
    clock = FakeClock()
    buf = LatestFrameBuffer(max_age_s=3, clock=clock)
    buf.put(frame("a", 0))
    buf.put(frame("a", 1))  # sample 0 replaced: one drop
    clock.now = 4.0
    assert buf.take(10, timeout=0) == []  # sample 1 stale: another drop, not the first one again
    assert (buf.counts.replaced, buf.counts.stale, buf.dropped("a")) == (1, 1, 2)


def test_take_waits_for_a_frame_and_close_wakes_it() -> None:
    buf = LatestFrameBuffer(max_age_s=3)
    got: list = []
    thread = threading.Thread(target=lambda: got.append(buf.take(4, timeout=30)))
    thread.start()
    buf.put(frame("a"))
    thread.join(timeout=30)
    assert [f.camera_id for f in got[0]] == ["a"]
    thread = threading.Thread(target=lambda: got.append(buf.take(4, timeout=30)))
    thread.start()
    buf.close()
    thread.join(timeout=30)
    assert not thread.is_alive() and got[1] == []
