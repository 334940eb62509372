"""The grid as GeoJSON: cells with incident counts (heat map), and the unit hierarchy.

Both are scoped like incidents: a station's token sees its own cells and the units above them (a unit shared
with another station's cells is listed, its other cells are not); the city command sees the whole grid.
Integrators are refused (403): the grid's station assignment and counts are incident data, and they place
cameras by location (the center finds the cell)."""

from __future__ import annotations

from fastapi import APIRouter
from shapely.geometry import mapping

from center_api.api.deps import IncidentViewerDep, ServicesDep, route_errors
from center_api.grid import Level
from center_api.schemas import RequestTime
from center_api.store.stats import StatsReader

router = APIRouter(prefix="/api/v1/grid", tags=["grid"])


@router.get(
    "/cells",
    summary="GeoJSON of cells with incident counts (open by default) for a heat map",
    responses=route_errors(),
)
async def cells(
    services: ServicesDep,
    principal: IncidentViewerDep,
    since: RequestTime | None = None,  # ISO 8601 only, as every time in a request
    until: RequestTime | None = None,
    open_only: bool = True,
) -> dict[str, object]:
    scope = principal.station_scope
    counts = await StatsReader(services.sessions).cell_counts(since, until, scope, open_only)
    features = []
    for unit in services.city.cells:
        if scope is not None and unit.station != scope:
            continue
        line = services.city.lineage[unit.id]
        features.append(
            {
                "type": "Feature",
                "id": unit.id,
                "geometry": mapping(unit.geometry),
                "properties": {
                    "id": unit.id,
                    "code": unit.code,
                    "name": unit.name,
                    "community_id": line.community_id,
                    "street_id": line.street_id,
                    "district_id": line.district_id,
                    "station_id": line.station_id,
                    "count": counts.get(unit.id, 0),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {"unassigned": counts.get("unassigned", 0), "open_only": open_only},
    }


@router.get("/units", summary="Districts, streets and communities (no geometry)", responses=route_errors())
async def units(services: ServicesDep, principal: IncidentViewerDep) -> list[dict[str, object]]:
    city = services.city
    scope = principal.station_scope
    visible: set[str | None] | None = None  # None: every unit
    if scope is not None:
        lines = [line for line in city.lineage.values() if line.station_id == scope]
        visible = {unit for line in lines for unit in (line.community_id, line.street_id, line.district_id)}
    return [
        {"id": u.id, "level": u.level.value, "code": u.code, "name": u.name, "parent": u.parent}
        for u in city.units.values()
        if u.level is not Level.cell and (visible is None or u.id in visible)
    ]
