"""The center's errors: one tree, one body shape, one handler.

Domain code raises these; `install_error_handlers(app)` turns each into its HTTP status and the body
`{"detail": "<message>", "code": "<code>"}` (`ErrorBody`). Starlette's `HTTPException` (404 of an unknown
route, 405 of a wrong method, 400 of a body FastAPI cannot parse) gets the same body; a 405's `Allow` names
every method of the path as the OpenAPI document has it. Request validation errors keep FastAPI's standard
422 `{"detail": [...]}` array; a route that raises `Unprocessable` declares both 422 bodies
(`error_responses(422)`).

    CenterError                  500 internal_error (base; raise a subclass)
     ├── BadRequest              400 bad_request
     │    ├── CursorError            bad_cursor               (store.queries)
     │    ├── UnparsableImport       unparsable_import        (cameras.bulk)
     │    ├── NegotiationFailed      live_negotiation_failed  (live.relay)
     │    └── ClipRefused            digest_mismatch, size_mismatch (clips.intake: an upload that is not
     │                                                        what its path and meta say)
     ├── Unauthorized            401 unauthorized           (auth: missing or invalid token)
     │    ├── ClipLinkInvalid        clip_link_invalid        (clips.signing: a forged or altered clip URL)
     │    └── ClipLinkExpired        clip_link_expired        (clips.signing)
     ├── Forbidden               403 forbidden              (auth: role or station scope)
     ├── NotFound                404 not_found              (store.incidents: code incident_not_found)
     ├── Conflict                409 conflict
     │    └── TransitionError        transition_not_allowed   (workflow)
     ├── PayloadTooLarge         413 payload_too_large      (the detail names the limit's setting)
     │    ├── BodyTooLarge           body_too_large           (limits: a request body over max_body_bytes)
     │    ├── ImportTooLarge         import_too_large         (cameras.bulk)
     │    ├── ImportTooManyRows      import_too_many_rows     (cameras.bulk)
     │    ├── ImportLineTooLong      import_line_too_long     (cameras.bulk)
     │    └── ClipTooLarge           clip_too_large           (clips.intake: over clip_max_bytes)
     ├── UnsupportedMediaType    415 unsupported_media_type
     │    ├── NoCommonCodec          no_common_codec          (live.relay)
     │    └── NotMp4                 not_mp4                  (clips.intake)
     ├── RangeNotSatisfiable     416 range_not_satisfiable  (api.clips: a Range past the clip's end;
     │                                                        Content-Range: bytes */<size>)
     ├── Unprocessable           422 unprocessable          (a well-formed request the domain refuses)
     │    └── UnknownCell            unknown_cell             (cameras.registry)
     ├── TooManyRequests         429 too_many_requests      (a client limit: feeds per token, bad tokens)
     ├── Unavailable             503 unavailable
     │    ├── CameraOffline          camera_offline           (live.source)
     │    ├── LiveBusy               live_busy                (live.relay)
     │    └── StoreUnavailable       store_unavailable        (the database or Redis is away: a refused
     │                                                        connection, a server in crash recovery)
     └── InsufficientStorage     507 insufficient_storage
          └── ClipQuotaExceeded      clip_quota_exceeded      (clips.intake: the station's clip quota)

The three errors of live.relay also derive from its `LiveError` (any live-view error).

`code` is stable and machine-readable (snake_case): clients branch on it, never on `detail`, whose wording
may change. A raise may give a more specific code than its class's, e.g.
`NotFound("no such camera", code="camera_not_found")`. The messages reach the client: never put a secret
(a camera URL with its password) in one.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from center_api.store.db import refused_for_its_data

log = logging.getLogger(__name__)

# A Starlette HTTPException carries only a status: give it the code of the tree's class for that status
# (the first class declared with it, a branch below).
_CODES: dict[int, str] = {}


class CenterError(Exception):
    """Base of the center's errors: an HTTP `status`, a stable `code` and a `message` for the client.

    A branch declares its status and code in its class line (`class NotFound(CenterError, status=404,
    code="not_found")`); a leaf may set only `code` (a class attribute or keyword) and keeps its branch's
    status.
    """

    status: ClassVar[int] = 500
    code: str = "internal_error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status
            _CODES.setdefault(status, cls.code)

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # shadows the class's code for this one error
        self.headers = headers


class BadRequest(CenterError, status=400, code="bad_request"):
    """The request cannot be served as it is (a bad cursor, an offer that cannot be negotiated)."""


class Unauthorized(CenterError, status=401, code="unauthorized"):
    """No token, or one that is malformed, expired or badly signed."""


class Forbidden(CenterError, status=403, code="forbidden"):
    """A valid token whose role or station scope does not allow this."""


class NotFound(CenterError, status=404, code="not_found"):
    """No such thing, or one outside the caller's scope (the two look the same on purpose)."""


class Conflict(CenterError, status=409, code="conflict"):
    """The request contradicts the current state (an id that exists, a transition not allowed)."""


class PayloadTooLarge(CenterError, status=413, code="payload_too_large"):
    """A body over the size the center accepts."""


class UnsupportedMediaType(CenterError, status=415, code="unsupported_media_type"):
    """A body, or an offered media format, the center cannot take."""


class RangeNotSatisfiable(CenterError, status=416, code="range_not_satisfiable"):
    """A byte range that starts past the end of what is served; `headers` carry `Content-Range`."""


class Unprocessable(CenterError, status=422, code="unprocessable"):
    """A well-formed request the domain refuses (a camera fixed to a cell the grid does not have).

    Answered 422 with an `ErrorBody`; validation errors of the request's shape stay FastAPI's 422 array. A
    route that raises it declares `error_responses(422)`, which documents either body.
    """


class TooManyRequests(CenterError, status=429, code="too_many_requests"):
    """A per-client limit is reached (feed connections of one token, failed token checks of one address).

    The message names the limit; `headers` may carry `Retry-After`."""


class Unavailable(CenterError, status=503, code="unavailable"):
    """The center, or something it depends on (a camera stream), cannot serve this now; try later."""


class InsufficientStorage(CenterError, status=507, code="insufficient_storage"):
    """The center has no room to store this (a station's clip quota, after evicting what it may)."""


class StoreUnavailable(Unavailable, code="store_unavailable"):
    """The database or Redis cannot be reached (`install_error_handlers` maps their connection errors
    here)."""


class ErrorBody(BaseModel):
    """The body of every error answer except request validation (422, FastAPI's own array)."""

    detail: str = Field(description="What went wrong, for people; the wording may change")
    code: str = Field(description="Stable machine-readable reason, snake_case (e.g. `incident_not_found`)")


def _code_for(status: int) -> str:
    if status in _CODES:
        return _CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _body(status: int, detail: str, code: str, headers: Mapping[str, str] | None) -> Response:
    if status in (204, 304):  # these statuses forbid a body
        return Response(status_code=status, headers=headers)
    return JSONResponse(ErrorBody(detail=detail, code=code).model_dump(), status_code=status, headers=headers)


async def _center_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CenterError)  # registered for CenterError only
    return _body(exc.status, exc.message, exc.code, exc.headers)


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


@functools.lru_cache(maxsize=256)
def _template(path: str) -> re.Pattern[str]:
    """`/api/v1/cameras/{camera_id}` -> a pattern of the paths it stands for (a parameter is one segment)."""
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))


def _allowed_methods(request: Request) -> str | None:
    """The methods of the request's path as the app's OpenAPI document has them: the path itself, else the
    first template with the fewest parameters that matches it (concrete before templated, as OpenAPI routes).
    Starlette's own 405 names only the methods of the first route it tried. None for an undocumented path."""
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    path = request.url.path
    item = paths.get(path)
    if item is None:
        templates = sorted((p for p in paths if "{" in p), key=lambda p: p.count("{"))
        item = next((paths[p] for p in templates if _template(p).fullmatch(path)), None)
    if item is None:
        return None
    methods = {m.upper() for m in item if m in _METHODS}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD for every GET route
    return ", ".join(sorted(methods))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # registered for HTTPException only
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = exc.headers
    if exc.status_code == 405 and (allow := _allowed_methods(request)) is not None:
        headers = {**(headers or {}), "Allow": allow}
    return _body(exc.status_code, detail, _code_for(exc.status_code), headers)


# Retry-After of a `StoreUnavailable`: a PostgreSQL restart or a Redis fail-over takes seconds.
STORE_RETRY_AFTER_S = 5
# What a connection to the database or Redis raises when the server is away (besides SQLAlchemy's DBAPIError).
_AWAY = (ConnectionError, RedisConnectionError, RedisTimeoutError, SQLAlchemyTimeoutError)


def store_away(exc: BaseException) -> bool:
    """Whether `exc` says the database or Redis is away (not that it refused a statement for its data)."""
    if isinstance(exc, DBAPIError):
        # A refused connection or a server in recovery; a refused row or a bad statement is a real fault.
        return not (refused_for_its_data(exc) or isinstance(exc, ProgrammingError))
    return isinstance(
        exc, ConnectionError | RedisConnectionError | RedisTimeoutError | SQLAlchemyTimeoutError
    )


async def _store_error(_request: Request, exc: Exception) -> Response:
    if not store_away(exc):
        raise exc  # a real fault: Starlette's 500 and its log line
    error = StoreUnavailable(
        "a service the center depends on (the database or Redis) is unavailable; try again shortly",
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )
    log.warning("answered 503: the database or Redis is away (%s)", type(exc).__name__)
    return _body(error.status, error.message, error.code, error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render every `CenterError` and every Starlette `HTTPException` of `app` as an `ErrorBody`, and the
    connection errors of the database and Redis as a 503 `store_unavailable` (not a bare 500 that drops the
    connection)."""
    app.add_exception_handler(CenterError, _center_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for kind in (
        DBAPIError,
        ConnectionError,
        RedisConnectionError,
        RedisTimeoutError,
        SQLAlchemyTimeoutError,
    ):
        app.add_exception_handler(kind, _store_error)


# A 422 of an operation whose handler raises `Unprocessable` is either body: FastAPI's validation array (the
# request's shape) or an `ErrorBody` (a well-formed request the domain refuses). Both schemas are components
# of every document of the center (ErrorBody from the other errors, HTTPValidationError from the routes
# with parameters).
_UNPROCESSABLE = {
    "description": "The request's shape is invalid (FastAPI's array), or the domain refuses it (ErrorBody)",
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/HTTPValidationError"},
                    {"$ref": "#/components/schemas/ErrorBody"},
                ]
            }
        }
    },
}


# What a route with a JSON body answers before its handler runs, to add to its declared statuses: 400 for a
# body FastAPI cannot parse (not UTF-8) and 413 for one over `max_body_bytes` (`center_api.limits`).
BODY_ERRORS = (400, 413)


def _declared(status: int) -> dict[str, Any]:
    if status == 422:
        return _UNPROCESSABLE
    return {"model": ErrorBody, "description": HTTPStatus(status).phrase}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for a route decorator: each status documented with the `ErrorBody` schema;
    422 (given by a route that raises `Unprocessable`) with either FastAPI's array or an `ErrorBody`."""
    return {status: _declared(status) for status in sorted(statuses)}


__all__ = [
    "BODY_ERRORS",
    "BadRequest",
    "CenterError",
    "Conflict",
    "ErrorBody",
    "Forbidden",
    "InsufficientStorage",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "Unprocessable",
    "error_responses",
    "install_error_handlers",
]
