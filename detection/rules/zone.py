"""`ZoneFilter`: the objects a rule watches: class, confidence, box area and (for zone rules) a polygon.

Shaped like supervision's `PolygonZone`: `__init__` checks its arguments, `trigger(detections)` returns a
boolean mask with one entry per object, and the only state is the count of the last trigger. An object is
inside the polygon when its anchor (the bottom-center of its box: where it stands) is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from contracts.rules import (
    CrowdRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    VehicleZoneRuleConfig,
)
from detection.rules.base import points_in_polygon
from detection.types import Detections

FilteredRuleConfig = (
    IntrusionRuleConfig
    | VehicleZoneRuleConfig
    | LoiteringRuleConfig
    | CrowdRuleConfig
    | LineCrossingRuleConfig
)


class ZoneFilter:
    """Objects of `classes` with confidence >= `min_confidence` and a box area (fraction of the image) in
    [`min_area`, `max_area`]; inside `polygon` when one is given; tracked ones only with `tracked_only`."""

    def __init__(
        self,
        classes: Sequence[str],
        min_confidence: float = 0.0,
        min_area: float = 0.0,
        max_area: float = 1.0,
        polygon: Sequence[tuple[float, float]] | None = None,
        *,
        tracked_only: bool = False,
    ) -> None:
        if isinstance(classes, str):
            raise TypeError("classes must be a sequence of class names, not one string")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within 0..1, got {min_confidence}")
        if not 0.0 <= min_area <= max_area <= 1.0:
            raise ValueError(f"need 0 <= min_area <= max_area <= 1, got {min_area} and {max_area}")
        self.polygon: np.ndarray[Any, Any] | None = None
        if polygon is not None:
            points = np.asarray(polygon, np.float64)
            if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
                raise ValueError("a zone polygon needs at least 3 (x, y) points")
            if not all(math.isfinite(v) for v in points.ravel()):
                raise ValueError("zone polygon points must be finite")
            self.polygon = points
        self.classes = frozenset(classes)
        self.min_confidence, self.min_area, self.max_area = min_confidence, min_area, max_area
        self.tracked_only = tracked_only
        self.current_count = 0  # objects the last `trigger` picked

    @classmethod
    def of(cls, config: FilteredRuleConfig, *, tracked_only: bool = False) -> ZoneFilter:
        """The filter a rule's config describes (a line-crossing rule has no polygon)."""
        polygon = None if isinstance(config, LineCrossingRuleConfig) else config.polygon
        return cls(
            config.classes,
            config.min_confidence,
            config.min_area,
            config.max_area,
            polygon,
            tracked_only=tracked_only,
        )

    def trigger(self, det: Detections) -> np.ndarray[Any, Any]:
        """A boolean mask over `det`: True for each object the rule watches."""
        if not len(det):
            self.current_count = 0
            return np.zeros(0, bool)
        area = det.area
        mask = (
            np.array([det.class_name(i) in self.classes for i in range(len(det))], bool)
            & (det.confidence >= self.min_confidence)
            & (area >= self.min_area)
            & (area <= self.max_area)
        )
        if self.tracked_only:
            mask &= det.tracker_id >= 0
        if self.polygon is not None:
            mask &= points_in_polygon(det.anchors, self.polygon)
        self.current_count = int(mask.sum())
        return mask
