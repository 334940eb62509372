"""Incidents: list by grid unit / station / camera / kind / severity / status / time window (cursor pages),
one incident with its history, its snapshot, and workflow transitions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from center_api.auth import IncidentReader
from center_api.schemas import IncidentDetail, IncidentPage, IncidentPublic, TransitionIn
from center_api.state import CenterState, StateDep
from center_api.store.incidents import NotFound
from center_api.store.models import Incident
from center_api.store.queries import CursorError, IncidentFilter, incident_public
from center_api.workflow import OPEN_STATUSES, Status, TransitionError

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


async def _visible(state: CenterState, principal: IncidentReader, incident_id: int) -> Incident:
    assert state.reader is not None
    row = await state.reader.get(incident_id)
    # Out of scope looks the same as absent: an operator learns nothing about other stations' incidents.
    if row is None or not principal.may_see_station(row.station_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident")
    return row


@router.get("", response_model=IncidentPage, summary="List incidents, newest first")
async def list_incidents(
    state: StateDep,
    principal: IncidentReader,
    cell: str | None = None,
    community: str | None = None,
    street: str | None = None,
    district: str | None = None,
    station: str | None = None,
    camera: str | None = None,
    kind: str | None = None,
    severity: Annotated[int | None, Query(ge=1, le=4)] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentPage:
    assert state.reader is not None
    f = IncidentFilter(
        cell=cell,
        community=community,
        street=street,
        district=district,
        station=station,
        camera=camera,
        kind=kind,
        severity=severity,
        status=status_.value if status_ else None,
        since=_utc(since),
        until=_utc(until),
    )
    try:
        rows, next_cursor = await state.reader.list(
            f, station_scope=principal.station_scope, cursor=cursor, limit=limit
        )
    except CursorError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    page = IncidentPage(items=[incident_public(r) for r in rows], next_cursor=next_cursor)
    # Serialise once (the model was built from trusted rows; skip FastAPI's second validation pass).
    return Response(page.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/{incident_id}", response_model=IncidentDetail, summary="One incident with its history")
async def get_incident(incident_id: int, state: StateDep, principal: IncidentReader) -> IncidentDetail:
    row = await _visible(state, principal, incident_id)
    assert state.reader is not None
    return await state.reader.detail(row)


@router.get(
    "/{incident_id}/snapshot",
    response_class=Response,
    summary="Latest snapshot (image/jpeg)",
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_snapshot(incident_id: int, state: StateDep, principal: IncidentReader) -> Response:
    row = await _visible(state, principal, incident_id)
    assert state.snapshots is not None
    if not row.snapshot:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "incident has no snapshot")
    data = state.snapshots.read(row.snapshot)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _missing_snapshot(state, row))
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=86400, immutable", "ETag": f'"{row.snapshot}"'},
    )


def _missing_snapshot(state: CenterState, row: Incident) -> str:
    # The retention sweep deletes only what no open incident references: say so rather than "not found".
    if state.settings.snapshot_retention_days > 0 and row.status not in OPEN_STATUSES:
        return "snapshot expired under the retention policy"
    return "snapshot file is missing from the store"


@router.post(
    "/{incident_id}/transitions",
    response_model=IncidentPublic,
    summary="Move an incident through the workflow (409 if the transition is not allowed)",
)
async def transition(
    incident_id: int, body: TransitionIn, state: StateDep, principal: IncidentReader
) -> IncidentPublic:
    assert state.writer is not None and state.hub is not None
    try:
        event = await state.writer.transition(
            incident_id,
            body.to.value,
            actor=principal.subject,
            note=body.note,
            station_scope=principal.station_scope,
            scope_all=principal.station_scope is None,
            now=datetime.now(UTC),
        )
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident") from None
    except TransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await state.hub.publish([event])
    return incident_public(event.incident)
