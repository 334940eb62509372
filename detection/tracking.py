"""Per-camera tracking with Ultralytics' ByteTrack, fed with our `Detections` (pixels in, normalized out)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from detection.config import TrackerConfig
from detection.types import Detections


class _BoxesView:
    """The Results-like view BYTETracker reads: `conf`, `cls`, `xywh`, boolean indexing, `len`."""

    def __init__(
        self, xywh: np.ndarray[Any, Any], conf: np.ndarray[Any, Any], cls: np.ndarray[Any, Any]
    ) -> None:
        self.xywh, self.conf, self.cls = xywh, conf, cls

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: Any) -> _BoxesView:
        return _BoxesView(self.xywh[mask], self.conf[mask], self.cls[mask])


class CameraTracker:
    """ByteTrack for one camera. Track ids are stable across sampled frames and unique within the camera."""

    def __init__(
        self, config: TrackerConfig, width: int = 1000, height: int = 1000, sample_interval_s: float = 1.0
    ) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        args = SimpleNamespace(
            track_high_thresh=config.high_thresh,
            track_low_thresh=config.low_thresh,
            new_track_thresh=config.new_track_thresh,
            track_buffer=config.buffer_samples,
            match_thresh=config.match_thresh,
            fuse_score=True,
        )
        self._tracker = BYTETracker(args)
        # Buffered IoU: at 0.5-2 samples/s a walking person moves more than its own width between samples, so
        # plain boxes never overlap and every sample starts a new track. Each side is padded by the distance
        # the object may move in one sample interval (in box heights); output boxes stay the detector's.
        self._pad = min(2.0, config.motion_buffer * sample_interval_s)
        self._scale = np.array([width, height, width, height], np.float32)

    @property
    def alive(self) -> bool:
        """Whether a confirmed track is being followed (the motion gate keeps checking it)."""
        return bool(self._tracker.tracked_stracks)

    def update(self, detections: Detections, size: tuple[int, int] | None = None) -> Detections:
        """Assign track ids; returns the detections the tracker confirmed, boxes from the detections.

        `size` is the frame's (width, height): the tracker's motion model works in pixels.
        """
        if size is not None:
            self._scale = np.array([size[0], size[1], size[0], size[1]], np.float32)
        px = detections.xyxy * self._scale
        if self._pad > 0 and len(px):
            pad = (self._pad * (px[:, 3] - px[:, 1]))[:, None]
            px = px + np.hstack([-pad, -pad, pad, pad])
        xywh = np.concatenate([(px[:, :2] + px[:, 2:]) / 2, px[:, 2:] - px[:, :2]], axis=1)
        view = _BoxesView(
            xywh, detections.confidence.astype(np.float32), detections.class_id.astype(np.float32)
        )
        rows = self._tracker.update(view)
        if len(rows) == 0:
            return Detections.empty(detections.names)
        rows = np.asarray(rows)
        idx = rows[:, 7].astype(np.int64)
        tracked = detections.select(idx)
        return Detections(
            tracked.xyxy, tracked.confidence, tracked.class_id, tracked.names, rows[:, 4].astype(np.int64)
        )
