"""Bearer tokens (PyJWT, HS256) and the checks that turn a request's token into a `Principal`.

Claims: `sub` (user), `role` (operator | station_admin | city_command | integrator), `station` (station id or
null), `iat`, `exp`. A token comes in the `Authorization: Bearer` header or, for WebSocket and EventSource
clients that cannot set headers, in the `token` query parameter. The signing secret is the settings' on
`app.state.settings`, set by `create_app`.

A missing or invalid token raises `Unauthorized` (401), a role that may not do something `Forbidden` (403).
Routes use the typed aliases in `center_api.api.deps` (`PrincipalDep`, `IncidentViewerDep`, ...), built from
`current_principal` and `require_roles` here; `Principal.station_scope` says which station's data one sees.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from center_api.errors import Forbidden, Unauthorized

ALGORITHM = "HS256"


class Role(StrEnum):
    operator = "operator"
    station_admin = "station_admin"
    city_command = "city_command"
    integrator = "integrator"


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
        if self.role is Role.integrator:
            return False
        return self.station_id is not None and station_id == self.station_id


def issue_token(secret: str, *, subject: str, role: str, station_id: str | None, ttl_s: int = 86400) -> str:
    """Sign a token. Operators and station admins need a station; city command and integrators need none."""
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


def principal_from_connection(
    conn: HTTPConnection, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The principal of a request's token (header, else `?token=`); raises `Unauthorized` without one."""
    token = credentials.credentials if credentials is not None else conn.query_params.get("token")
    if not token:
        raise Unauthorized("missing bearer token", code="missing_token", headers=_CHALLENGE)
    try:
        return decode_token(_secret(conn), token)
    except TokenError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="invalid_token", headers=_CHALLENGE) from None


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


def bearer_from_headers(conn: HTTPConnection) -> str | None:
    """The token of a WebSocket handshake: `Authorization: Bearer ...` or `?token=...`."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("token") or None


def principal_for_websocket(conn: HTTPConnection) -> Principal | None:
    """The principal of a WebSocket handshake, or None when the token is missing or invalid."""
    token = bearer_from_headers(conn)
    if token is None:
        return None
    try:
        return decode_token(_secret(conn), token)
    except TokenError:
        return None
