"""What every rule shares: the observation it is fed, the event it returns, time windows, geometry.

Which objects a rule watches is `detection.rules.zone.ZoneFilter`.

Rules are pure: state per instance, the frame time passed in (`Observation.t`, seconds since the epoch),
no I/O and no clock reads, so a test replays a scripted track and asserts exactly when a rule fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from contracts.rules import TimeWindow
from detection.types import Detections


@dataclass(frozen=True)
class FrameStats:
    """Cheap image statistics of one sampled frame (from the motion gate's small grey frame)."""

    mean: float  # grey level 0..255
    std: float  # grey-level standard deviation
    sharpness: float  # variance of the Laplacian
    edges: np.ndarray[Any, Any] = field(repr=False)  # small normalized edge-magnitude map, float32


@dataclass(frozen=True)
class Observation:
    """What a rule sees of one sample. `fresh` is False when the detector was gated off for this sample and
    `detections` are the last ones seen (nothing moved, so they still stand)."""

    t: float
    detections: Detections
    stats: FrameStats | None = None
    fresh: bool = True


@dataclass(frozen=True)
class RuleEvent:
    kind: str  # contracts.AlertKind value
    rule_id: str
    severity: int
    t: float
    zone: str | None = None
    objects: Detections | None = None
    detail: str = ""

    @classmethod
    def of(
        cls, config: Any, t: float, *, zone: str | None, objects: Detections | None = None, detail: str = ""
    ) -> RuleEvent:
        """An event of the rule configured by `config` (its kind, id and severity)."""
        return cls(config.kind, config.id, config.severity, t, zone, objects, detail)


def fire(config: Any, t: float, objects: Detections, detail: str, *, zone: str | None) -> list[RuleEvent]:
    """What a rule's `update` returns when it fires: one event at frame time `t`, with its objects."""
    return [RuleEvent.of(config, t, zone=zone, objects=objects, detail=detail)]


class Rule(Protocol):
    # Read-only: each rule sets them once from its config (whose `kind` is a narrower Literal).
    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def update(self, obs: Observation) -> list[RuleEvent]: ...


def in_windows(t: float, windows: Sequence[TimeWindow], utc_offset_minutes: int) -> bool:
    """Whether frame time `t` falls in any window (local time = UTC + offset); no windows: always."""
    if not windows:
        return True
    local = datetime.fromtimestamp(t, UTC) + timedelta(minutes=utc_offset_minutes)
    minute = local.hour * 60 + local.minute
    day = local.weekday()
    for w in windows:
        start = int(w.start[:2]) * 60 + int(w.start[3:])
        end = int(w.end[:2]) * 60 + int(w.end[3:])
        if start <= end:
            if day in w.days and start <= minute < end:
                return True
        elif (day in w.days and minute >= start) or ((day - 1) % 7 in w.days and minute < end):
            return True  # the window spans midnight; after midnight it belongs to the day it started on
    return False


def points_in_polygon(
    points: np.ndarray[Any, Any], polygon: Sequence[tuple[float, float]] | np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Ray casting, vectorized over points (N, 2); points on the boundary may fall either way."""
    poly = np.asarray(polygon, np.float64)
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    inside = np.zeros(len(points), bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < x_at)
        xj, yj = xi, yi
    return inside


def track_keys(det: Detections) -> list[int | None]:
    """Per-object key for per-track state: the track id, or None for untracked objects (one shared key)."""
    return [int(t) if t >= 0 else None for t in det.tracker_id]
