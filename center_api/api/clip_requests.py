"""On-demand clips: an operator saves "the last N seconds" of a camera into a new or an existing incident.

    POST /api/v1/cameras/{camera_id}/clips      operator | station_admin | city_command, the camera's station

The camera must be one the caller's station sees (404 otherwise, as for one that does not exist), so must the
incident named; N is at most the workers' pre-roll (`clip_preroll_s`, 422 beyond). The request reaches the
worker that owns the camera through Redis (`center_api.clips.requests`); the answer (202) names the request
and the incident, whose clip is pending until the worker's clip arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from center_api.api.deps import IncidentViewerDep, ServicesDep, route_errors
from center_api.api.incidents import visible_incident
from center_api.api.params import CameraIdPath
from center_api.clips.schemas import ClipRequestAccepted, ClipRequestIn
from center_api.errors import BODY_ERRORS, NotFound, Unprocessable
from center_api.store.queries import MAX_ID

router = APIRouter(prefix="/api/v1/cameras", tags=["clips"])


@router.post(
    "/{camera_id}/clips",
    response_model=ClipRequestAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Save the last N seconds of a camera as a clip, into a new or an existing incident",
    description="Without incident_id a new incident of kind operator_clip (severity 4) opens at the camera; "
    "with one, that incident gets the clip. Either way the history records who asked (clip_requested). "
    "seconds over the workers' pre-roll (clip_preroll_s) is 422 clip_seconds_over_preroll.",
    responses=route_errors(*BODY_ERRORS, 404, 422),
)
async def request_clip(
    camera_id: CameraIdPath, body: ClipRequestIn, services: ServicesDep, principal: IncidentViewerDep
) -> ClipRequestAccepted:
    record = await services.cameras.get(camera_id)
    if record is None or not principal.may_see_station(record.station_id):
        raise NotFound("no such camera", code="camera_not_found")  # out of scope looks the same as absent
    preroll = services.settings.clip_preroll_s
    if body.seconds > preroll:
        raise Unprocessable(
            f"{body.seconds:g} s is more than the workers keep ({preroll:g} s, clip_preroll_s)",
            code="clip_seconds_over_preroll",
        )
    if body.incident_id is not None:
        if body.incident_id > MAX_ID:
            raise NotFound("no such incident", code="incident_not_found")
        await visible_incident(services, principal, body.incident_id)
    now = datetime.now(UTC)
    requester = services.clip_requests
    request_id = await requester.send(camera_id, body.seconds, principal.subject, now)
    services.metrics.clip_requests.inc()
    if body.incident_id is not None:
        done = await requester.into_incident(request_id, body.incident_id, principal.subject, body.note, now)
    else:
        done = await requester.new_incident(
            request_id, record, body.seconds, principal.subject, body.note, now
        )
    await services.hub.publish(done.events)
    return ClipRequestAccepted(request_id=done.request_id, incident_id=done.incident_id)
