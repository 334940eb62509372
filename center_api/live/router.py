"""Routes of the live view: `POST /api/v1/cameras/{camera_id}/live` (offer in, answer out) and hang-up.

The caller passes `camera_url`, a FastAPI dependency that takes the path parameter `camera_id` (plus
whatever auth it needs), checks that the user may see that camera (the same station scope as incidents)
and returns the camera's stream URL, raising a `center_api.errors` error (404 unknown or out of scope, 409
disabled) otherwise. The URL never leaves the server. The relay's errors (`LiveBusy`, `NoCommonCodec`,
`NegotiationFailed`, `CameraOffline`) pass through as they are: the app that includes this router must
install `center_api.errors.install_error_handlers` to answer them.

`visible_cameras`, if given, is the dependency of `GET /api/v1/live` (with whatever auth it needs): it
returns a `CameraFilter`, and the list names only the pulls of cameras it passes (a station sees its own).
Without it every pull is listed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Response, status

from center_api.api.params import CameraIdPath
from center_api.errors import BODY_ERRORS, NotFound, error_responses
from center_api.live.models import LiveAnswer, LiveOffer, LivePullPublic
from center_api.live.relay import LiveRelay

CameraUrlDependency = Callable[..., str | Awaitable[str]]
CameraFilter = Callable[[str], Awaitable[bool]]  # camera id -> may the caller know it is watched live

# What `camera_url` of the center raises (token, refused address, scope, disabled, not started), then the
# relay's own; and what `visible_cameras` of the center raises.
_URL_ERRORS = (401, 403, 404, 409, 429, 503)
_FILTER_ERRORS = (401, 403, 429, 503)


async def _every_camera() -> CameraFilter:
    async def visible(_camera_id: str) -> bool:
        return True

    return visible


def build_live_router(
    relay: LiveRelay,
    camera_url: CameraUrlDependency,
    visible_cameras: Callable[..., Awaitable[CameraFilter]] | None = None,
    lifespan: Callable[..., Any] | None = None,
) -> APIRouter:
    """The live-view router. `visible_cameras`, if given, guards and scopes `GET /api/v1/live`."""
    router = APIRouter(prefix="/api/v1", tags=["live"], lifespan=lifespan)
    # A default, not an `Annotated` alias: with postponed annotations FastAPI cannot see a local alias.
    url_dep = Depends(camera_url)

    @router.post(
        "/cameras/{camera_id}/live",
        response_model=LiveAnswer,
        responses=error_responses(*BODY_ERRORS, 415, *_URL_ERRORS),
    )
    async def start_live(camera_id: CameraIdPath, offer: LiveOffer, url: str = url_dep) -> LiveAnswer:
        session, answer = await relay.open_session(camera_id, url, offer.sdp, offer.type)
        return LiveAnswer(sdp=answer.sdp, session_id=session.id, codec=session.codec.value)

    @router.delete(
        "/cameras/{camera_id}/live/{session_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(*_URL_ERRORS),
    )
    async def stop_live(camera_id: CameraIdPath, session_id: str, url: str = url_dep) -> Response:
        session = relay.session(session_id)
        if session is None or session.camera_id != camera_id:
            raise NotFound("no such live session", code="live_session_not_found")
        await relay.close_session(session_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    filter_dep = Depends(visible_cameras or _every_camera)

    @router.get(
        "/live",
        response_model=list[LivePullPublic],
        responses=error_responses(*_FILTER_ERRORS) if visible_cameras is not None else None,
    )
    async def live_pulls(visible: CameraFilter = filter_dep) -> list[LivePullPublic]:
        return [
            LivePullPublic(
                camera_id=p.camera_id, viewers=p.viewers, source_codec=p.source_codec, packets=p.packets
            )
            for p in relay.status()
            if await visible(p.camera_id)
        ]

    return router
