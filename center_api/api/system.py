"""Health (no auth), who-am-I, stations, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from center_api.auth import CurrentPrincipal
from center_api.schemas import MePublic, StationPublic
from center_api.state import StateDep

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health", summary="Liveness and readiness (no token needed)")
async def health(state: StateDep, response: Response) -> dict[str, object]:
    if not state.ready:
        response.status_code = 503
    return {"status": "ok" if state.ready else "starting", "consumer": state.settings.consumer_name}


@router.get("/me", response_model=MePublic, summary="The token's claims and its station's name")
async def me(principal: CurrentPrincipal, state: StateDep) -> MePublic:
    assert state.city is not None
    return MePublic(
        subject=principal.subject,
        role=principal.role.value,
        station_id=principal.station_id,
        station_name=state.city.station_name(principal.station_id),
        city_command_id=state.city.city_command.id,
    )


@router.get("/stations", response_model=list[StationPublic], summary="Stations and the city command center")
async def stations(principal: CurrentPrincipal, state: StateDep) -> list[StationPublic]:
    assert state.city is not None
    return [
        StationPublic(id=s.id, name=s.name, code=s.code, city_command=s.city_command)
        for s in state.city.stations.values()
    ]


metrics_router = APIRouter(tags=["system"])


@metrics_router.get("/metrics", summary="Prometheus metrics (any valid token; scrape with bearer_token)")
async def metrics(principal: CurrentPrincipal, state: StateDep) -> Response:
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
