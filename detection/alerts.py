"""Turn a rule's event into the wire `Alert` and its snapshot."""

from __future__ import annotations

from typing import Any

import numpy as np

from contracts.alerts import Alert, AlertKind, DetectedObject
from contracts.camera import Camera
from contracts.frames import Frame
from contracts.rules import LineCrossingRuleConfig
from detection.rules.base import RuleEvent
from detection.snapshot import draw_alert, encode_jpeg
from detection.types import Detections


def detected_objects(det: Detections | None) -> tuple[DetectedObject, ...]:
    if det is None:
        return ()
    out = []
    for i in range(len(det)):
        x1, y1, x2, y2 = (round(float(v), 4) for v in det.xyxy[i])
        tid = int(det.tracker_id[i])
        out.append(
            DetectedObject(
                cls=det.class_name(i),
                confidence=round(min(1.0, max(0.0, float(det.confidence[i]))), 3),
                box=(x1, y1, x2, y2),
                track_id=tid if tid >= 0 else None,
            )
        )
    return tuple(out)


def build_alert(event: RuleEvent, frame: Frame, camera: Camera, *, worker_id: str, model: str) -> Alert:
    return Alert(
        kind=AlertKind(event.kind),
        severity=event.severity,
        camera_id=camera.id,
        site_id=camera.site_id,
        captured_at=frame.captured_at,
        location=camera.location,
        zone=event.zone,
        objects=detected_objects(event.objects),
        rule=event.rule_id,
        worker_id=worker_id,
        model=model,
        detail=event.detail[:2000] or None,
    )


def render_snapshot(
    event: RuleEvent,
    image: np.ndarray[Any, Any],
    rule_config: Any,
    others: Detections | None,
    *,
    max_bytes: int,
    max_width: int,
) -> bytes:
    polygon = getattr(rule_config, "polygon", None)
    line = (rule_config.a, rule_config.b) if isinstance(rule_config, LineCrossingRuleConfig) else None
    label = f"{event.kind} {event.rule_id}" + (f" [{event.zone}]" if event.zone else "")
    canvas = draw_alert(
        image, event.objects, others=others, polygon=polygon, line=line, label=label, max_width=max_width
    )
    return encode_jpeg(canvas, max_bytes)
