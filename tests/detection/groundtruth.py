"""Ground-truth clips: real people (cut out of Ultralytics' bus.jpg) on scripted paths, and tampering
overlays, each with the events it must produce. Built on `gridwatch.demo.clips`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from contracts.rules import (
    CrowdRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    TamperRuleConfig,
)
from gridwatch.demo.clips import Scene, Walker

SAMPLE_FPS = 2.0
EAST = ((0.55, 0.3), (1.0, 0.3), (1.0, 1.0), (0.55, 1.0))  # the right part of the pavement
DOOR_A, DOOR_B = (0.45, 0.5), (0.45, 1.0)  # a vertical line; walking left to right is A -> B
# One rule a direction on the door line: a crossing fires the rule of its own direction, never the other.
DOOR_BOTH_WAYS = (
    LineCrossingRuleConfig(id="door-in", line="door", a=DOOR_A, b=DOOR_B, direction="a_to_b"),
    LineCrossingRuleConfig(id="door-out", line="door", a=DOOR_A, b=DOOR_B, direction="b_to_a"),
)


def entry_time(walker: Walker, polygon: Any, until: float, step: float = 0.01) -> float:
    """First time the walker's feet are inside the polygon (the scripted truth)."""
    from detection.rules.base import points_in_polygon

    t = 0.0
    while t <= until:
        pos = walker.position(t)
        if pos is not None and points_in_polygon(np.array([pos]), polygon)[0]:
            return t
        t += step
    raise ValueError("the walker never enters")


def first_sample_at_or_after(t: float) -> float:
    return np.ceil(t * SAMPLE_FPS - 1e-9) / SAMPLE_FPS


@dataclass(frozen=True)
class Expected:
    kind: str
    rule: str
    t: float  # seconds into the clip of the first sample that shows the event
    zone: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    scene: Scene
    rules: tuple[Any, ...]
    expected: tuple[Expected, ...] = field(default=())


def _tamper(start: float, effect: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, float], None]:
    def overlay(frame: np.ndarray, t: float) -> None:
        if t >= start:
            frame[:] = effect(frame)

    return overlay


def covered(frame: np.ndarray) -> np.ndarray:
    out = np.empty_like(frame)
    out[:] = (60, 70, 80)  # a hand or cloth over the lens: one flat, dim colour
    return out


def blurred(frame: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), 8)


def moved(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.roll(frame, (60, 220), axis=(0, 1))[::-1])


def _door_crossing(name: str, x0: float, x1: float, walk_s: float, seconds: float) -> Case:
    """A person walks straight along the pavement from `x0` to `x1` in `walk_s` seconds, across the door line:
    the rule of that direction fires on the first sample past the line, the other one stays silent."""
    walker = Walker(path=((0.0, x0, 0.93), (walk_s, x1, 0.93)))
    t_cross = first_sample_at_or_after(abs(DOOR_A[0] - x0) / abs(x1 - x0) * walk_s + 1e-6)
    rule = "door-in" if x1 > x0 else "door-out"  # DOOR_BOTH_WAYS: left to right is A -> B
    return Case(
        name,
        Scene(seconds=seconds, walkers=(walker,), noise=2.0),
        DOOR_BOTH_WAYS,
        (Expected("line_crossing", rule, t_cross, "door"),),
    )


def cases() -> list[Case]:
    out: list[Case] = []
    # 1. a person walks into the zone and lingers there past T
    enter = Walker(path=((0.0, 0.10, 0.93), (3.0, 0.30, 0.93), (7.0, 0.75, 0.95), (30.0, 0.76, 0.95)))
    t_in = first_sample_at_or_after(entry_time(enter, EAST, 30))
    out.append(
        Case(
            "enter_and_linger",
            Scene(seconds=24.0, walkers=(enter,), noise=2.0),
            (
                IntrusionRuleConfig(id="intrusion", zone="east", polygon=EAST, min_samples=1),
                LoiteringRuleConfig(id="loiter", zone="east", polygon=EAST, dwell_s=10.0),
            ),
            (
                Expected("intrusion", "intrusion", t_in, "east"),
                Expected("loitering", "loiter", t_in + 10.0, "east"),
            ),
        )
    )
    # 2. a person crosses the door line left to right (A -> B) and walks on
    out.append(_door_crossing("cross_line", 0.10, 0.90, walk_s=10.0, seconds=12.0))
    # 2b. a person walking at a normal pace (~0.8 body heights a second) crosses back, B -> A
    out.append(_door_crossing("brisk_crossing", 0.95, 0.05, walk_s=3.6, seconds=5.0))
    # 3. a group of three gathers in the zone
    group = (
        Walker(path=((0.0, 0.05, 0.93), (6.0, 0.62, 0.93), (30.0, 0.62, 0.93)), height=0.5, sprite=0),
        Walker(path=((0.0, 0.20, 0.97), (8.0, 0.78, 0.97), (30.0, 0.78, 0.97)), height=0.5, sprite=1),
        Walker(path=((0.0, 0.30, 0.90), (10.0, 0.93, 0.90), (30.0, 0.93, 0.90)), height=0.5, sprite=2),
    )
    t_all = max(entry_time(w, EAST, 30) for w in group)
    out.append(
        Case(
            "group_gathers",
            Scene(seconds=22.0, walkers=group, noise=2.0),
            (CrowdRuleConfig(id="crowd", zone="east", polygon=EAST, min_count=3, min_duration_s=5.0),),
            (Expected("crowd", "crowd", first_sample_at_or_after(t_all) + 5.0, "east"),),
        )
    )
    # 4-6. tampering from t = 10 s; raised on the third bad sample
    passer = Walker(path=((0.0, 0.05, 0.93), (20.0, 0.40, 0.93)))
    for name, effect, cause in (
        ("covered_lens", covered, "covered"),
        ("blurred_lens", blurred, "blur"),
        ("moved_camera", moved, "moved"),
    ):
        out.append(
            Case(
                name,
                Scene(seconds=16.0, walkers=(passer,), noise=2.0, overlays=(_tamper(10.0, effect),)),
                (TamperRuleConfig(id="tamper", learn_s=5.0, min_samples=3),),
                (Expected("tamper", "tamper", 10.0 + 2 / SAMPLE_FPS, cause),),
            )
        )
    return out


def quiet_case() -> Case:
    """Nothing happens: a person strolls on the left pavement; every rule is armed."""
    stroller = Walker(path=((0.0, 0.05, 0.93), (10.0, 0.30, 0.93), (20.0, 0.08, 0.93)))
    rules = (
        IntrusionRuleConfig(id="intrusion", zone="east", polygon=EAST),
        LoiteringRuleConfig(id="loiter", zone="east", polygon=EAST, dwell_s=5.0),
        CrowdRuleConfig(id="crowd", zone="east", polygon=EAST, min_count=2, min_duration_s=2.0),
        LineCrossingRuleConfig(id="door", line="door", a=DOOR_A, b=DOOR_B),
        TamperRuleConfig(id="tamper", learn_s=5.0),
    )
    return Case("quiet", Scene(seconds=20.0, walkers=(stroller,), noise=2.0), rules)
