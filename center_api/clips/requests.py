"""An operator's "save the last N seconds" of a camera: a `ClipRequest` to the worker that owns the camera,
and the incident the clip will join.

The request goes on the Redis stream `gw:clip-requests` (capped at `CLIP_REQUESTS_MAXLEN`, approximately)
with a fresh request id, which the worker's clip carries as its alert id. Then, in one transaction: either
the named incident gets the request (its clip pending from now), or a new incident of kind `operator_clip`
(severity 4) opens at the camera, located and routed as an alert of the camera would be, with the request id
as its alert id; either way with an audit entry `clip_requested` by the requesting user. The stream entry
goes first: if Redis is away nothing is written (503); if the database then fails, the worker's clip links
to no incident, and retention removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.cameras.registry import CameraRecord
from center_api.routing import AlertRouter
from center_api.store import clips as index
from center_api.store.incidents import Audit, IncidentWriter, RoutedAlert, StoredEvent
from contracts import (
    CLIP_REQUESTS_STREAM,
    Alert,
    AlertKind,
    ClipNote,
    ClipRequest,
    ClipState,
    encode_clip_request,
    new_alert_id,
)
from contracts.clips import CLIP_REQUESTS_MAXLEN

REQUESTED = "clip_requested"
SEVERITY = 4  # lowest: an operator's own evidence, nothing fired


@dataclass(frozen=True, slots=True)
class Requested:
    request_id: str
    incident_id: int
    events: list[StoredEvent]


class ClipRequester:
    def __init__(
        self,
        redis: Redis,
        sessions: async_sessionmaker[AsyncSession],
        writer: IncidentWriter,
        router: AlertRouter,
    ) -> None:
        self._redis = redis
        self._sessions = sessions
        self._writer = writer
        self._router = router

    async def send(self, camera_id: str, seconds: float, subject: str, now: datetime) -> str:
        """Put a request on the stream; its id."""
        request = ClipRequest(
            request_id=new_alert_id(),
            camera_id=camera_id,
            seconds=seconds,
            requested_at=now,
            requested_by=subject[:128],
        )
        await self._redis.xadd(
            CLIP_REQUESTS_STREAM,
            encode_clip_request(request),  # type: ignore[arg-type]  # dict[str, bytes] is a valid entry
            maxlen=CLIP_REQUESTS_MAXLEN,
            approximate=True,
        )
        return request.request_id

    async def into_incident(
        self, request_id: str, incident_id: int, subject: str, note: str | None, now: datetime
    ) -> Requested:
        """Link the request to an existing incident (the caller checked that it may see it)."""
        async with self._sessions() as session, session.begin():
            await index.note_request(session, request_id, incident_id, now)
            events = await self._writer.audit(
                session, REQUESTED, [incident_id], now, actor=subject, note=note
            )
        return Requested(request_id, incident_id, events)

    async def new_incident(
        self,
        request_id: str,
        record: CameraRecord,
        seconds: float,
        subject: str,
        note: str | None,
        now: datetime,
    ) -> Requested:
        """Open an `operator_clip` incident at the camera for the request."""
        camera = record.camera
        alert = Alert(
            id=request_id,
            kind=AlertKind.operator_clip,
            severity=SEVERITY,
            camera_id=camera.id,
            site_id=camera.site_id,
            captured_at=now,
            emitted_at=now,
            location=camera.location,
            rule=f"on-demand {request_id}",  # its own fold key: each request is an incident of its own
            detail=(f"{subject} saved the last {seconds:g} s" + (f": {note}" if note else ""))[:2000],
            clip=ClipNote(state=ClipState.pending, preroll_s=seconds),
        )
        placement = self._router.route(alert)
        events = await self._writer.ingest(
            [RoutedAlert(alert, placement)], now, audit=Audit(REQUESTED, subject, note)
        )
        return Requested(request_id, events[0].incident.id, events)
