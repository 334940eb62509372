"""`gridwatch simulate`: push realistic synthetic alerts onto the bus, for demos, drills and load tests.

Each alert comes from a random camera of the city's `cameras.yaml`, with an object box, a JPEG snapshot drawn
on the spot, and the camera's own location, so the center locates, routes and stores it like a real one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

import cv2
import numpy as np
import redis
from redis.typing import EncodableT, FieldT

from contracts import ALERTS_STREAM, Alert, AlertKind, Camera, DetectedObject, encode_alert_entry
from contracts.bus import ALERTS_MAXLEN

log = logging.getLogger(__name__)

KINDS: tuple[tuple[AlertKind, int], ...] = (
    (AlertKind.intrusion, 2),
    (AlertKind.loitering, 3),
    (AlertKind.crowd, 2),
    (AlertKind.line_crossing, 3),
    (AlertKind.vehicle_restricted, 1),
)


def snapshot(rng: random.Random, box: tuple[float, float, float, float], label: str) -> bytes:
    """A small JPEG: a plain scene with the object's box drawn, so consoles show something real-looking."""
    image = np.full((270, 480, 3), (96, 100, 104), np.uint8)
    image[:110] = (190, 165, 140)
    x1, y1, x2, y2 = (int(v * s) for v, s in zip(box, (480, 270, 480, 270), strict=True))
    cv2.rectangle(image, (x1, y1), (x2, y2), (40, 200, 255), 2)
    cv2.putText(image, f"SIMULATED {label}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return jpeg.tobytes()


def make_alert(camera: Camera, rng: random.Random, worker_id: str) -> Alert:
    kind, severity = rng.choice(KINDS)
    w, h = rng.uniform(0.05, 0.15), rng.uniform(0.2, 0.45)
    x, y = rng.uniform(0, 1 - w), rng.uniform(0.3, 1 - h)
    cls = "car" if kind is AlertKind.vehicle_restricted else "person"
    return Alert(
        kind=kind,
        severity=severity,
        camera_id=camera.id,
        site_id=camera.site_id,
        captured_at=datetime.now(UTC),
        location=camera.location,
        zone=f"sim-{kind.value}",
        rule=f"sim-{kind.value}",
        objects=(
            DetectedObject(cls=cls, confidence=round(rng.uniform(0.5, 0.95), 2), box=(x, y, x + w, y + h)),
        ),
        worker_id=worker_id,
        model="simulated",
        detail=f"simulated {kind.value}",
    )


def simulate(
    client: redis.Redis,
    cameras: Sequence[Camera],
    *,
    rate: float,
    count: int,
    seed: int | None = None,
    snapshots: bool = True,
    progress: Callable[[int, float], None] | None = None,
) -> int:
    """XADD `count` alerts at about `rate` per second (pipelined per 100 ms tick); returns how many went."""
    if not cameras:
        raise ValueError("no cameras to simulate alerts from")
    rng = random.Random(seed)
    sent, started = 0, time.monotonic()
    tick = 0.1
    while sent < count:
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        if due > sent:
            with client.pipeline(transaction=False) as pipe:
                for _ in range(due - sent):
                    alert = make_alert(rng.choice(cameras), rng, "simulator")
                    jpeg = snapshot(rng, alert.objects[0].box, alert.kind.value) if snapshots else None
                    # redis-py types fields as an invariant dict[FieldT, EncodableT]; dict[str, bytes] fits
                    fields = cast(dict[FieldT, EncodableT], encode_alert_entry(alert, jpeg))
                    pipe.xadd(ALERTS_STREAM, fields, maxlen=ALERTS_MAXLEN, approximate=True)
                pipe.execute()
            sent = due
            if progress is not None:
                progress(sent, time.monotonic() - started)
        time.sleep(tick)
    return sent
