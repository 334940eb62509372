"""`Detections`: the one type every detection stage passes on (boxes, confidence, class, track id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float32]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Detections:
    """Objects in one frame. `xyxy` is normalized 0..1 (x1, y1, x2, y2); `tracker_id` is -1 when untracked."""

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    names: tuple[str, ...] = ()  # class id -> name
    tracker_id: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be (N, 4), got {self.xyxy.shape}")
        if len(self.confidence) != n or len(self.class_id) != n:
            raise ValueError("confidence and class_id must have one entry per box")
        if len(self.tracker_id) == 0 and n:
            object.__setattr__(self, "tracker_id", np.full(n, -1, np.int64))
        elif len(self.tracker_id) != n:
            raise ValueError("tracker_id must have one entry per box")

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names)

    @classmethod
    def from_lists(
        cls,
        boxes: Sequence[Sequence[float]],
        confidence: Sequence[float],
        class_id: Sequence[int],
        names: tuple[str, ...] = (),
        tracker_id: Sequence[int] | None = None,
    ) -> Detections:
        """Builder for tests and adapters."""
        return cls(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(confidence, np.float32),
            np.asarray(class_id, np.int64),
            names,
            np.asarray(tracker_id if tracker_id is not None else [], np.int64),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def class_name(self, i: int) -> str:
        cid = int(self.class_id[i])
        return self.names[cid] if 0 <= cid < len(self.names) else str(cid)

    @property
    def anchors(self) -> FloatArray:
        """Bottom-center of each box: the object's position on the ground, used by zones and lines."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    @property
    def area(self) -> FloatArray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]).clip(0) * (self.xyxy[:, 3] - self.xyxy[:, 1]).clip(0)

    def select(self, mask: np.ndarray[Any, Any] | Sequence[int]) -> Detections:
        """The objects picked by a boolean mask or by a sequence of indices."""
        return Detections(
            self.xyxy[mask], self.confidence[mask], self.class_id[mask], self.names, self.tracker_id[mask]
        )
