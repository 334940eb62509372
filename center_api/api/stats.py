"""Statistics: counts by grid unit and kind, open incidents, SLA percentiles, false-alarm rates."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from center_api.api.deps import IncidentViewerDep, ServicesDep, route_errors
from center_api.schemas import RequestTime
from center_api.store.stats import StatsReader

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])

Unit = Literal["cell", "community", "street", "district", "station", "camera"]
# ISO 8601 only (a bare number is refused), normalised to UTC, as the incident list's window.
Since = Annotated[RequestTime | None, Query(description="Window start (ISO 8601)")]
Until = Annotated[RequestTime | None, Query(description="Window end, exclusive (ISO 8601)")]


@router.get(
    "",
    summary="Counts by grid unit and kind, open incidents, SLA p50/p90, false-alarm rates",
    responses=route_errors(),
)
async def stats(
    services: ServicesDep,
    principal: IncidentViewerDep,
    by: Unit = "community",
    since: Since = None,
    until: Until = None,
    top: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, object]:
    reader = StatsReader(services.sessions)
    scope = principal.station_scope
    counts = await reader.counts(by, since, until, scope)
    return {
        "window": {"since": since, "until": until},
        "by": by,
        "counts": counts[:top],
        "open_by_station": await reader.open_by_station(scope),
        "sla": await reader.sla(since, until, scope),
        "false_alarms": await reader.false_alarms(since, until, scope, top),
    }


@router.get(
    "/counts", summary="Counts by grid unit and kind only (the cheap query)", responses=route_errors()
)
async def counts(
    services: ServicesDep,
    principal: IncidentViewerDep,
    by: Unit = "community",
    since: Since = None,
    until: Until = None,
) -> list[dict[str, object]]:
    return await StatsReader(services.sessions).counts(by, since, until, principal.station_scope)
