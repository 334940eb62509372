"""`Frame`: one sampled picture handed from ingest to detection; `Picture`: one kept in the decoder's YUV;
the sinks that take frames and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy is a runtime dependency of the producers, not of this leaf package
    import numpy as np

    from contracts.alerts import Alert
    from contracts.camera import Camera


class Picture(Protocol):
    """A decoded picture that is converted only when asked (ingest hands frames over in the decoder's YUV).

    `bgr()` converts once and keeps the result; `grey(step)` reads luminance every `step` pixels straight from
    the luma plane, with no colour conversion, or returns None where the picture has no luma plane.
    """

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def bgr(self) -> np.ndarray[Any, Any]: ...

    def grey(self, step: int) -> np.ndarray[Any, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One sample. `picture` is a BGR array (HxWx3 uint8) or a `Picture` that converts on first use.

    Most samples of a still camera are judged by the motion gate from luminance alone; keeping the decoder's
    YUV until someone asks for colour saves the full-size conversion for every sample that is never inferred.
    """

    camera_id: str
    picture: np.ndarray[Any, Any] | Picture
    captured_at: datetime  # UTC wall-clock time the frame was received
    seq: int  # per-camera sample counter
    pts: float | None = None  # stream presentation time, seconds
    keyframe: bool = False

    @property
    def image(self) -> np.ndarray[Any, Any]:
        """The picture as BGR, HxWx3 uint8 (converted on first use when it came from a decoder)."""
        bgr = getattr(self.picture, "bgr", None)
        return bgr() if bgr is not None else self.picture  # type: ignore[return-value]

    def grey(self, step: int) -> np.ndarray[Any, Any] | None:
        """Luminance every `step` pixels without a colour conversion, or None for a BGR array."""
        grey = getattr(self.picture, "grey", None)
        return grey(step) if grey is not None else None

    @property
    def width(self) -> int:
        picture = self.picture
        return int(picture.width) if hasattr(picture, "bgr") else int(picture.shape[1])  # type: ignore[union-attr]

    @property
    def height(self) -> int:
        picture = self.picture
        return int(picture.height) if hasattr(picture, "bgr") else int(picture.shape[0])  # type: ignore[union-attr]


class FrameSink(Protocol):
    """Takes sampled frames from ingest (detection implements it).

    `submit` never blocks: ingest's readers call it on their own threads. A busy sink keeps one frame per
    camera: a newer frame replaces the waiting one, a frame that waited too long is dropped, and either drop
    is counted once, per camera. `dropped(camera_id)` reports that count (ingest puts it in the camera's
    health record and metrics). `cameras_changed` receives the full set of cameras the worker now owns,
    whenever it changes; the sink forgets the others (their drop counts included).
    """

    def submit(self, frame: Frame) -> None: ...

    def dropped(self, camera_id: str) -> int: ...

    def cameras_changed(self, cameras: Mapping[str, Camera]) -> None: ...


class AlertSink(Protocol):
    """Takes alerts for the bus (detection's Redis publisher implements it; ingest uses it for health alerts).

    `publish` does not block on the network: an unreachable bus means the alert is journaled and replayed.
    """

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None: ...
