"""Health (no auth), who-am-I, stations, and Prometheus metrics.

Who-am-I and stations take any valid token, so of the token's errors only 401 happens; they declare both, as
every token route does (`route_errors`). The metrics hold every station's counts: they belong to the
platform's operators and take only the scrape token (`ScrapeTokenDep`), never a user's token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from center_api.api.deps import PrincipalDep, ScrapeTokenDep, ServicesDep, route_errors
from center_api.schemas import MePublic, StationPublic
from center_api.settings import CenterSettings

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get(
    "/health",
    summary="Liveness and readiness (no token needed); 503 while starting",
    responses={503: {"description": "Starting: the center is not ready yet"}},
)
async def health(request: Request, response: Response) -> dict[str, object]:
    # Reads app.state, not the services: it must answer (503) before the services exist.
    ready = bool(request.app.state.ready)
    settings: CenterSettings = request.app.state.settings
    if not ready:
        response.status_code = 503
    return {"status": "ok" if ready else "starting", "consumer": settings.consumer_name}


@router.get(
    "/me",
    response_model=MePublic,
    summary="The token's claims and its station's name",
    responses=route_errors(),
)
async def me(principal: PrincipalDep, services: ServicesDep) -> MePublic:
    city = services.city
    return MePublic(
        subject=principal.subject,
        role=principal.role.value,
        station_id=principal.station_id,
        station_name=city.station_name(principal.station_id),
        city_command_id=city.city_command.id,
    )


@router.get(
    "/stations",
    response_model=list[StationPublic],
    summary="Stations and the city command center",
    responses=route_errors(),
)
async def stations(principal: PrincipalDep, services: ServicesDep) -> list[StationPublic]:
    return [
        StationPublic(id=s.id, name=s.name, code=s.code, city_command=s.city_command)
        for s in services.city.stations.values()
    ]


metrics_router = APIRouter(tags=["system"])


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (the scrape token only; 404 when none is configured)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **route_errors(404)},
)
async def metrics(scrape: ScrapeTokenDep, services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
