"""Routes of the live view: `POST /api/v1/cameras/{camera_id}/live` (offer in, answer out) and hang-up.

The caller passes `camera_url`, a FastAPI dependency that takes the path parameter `camera_id` (plus
whatever auth it needs), checks that the user may see that camera (the same station scope as incidents)
and returns the camera's stream URL, raising `HTTPException` (404 unknown, 403 out of scope) otherwise.
The URL never leaves the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from center_api.live.models import LiveAnswer, LiveOffer, LivePullPublic
from center_api.live.relay import LIVE_ERRORS, LiveRelay
from center_api.live.source import CameraOffline

CameraUrlDependency = Callable[..., str | Awaitable[str]]


def build_live_router(
    relay: LiveRelay,
    camera_url: CameraUrlDependency,
    status_guard: Callable[..., Any] | None = None,
    lifespan: Callable[..., Any] | None = None,
) -> APIRouter:
    """The live-view router. `status_guard`, if given, is the dependency that protects `GET /api/v1/live`."""
    router = APIRouter(prefix="/api/v1", tags=["live"], lifespan=lifespan)
    # A default, not an `Annotated` alias: with postponed annotations FastAPI cannot see a local alias.
    url_dep = Depends(camera_url)

    @router.post("/cameras/{camera_id}/live", response_model=LiveAnswer)
    async def start_live(camera_id: str, offer: LiveOffer, url: str = url_dep) -> LiveAnswer:
        try:
            session, answer = await relay.open_session(camera_id, url, offer.sdp, offer.type)
        except CameraOffline as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
        except LIVE_ERRORS as exc:
            raise HTTPException(getattr(exc, "status", 400), detail=str(exc)) from None
        return LiveAnswer(sdp=answer.sdp, session_id=session.id, codec=session.codec.value)

    @router.delete("/cameras/{camera_id}/live/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def stop_live(camera_id: str, session_id: str, url: str = url_dep) -> Response:
        session = relay.session(session_id)
        if session is None or session.camera_id != camera_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such live session")
        await relay.close_session(session_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    guards = [Depends(status_guard)] if status_guard is not None else []

    @router.get("/live", response_model=list[LivePullPublic], dependencies=guards)
    async def live_pulls() -> list[LivePullPublic]:
        return [
            LivePullPublic(
                camera_id=p.camera_id, viewers=p.viewers, source_codec=p.source_codec, packets=p.packets
            )
            for p in relay.status()
        ]

    return router
