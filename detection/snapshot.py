"""Alert snapshots: the frame with the zone or line, boxes and track ids drawn with cv2, as a bounded JPEG.

Drawn here rather than with Ultralytics' plotting, which downloads a font on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detection.types import Detections

ZONE_COLOR = (0, 200, 255)  # BGR amber
BOX_COLOR = (0, 0, 255)  # red: the objects behind the alert
OTHER_COLOR = (200, 200, 200)  # grey: other objects in view
QUALITIES = (85, 75, 65, 55, 45, 35, 25)


def _px(points: Sequence[tuple[float, float]], w: int, h: int) -> np.ndarray[Any, Any]:
    return np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in points], np.int32)


def draw_alert(
    image: np.ndarray[Any, Any],
    objects: Detections | None,
    *,
    others: Detections | None = None,
    polygon: Sequence[tuple[float, float]] | None = None,
    line: tuple[tuple[float, float], tuple[float, float]] | None = None,
    label: str = "",
    max_width: int = 960,
) -> np.ndarray[Any, Any]:
    """A copy of `image` (scaled to at most `max_width`) with the alert drawn on it."""
    h0, w0 = image.shape[:2]
    scale = min(1.0, max_width / w0)
    canvas = (
        cv2.resize(image, (round(w0 * scale), round(h0 * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else image.copy()
    )
    h, w = canvas.shape[:2]
    thick = max(1, round(w / 400))
    if polygon:
        pts = _px(polygon, w, h)
        overlay = canvas.copy()
        cv2.fillPoly(overlay, [pts], ZONE_COLOR)
        cv2.addWeighted(overlay, 0.2, canvas, 0.8, 0, dst=canvas)
        cv2.polylines(canvas, [pts], True, ZONE_COLOR, thick, cv2.LINE_AA)
    if line:
        a, b = _px(line, w, h)
        cv2.line(
            canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), ZONE_COLOR, thick + 1, cv2.LINE_AA
        )
        cv2.putText(canvas, "A", (int(a[0]) + 4, int(a[1]) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ZONE_COLOR, 1)
        cv2.putText(
            canvas, "B", (int(b[0]) - 14, int(b[1]) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ZONE_COLOR, 1
        )
    for det, color in ((others, OTHER_COLOR), (objects, BOX_COLOR)):
        if det is None:
            continue
        for i in range(len(det)):
            x1, y1, x2, y2 = (det.xyxy[i] * np.array([w, h, w, h])).astype(int).tolist()
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thick)
            tid = int(det.tracker_id[i])
            text = f"{det.class_name(i)} {det.confidence[i]:.2f}" + (f" #{tid}" if tid >= 0 else "")
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            ty = max(th + 2, y1 - 2)
            cv2.rectangle(canvas, (x1, ty - th - 2), (x1 + tw + 2, ty + 2), color, -1)
            cv2.putText(
                canvas, text, (x1 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
            )
    if label:
        cv2.putText(canvas, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def encode_jpeg(image: np.ndarray[Any, Any], max_bytes: int) -> bytes:
    """JPEG of `image` no larger than `max_bytes`: lower the quality first, then halve the size."""
    current = image
    while True:
        for quality in QUALITIES:
            ok, buf = cv2.imencode(".jpg", current, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(buf) <= max_bytes:
                return buf.tobytes()
        if current.shape[1] <= 64:
            raise ValueError(f"cannot encode a JPEG under {max_bytes} bytes")
        current = cv2.resize(
            current, (current.shape[1] // 2, current.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
