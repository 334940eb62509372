"""Motion gating: a cheap estimate on a small grey frame decides whether a sample is worth an inference.

Per camera: the sample is shrunk by slicing its luma plane (no colour conversion at all), blurred and
differenced against the previous sample; masked-out areas (a tree, a road sign with a screen) are ignored.
The gate also yields the frame's image statistics, which the tamper rule reads, so one small grey frame
serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from contracts import Frame
from detection.config import MotionConfig
from detection.rules.base import FrameStats

EDGE_MAP = (32, 18)  # width, height of the edge map the tamper rule compares


def small_grey(source: Frame | np.ndarray[Any, Any], width: int) -> np.ndarray[Any, Any]:
    """Grey at about `width` pixels wide, by slicing: from a frame's luma plane when it has one (no colour
    conversion at all), else from a BGR array."""
    if isinstance(source, Frame):
        step = max(1, source.width // width)
        grey = source.grey(step)
        if grey is not None:
            return grey
        source = source.image
    step = max(1, source.shape[1] // width)
    small = np.ascontiguousarray(source[::step, ::step])
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def frame_stats(grey: np.ndarray[Any, Any]) -> FrameStats:
    mean, std = cv2.meanStdDev(grey)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    edges = cv2.resize(cv2.magnitude(gx, gy), EDGE_MAP, interpolation=cv2.INTER_AREA)
    return FrameStats(float(mean[0, 0]), float(std[0, 0]), sharpness, edges)


def polygon_mask(
    shape: tuple[int, int], polygons: Sequence[Sequence[tuple[float, float]]]
) -> np.ndarray[Any, Any]:
    """A mask (uint8, 255 = watched) that ignores the given normalized polygons."""
    h, w = shape
    mask = np.full((h, w), 255, np.uint8)
    for poly in polygons:
        pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in poly], np.int32)
        cv2.fillPoly(mask, [pts], 0)
    return mask


@dataclass
class GateDecision:
    infer: bool
    reason: str  # motion | hangover | track | refresh | first | off | still
    changed: float  # fraction of watched pixels that changed
    stats: FrameStats


class MotionGate:
    """One camera's gate. `decide(image, t, tracks_alive)` is called once per sample, in frame order."""

    def __init__(self, config: MotionConfig, ignore: Sequence[Sequence[tuple[float, float]]] = ()) -> None:
        self.config = config
        self._ignore = tuple(ignore)
        self._mask: np.ndarray[Any, Any] | None = None
        self._prev: np.ndarray[Any, Any] | None = None
        self._last_infer: float | None = None
        self._hangover = 0

    def decide(self, image: Frame | np.ndarray[Any, Any], t: float, tracks_alive: bool) -> GateDecision:
        cfg = self.config
        grey = small_grey(image, cfg.width)
        stats = frame_stats(grey)
        blurred = cv2.GaussianBlur(grey, (5, 5), 0)
        changed = 0.0
        prev = self._prev
        if prev is not None and prev.shape == blurred.shape:
            diff = cv2.absdiff(blurred, prev)
            hot = diff > cfg.pixel_threshold
            if self._ignore:
                if self._mask is None or self._mask.shape != hot.shape:
                    self._mask = polygon_mask(hot.shape, self._ignore)
                watched = self._mask > 0
                changed = float(np.count_nonzero(hot & watched)) / max(1, int(np.count_nonzero(watched)))
            else:
                changed = float(np.count_nonzero(hot)) / hot.size
        self._prev = blurred
        reason = self._reason(prev is None, changed, t, tracks_alive)
        infer = reason != "still"
        if infer:
            self._last_infer = t
        return GateDecision(infer, reason, changed, stats)

    def _reason(self, first: bool, changed: float, t: float, tracks_alive: bool) -> str:
        cfg = self.config
        if not cfg.enabled:
            return "off"
        if first or self._last_infer is None:
            return "first"
        if changed >= cfg.min_changed:
            self._hangover = cfg.hangover_samples
            return "motion"
        if self._hangover > 0:
            self._hangover -= 1
            return "hangover"
        since = t - self._last_infer
        if tracks_alive and since >= cfg.track_check_s:
            return "track"
        if since >= cfg.refresh_s:
            return "refresh"
        return "still"
