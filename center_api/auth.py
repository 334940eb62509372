"""Bearer tokens (PyJWT, HS256) and the checks that turn a request's token into a `Principal`.

Claims: `sub` (user), `role` (operator | station_admin | city_command | integrator | worker), `station`
(station id or null), `iat`, `exp`. Operators and station admins see their station's incidents, the city
command every station's; integrators manage the camera registry and see no incident; a worker (an ingest
worker's credential) uploads event clips and reports the ones it cannot make, and reads nothing. A token
comes in the `Authorization: Bearer` header or, for WebSocket and EventSource clients that cannot set
headers, in the `token` query parameter. The signing secret is the settings' on
`app.state.settings`, set by `create_app`.

A missing or invalid token raises `Unauthorized` (401), a role that may not do something `Forbidden` (403).
Every bad token is counted against the client's address (`center_api.throttle`, kept on
`app.state.token_throttle`): an address over the limit is answered `TooManyRequests` (429, `Retry-After`)
before its token is even read.
`/metrics` takes none of these tokens but the platform's scrape credential (`check_scrape_token`).
Routes use the typed aliases in `center_api.api.deps` (`PrincipalDep`, `IncidentViewerDep`, ...), built from
`current_principal` and `require_roles` here; `Principal.station_scope` says which station's data one sees.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from center_api.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from center_api.throttle import TokenFailureThrottle

ALGORITHM = "HS256"


class Role(StrEnum):
    operator = "operator"
    station_admin = "station_admin"
    city_command = "city_command"
    integrator = "integrator"
    worker = "worker"  # an ingest worker: uploads clips (`center_api.api.clips`), reads nothing


class TokenError(ValueError):
    """A token that is malformed, expired, badly signed or carries bad claims."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: Role
    station_id: str | None

    @property
    def station_scope(self) -> str | None:
        """The one station whose incidents this principal sees, or None for city-wide."""
        return None if self.role is Role.city_command else self.station_id

    def may_see_station(self, station_id: str | None) -> bool:
        if self.role is Role.city_command:
            return True
        if self.role in (Role.integrator, Role.worker):
            return False
        return self.station_id is not None and station_id == self.station_id


def issue_token(secret: str, *, subject: str, role: str, station_id: str | None, ttl_s: int = 86400) -> str:
    """Sign a token. Operators and station admins need a station; city command, integrators and workers need
    none (a worker's station, if given, is only recorded)."""
    parsed = Role(role)
    if parsed in (Role.operator, Role.station_admin) and not station_id:
        raise ValueError(f"a {parsed} token needs a station")
    if not subject:
        raise ValueError("subject must not be empty")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    now = int(time.time())
    claims = {"sub": subject, "role": parsed.value, "station": station_id, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise TokenError(f"unknown role {claims['role']!r}") from None
    station = claims.get("station")
    if station is not None and not isinstance(station, str):
        raise TokenError("'station' must be a string or null")
    if role in (Role.operator, Role.station_admin) and not station:
        raise TokenError(f"a {role} token needs a station")
    return Principal(str(claims["sub"]), role, station)


# auto_error=False: we also accept `?token=` and answer 401 ourselves. Gives OpenAPI its security scheme.
_bearer = HTTPBearer(auto_error=False, description="JWT (HS256) from `gridwatch token issue`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _secret(conn: HTTPConnection) -> str:
    return str(conn.app.state.settings.jwt_secret.get_secret_value())


def client_address(conn: HTTPConnection) -> str:
    """The client's address as the server sees it (behind a proxy: what uvicorn's proxy headers give)."""
    return conn.client.host if conn.client is not None else "unknown"


def _throttle(conn: HTTPConnection) -> TokenFailureThrottle:
    """The app's table of failed token checks (`create_app` builds it from the settings)."""
    throttle: TokenFailureThrottle = conn.app.state.token_throttle
    return throttle


def refuse_if_throttled(conn: HTTPConnection) -> None:
    """Raise `TooManyRequests` (with `Retry-After`) while the client's address is refused for bad tokens."""
    throttle = _throttle(conn)
    wait = throttle.refusal(client_address(conn), time.monotonic())
    if wait is not None:
        raise TooManyRequests(
            f"too many failed token checks from this address (limit {throttle.max_failures} in "
            f"{throttle.window_s:g} s); retry after {math.ceil(wait)} s",
            code="too_many_token_failures",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def _count_failure(conn: HTTPConnection) -> None:
    refused = _throttle(conn).failed(client_address(conn), time.monotonic())
    metrics = getattr(conn.app.state, "metrics", None)
    if metrics is not None:
        metrics.token_failures.inc()
        if refused:
            metrics.addresses_refused.inc()


def authenticate(conn: HTTPConnection, token: str | None) -> Principal:
    """The principal of `token`: `TooManyRequests` for a refused address, `Unauthorized` (counted against the
    address when the token is bad) for a missing or invalid one."""
    refuse_if_throttled(conn)
    if not token:
        raise Unauthorized("missing bearer token", code="missing_token", headers=_CHALLENGE)
    try:
        return decode_token(_secret(conn), token)
    except TokenError as exc:
        _count_failure(conn)
        raise Unauthorized(f"invalid token: {exc}", code="invalid_token", headers=_CHALLENGE) from None


def principal_from_connection(
    conn: HTTPConnection, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The principal of a request's token (header, else `?token=`); see `authenticate` for the errors."""
    token = credentials.credentials if credentials is not None else conn.query_params.get("token")
    return authenticate(conn, token)


def count_failed_credential(conn: HTTPConnection) -> None:
    """Count a bad credential that is no token (a forged signed URL) against the client's address."""
    _count_failure(conn)


async def optional_principal(
    conn: HTTPConnection, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal | None:
    """FastAPI dependency of a route that also takes another credential: the principal of the request's
    token, None when it carries none (a bad token is refused as `authenticate` refuses it)."""
    token = credentials.credentials if credentials is not None else conn.query_params.get("token")
    return authenticate(conn, token) if token else None


async def current_principal(
    conn: HTTPConnection, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the caller's principal (any valid token)."""
    return principal_from_connection(conn, credentials)


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A FastAPI dependency that passes a principal of one of `roles` and raises `Forbidden` for others."""
    allowed = frozenset(roles)

    async def _check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role} may not do this", code="role_not_allowed")
        return principal

    return _check


INCIDENT_ROLES = (Role.operator, Role.station_admin, Role.city_command)
# Every role but the worker's, whose token only uploads clips: the camera registry's readers.
CAMERA_READ_ROLES = (*INCIDENT_ROLES, Role.integrator)


def bearer_from_headers(conn: HTTPConnection) -> str | None:
    """The token of a WebSocket handshake: `Authorization: Bearer ...` or `?token=...`."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("token") or None


def principal_for_websocket(conn: HTTPConnection) -> Principal:
    """The principal of a WebSocket handshake; raises as `authenticate` does."""
    return authenticate(conn, bearer_from_headers(conn))


# The scrape credential: its own scheme in the OpenAPI document (it is no JWT).
_scrape_bearer = HTTPBearer(
    auto_error=False, scheme_name="MetricsToken", description="The scrape token (GRIDWATCH_METRICS_TOKEN)"
)


async def check_scrape_token(
    conn: HTTPConnection, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scrape_bearer)]
) -> None:
    """FastAPI dependency of `/metrics`: the configured scrape token in `Authorization: Bearer`, nothing else.

    Unset in the settings: 404 `metrics_disabled`. A user's JWT, however valid, is 403 (the metrics hold every
    station's counts); any other credential is a bad token (401, counted against the address)."""
    expected = conn.app.state.settings.metrics_token
    if expected is None:
        raise NotFound(
            "metrics are off: no scrape token is configured (metrics_token)", code="metrics_disabled"
        )
    refuse_if_throttled(conn)
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing scrape token", code="missing_token", headers=_CHALLENGE)
    given = credentials.credentials.encode()
    if hmac.compare_digest(given, expected.get_secret_value().encode()):
        return
    try:
        decode_token(_secret(conn), credentials.credentials)
    except TokenError:
        _count_failure(conn)
        raise Unauthorized("invalid scrape token", code="invalid_token", headers=_CHALLENGE) from None
    raise Forbidden("/metrics takes the scrape token, not a user token", code="metrics_token_required")
