"""`Frame`: one sampled picture handed from ingest to detection; the sinks that take frames and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy is a runtime dependency of the producers, not of this leaf package
    import numpy as np

    from contracts.alerts import Alert
    from contracts.camera import Camera


@dataclass(frozen=True, slots=True)
class Frame:
    camera_id: str
    image: np.ndarray[Any, Any]  # BGR, HxWx3 uint8
    captured_at: datetime  # UTC wall-clock time the frame was received
    seq: int  # per-camera sample counter
    pts: float | None = None  # stream presentation time, seconds
    keyframe: bool = False

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


class FrameSink(Protocol):
    """Takes sampled frames from ingest (detection implements it).

    `submit` never blocks: a busy sink replaces an older frame of the same camera or drops, and counts it.
    `cameras_changed` receives the full set of cameras the worker now owns, whenever it changes.
    """

    def submit(self, frame: Frame) -> None: ...

    def cameras_changed(self, cameras: Mapping[str, Camera]) -> None: ...


class AlertSink(Protocol):
    """Takes alerts for the bus (detection's Redis publisher implements it; ingest uses it for health alerts).

    `publish` does not block on the network: an unreachable bus means the alert is journaled and replayed.
    """

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None: ...
