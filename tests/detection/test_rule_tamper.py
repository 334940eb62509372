from __future__ import annotations

import cv2
import numpy as np
import pytest

from contracts.rules import TamperRuleConfig
from detection.motion import frame_stats, small_grey
from detection.rules import Observation, TamperRule
from detection.types import Detections
from gridwatch.demo.clips import background, paste, person_sprite

BASE = background(640, 360, seed=7)


def view(kind: str, t: int = 0) -> np.ndarray:
    img = BASE.copy()
    paste(img, person_sprite(0), 0.2 + 0.01 * (t % 30), 0.92, 0.5)  # a person walks: a live scene
    rng = np.random.default_rng(t)
    img = np.clip(img.astype(np.int16) + rng.normal(0, 2, img.shape).astype(np.int16), 0, 255).astype(
        np.uint8
    )
    if kind == "black":
        img[:] = rng.integers(0, 6, img.shape, dtype=np.uint8)
    elif kind == "covered":
        img[:] = (70, 80, 90)
        img = cv2.GaussianBlur(img, (0, 0), 5)
    elif kind == "blur":
        img = cv2.GaussianBlur(img, (0, 0), 6)
    elif kind == "moved":
        img = np.ascontiguousarray(np.roll(BASE, (90, 200), axis=(0, 1))[:, ::-1])
    return img


def run(script: list[str], **kw) -> list[tuple[int, str]]:
    cfg = {"learn_s": 5, "min_samples": 3, "clear_samples": 3, **kw}
    rule = TamperRule(TamperRuleConfig(id="tamper", **cfg))
    fired = []
    for t, kind in enumerate(script):
        stats = frame_stats(small_grey(view(kind, t), 160))
        for e in rule.update(Observation(t=float(t), detections=Detections.empty(), stats=stats)):
            fired.append((t, e.zone))
    return fired


NORMAL = ["ok"] * 10


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (NORMAL + ["ok"] * 30, []),
        (NORMAL + ["black"] * 10, [(12, "blackout")]),
        (NORMAL + ["covered"] * 10, [(12, "covered")]),
        (NORMAL + ["blur"] * 10, [(12, "blur")]),
        (NORMAL + ["moved"] * 10, [(12, "moved")]),
        # once per episode, cleared when the view returns, raised again on a new episode
        (NORMAL + ["covered"] * 20 + ["ok"] * 5 + ["covered"] * 5, [(12, "covered"), (37, "covered")]),
        # two bad samples are not an episode
        (NORMAL + ["black", "black", "ok"] * 5, []),
    ],
)
def test_tamper(script, expected) -> None:
    assert run(script) == expected


def test_blackout_before_learning_still_fires() -> None:
    assert run(["black"] * 5) == [(2, "blackout")]


def test_episode_stays_open_until_view_returns() -> None:
    assert run(NORMAL + ["blur"] * 5 + ["ok"] * 2 + ["blur"] * 5) == [(12, "blur")]
