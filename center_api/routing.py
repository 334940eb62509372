"""Route an alert to its grid cell and station.

Position, in order: the camera's fixed `cell_id` from the registry (an override), the alert's `location`,
the camera's registered location; with none of them the alert is unassigned and goes to the city command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from center_api.grid.locate import CellLocator, Placement
from contracts import Alert, Camera


@dataclass(frozen=True, slots=True)
class CameraPlace:
    cell_id: str | None  # fixed cell (override), or None to locate
    lat: float | None
    lon: float | None

    @classmethod
    def of(cls, camera: Camera) -> CameraPlace:
        loc = camera.location
        return cls(camera.cell_id, loc.lat if loc else None, loc.lon if loc else None)


class AlertRouter:
    """Holds where each registered camera is; `route_many` places a whole batch with one tree query."""

    def __init__(self, locator: CellLocator) -> None:
        self.locator = locator
        self._cameras: dict[str, CameraPlace] = {}

    def set_camera(self, camera_id: str, place: CameraPlace | None) -> None:
        if place is None:
            self._cameras.pop(camera_id, None)
        else:
            self._cameras[camera_id] = place

    def camera_ids(self) -> set[str]:
        return set(self._cameras)

    def place_camera(self, place: CameraPlace) -> Placement:
        if place.cell_id is not None:
            return self.locator.placement(place.cell_id)
        if place.lat is not None and place.lon is not None:
            return self.locator.locate(place.lat, place.lon)
        return self.locator.placement(None)

    def route_many(self, alerts: Sequence[Alert]) -> list[Placement]:
        out: list[Placement | None] = [None] * len(alerts)
        to_locate: list[int] = []
        points: list[tuple[float, float]] = []
        for i, alert in enumerate(alerts):
            cam = self._cameras.get(alert.camera_id)
            if cam is not None and cam.cell_id is not None:
                out[i] = self.locator.placement(cam.cell_id)
            elif alert.location is not None:
                to_locate.append(i)
                points.append((alert.location.lat, alert.location.lon))
            elif cam is not None and cam.lat is not None and cam.lon is not None:
                to_locate.append(i)
                points.append((cam.lat, cam.lon))
            else:
                out[i] = self.locator.placement(None)
        for i, placement in zip(to_locate, self.locator.locate_many(points), strict=True):
            out[i] = placement
        return [p for p in out if p is not None]

    def route(self, alert: Alert) -> Placement:
        return self.route_many([alert])[0]
