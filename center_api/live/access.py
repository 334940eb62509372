"""The live view wired into the center: who may watch which camera, and the router the app includes.

Access follows the incidents' station scope: an operator or station admin watches the cameras of their
station, the city command center every camera. A camera out of scope looks the same as an unknown one (404).
The list of cameras watched live (`GET /api/v1/live`) is scoped the same way: a station sees its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from center_api.api.deps import IncidentViewerDep, ServicesDep
from center_api.api.params import CameraIdPath
from center_api.errors import Conflict, NotFound
from center_api.live.relay import LiveRelay
from center_api.live.router import CameraFilter, build_live_router
from center_api.live.settings import LiveSettings


async def live_camera_url(
    camera_id: CameraIdPath, services: ServicesDep, principal: IncidentViewerDep
) -> str:
    """FastAPI dependency: the stream URL of a camera the principal may watch (404 if not, 409 disabled)."""
    record = await services.cameras.get(camera_id)
    if record is None or not principal.may_see_station(record.station_id):
        raise NotFound(f"no such camera: {camera_id}", code="camera_not_found")
    if not record.camera.enabled:
        raise Conflict(f"camera {camera_id} is disabled", code="camera_disabled")
    return record.camera.stream_url()  # credentials joined in: a secret, for the relay's opener only


def center_live_router(settings: LiveSettings | None = None) -> APIRouter:
    """The live-view router of the center app; its lifespan closes every session and pull on shutdown.

    The relay is reachable as `router.relay` (tests and metrics).
    """
    relay = LiveRelay(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await relay.close()

    router = build_live_router(relay, live_camera_url, visible_cameras=_visible_cameras, lifespan=lifespan)
    router.relay = relay  # type: ignore[attr-defined]
    return router


async def _visible_cameras(services: ServicesDep, principal: IncidentViewerDep) -> CameraFilter:
    """Incident viewers see which of their cameras are watched live; the city command sees every one."""

    async def visible(camera_id: str) -> bool:
        record = await services.cameras.get(camera_id)
        # A camera gone from the registry while still pulled has no station: only the city command sees it.
        return principal.may_see_station(record.station_id if record is not None else None)

    return visible
