"""Incidents: list by grid unit / station / camera / kind / severity / status / time window (cursor pages),
one incident with its history, its snapshot, and workflow transitions.

Errors come from the domain as they are (`center_api.errors`): a bad cursor 400, an absent or out-of-scope
incident 404, a transition the workflow refuses 409. A transition body that is not JSON is FastAPI's 400,
one over the body limit 413."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from center_api.api.deps import IncidentViewerDep, ServicesDep, route_errors
from center_api.auth import Principal
from center_api.errors import BODY_ERRORS, NotFound
from center_api.schemas import IncidentDetail, IncidentPage, IncidentPublic, IncidentQuery, TransitionIn
from center_api.services import CenterServices
from center_api.store.models import Incident
from center_api.store.queries import MAX_ID, incident_public
from center_api.workflow import OPEN_STATUSES

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

# Ids are 64-bit: a larger one is refused as invalid (422) instead of reaching the database.
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id")]
# A cursor is opaque: any string is well-formed, and one this server did not write is 400 `bad_cursor`.
CursorParam = Annotated[
    str | None,
    Query(description="The `next_cursor` of the previous page; one this server did not write is 400"),
]


async def visible_incident(services: CenterServices, principal: Principal, incident_id: int) -> Incident:
    """The incident if the principal may see it; `NotFound` (404 incident_not_found) otherwise."""
    row = await services.reader.get(incident_id)
    # Out of scope looks the same as absent: an operator learns nothing about other stations' incidents.
    if row is None or not principal.may_see_station(row.station_id):
        raise NotFound("no such incident", code="incident_not_found")
    return row


@router.get(
    "",
    response_model=IncidentPage,
    summary="List incidents, newest first",
    responses=route_errors(400),
)
async def list_incidents(
    services: ServicesDep,
    principal: IncidentViewerDep,
    filters: Annotated[IncidentQuery, Query()],
    cursor: CursorParam = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentPage:
    rows, next_cursor = await services.reader.list(
        filters, station_scope=principal.station_scope, cursor=cursor, limit=limit
    )
    page = IncidentPage(items=[incident_public(r) for r in rows], next_cursor=next_cursor)
    # Serialise once (the model was built from trusted rows; skip FastAPI's second validation pass).
    return Response(page.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


@router.get(
    "/{incident_id}",
    response_model=IncidentDetail,
    summary="One incident with its history",
    responses=route_errors(404),
)
async def get_incident(
    incident_id: IncidentId, services: ServicesDep, principal: IncidentViewerDep
) -> IncidentDetail:
    row = await visible_incident(services, principal, incident_id)
    return await services.reader.detail(row)


@router.get(
    "/{incident_id}/snapshot",
    response_class=Response,
    summary="Latest snapshot (image/jpeg)",
    responses={200: {"content": {"image/jpeg": {}}}, **route_errors(404)},
)
async def get_snapshot(
    incident_id: IncidentId, services: ServicesDep, principal: IncidentViewerDep
) -> Response:
    row = await visible_incident(services, principal, incident_id)
    if not row.snapshot:
        raise NotFound("incident has no snapshot", code="no_snapshot")
    data = services.snapshots.read(row.snapshot)
    if data is None:
        raise _missing_snapshot(services, row)
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=86400, immutable", "ETag": f'"{row.snapshot}"'},
    )


def _missing_snapshot(services: CenterServices, row: Incident) -> NotFound:
    # The retention sweep deletes only what no open incident references: say so rather than "not found".
    if services.settings.snapshot_retention_days > 0 and row.status not in OPEN_STATUSES:
        return NotFound("snapshot expired under the retention policy", code="snapshot_expired")
    return NotFound("snapshot file is missing from the store", code="snapshot_missing")


@router.post(
    "/{incident_id}/transitions",
    response_model=IncidentPublic,
    summary="Move an incident through the workflow (409 if the transition is not allowed)",
    responses=route_errors(*BODY_ERRORS, 404, 409),
)
async def transition(
    incident_id: IncidentId, body: TransitionIn, services: ServicesDep, principal: IncidentViewerDep
) -> IncidentPublic:
    # NotFound (absent or out of scope) and TransitionError (409) come from the writer as they are.
    event = await services.writer.transition(
        incident_id,
        body.to.value,
        actor=principal.subject,
        note=body.note,
        station_scope=principal.station_scope,
        scope_all=principal.station_scope is None,
        now=datetime.now(UTC),
    )
    await services.hub.publish([event])
    return incident_public(event.incident)
