"""The live view wired into the center: who may watch which camera, and the router the app includes.

Access follows the incidents' station scope: an operator or station admin watches the cameras of their
station, the city command center every camera. A camera out of scope looks the same as an unknown one (404).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException, status

from center_api.auth import IncidentReader
from center_api.live.relay import LiveRelay
from center_api.live.router import build_live_router
from center_api.live.settings import LiveSettings
from center_api.state import StateDep


async def live_camera_url(camera_id: str, state: StateDep, principal: IncidentReader) -> str:
    """FastAPI dependency: the stream URL of a camera the principal may watch (404 otherwise)."""
    registry = state.cameras
    if registry is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the camera registry is not ready")
    record = await registry.get(camera_id)
    if record is None or not principal.may_see_station(record.station_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such camera: {camera_id}")
    if not record.camera.enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, f"camera {camera_id} is disabled")
    return str(record.camera.url.get_secret_value())


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

    router = build_live_router(relay, live_camera_url, status_guard=_status_guard, lifespan=lifespan)
    router.relay = relay  # type: ignore[attr-defined]
    return router


async def _status_guard(principal: IncidentReader) -> None:
    """Any incident reader may see which cameras are being watched live (counts only)."""
