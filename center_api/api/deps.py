"""Typed dependencies of the center's routes: the services and the caller's principal.

    ServicesDep          the started center's `CenterServices` (503 `unavailable` before start-up)
    PrincipalDep         any valid bearer token (401 `unauthorized` otherwise)
    IncidentViewerDep    roles that read incidents: operator, station_admin, city_command (403 otherwise)
    CameraManagerDep     roles that change the camera registry: integrator, city_command
    CameraViewerDep      every role but the worker's (operators see their station's cameras only; the route
                         scopes it)
    WorkerDep            the ingest workers' role: uploads clips and reports failed ones, nothing else
    ScrapeTokenDep       the platform's scrape token of `/metrics` (no user token; 404 when none is set)

WebSocket handlers, which take no `Depends` for these, call `services_of(websocket)`. A route declares its
error answers with `route_errors(<its handler's statuses>)`, which adds what these dependencies answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from center_api.auth import (
    CAMERA_READ_ROLES,
    INCIDENT_ROLES,
    Principal,
    Role,
    check_scrape_token,
    current_principal,
    require_roles,
)
from center_api.errors import Unavailable, error_responses
from center_api.services import CenterServices


def services_of(conn: HTTPConnection) -> CenterServices:
    """The center's services, or `Unavailable` while it has not started (or has stopped)."""
    services: CenterServices | None = getattr(conn.app.state, "services", None)
    if services is None:
        raise Unavailable("the center is not started", code="not_started")
    return services


def get_services(conn: HTTPConnection) -> CenterServices:
    """FastAPI dependency form of `services_of`."""
    return services_of(conn)


ServicesDep = Annotated[CenterServices, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
IncidentViewerDep = Annotated[Principal, Depends(require_roles(*INCIDENT_ROLES))]
CameraManagerDep = Annotated[Principal, Depends(require_roles(Role.integrator, Role.city_command))]
CameraViewerDep = Annotated[Principal, Depends(require_roles(*CAMERA_READ_ROLES))]
WorkerDep = Annotated[Principal, Depends(require_roles(Role.worker))]
ScrapeTokenDep = Annotated[None, Depends(check_scrape_token)]

# What the dependencies above answer before a handler runs: 401 and 403 from the token (every token route
# declares both, one set for clients to handle, even where any valid token will do), 429 while the client's
# address is refused for bad tokens, and 503 from `ServicesDep` before start-up.
DEPENDENCY_ERRORS = (401, 403, 429, 503)


def route_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a token route: its handler's own error statuses and `DEPENDENCY_ERRORS`."""
    return error_responses(*statuses, *DEPENDENCY_ERRORS)
