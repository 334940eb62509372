"""The center's one error tree: statuses and codes, the one body shape, and the OpenAPI declarations."""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Union, get_args, get_origin, get_type_hints

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from center_api.app import create_app
from center_api.cameras.bulk import ImportLimits, UnparsableImport, parse_import
from center_api.cameras.registry import UnknownCell
from center_api.errors import (
    BadRequest,
    CenterError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
    error_responses,
    install_error_handlers,
)
from center_api.live.relay import LiveBusy, LiveError, NegotiationFailed, NoCommonCodec
from center_api.live.source import CameraOffline
from center_api.services import CenterServices
from center_api.store.queries import CursorError, decode_cursor
from center_api.workflow import TransitionError, check_transition
from tests.center_api.conftest import NANGUAN_1, auth, make_settings

ERROR_BODY_REF = "#/components/schemas/ErrorBody"


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (CenterError, 500, "internal_error"),
        (BadRequest, 400, "bad_request"),
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
        (Unprocessable, 422, "unprocessable"),
        (Unavailable, 503, "unavailable"),
        (CursorError, 400, "bad_cursor"),
        (NegotiationFailed, 400, "live_negotiation_failed"),
        (TransitionError, 409, "transition_not_allowed"),
        (NoCommonCodec, 415, "no_common_codec"),
        (UnknownCell, 422, "unknown_cell"),
        (UnparsableImport, 400, "unparsable_import"),
        (LiveBusy, 503, "live_busy"),
    ],
)
def test_each_error_has_its_status_and_code(cls: type[CenterError], status: int, code: str) -> None:
    exc = cls("what happened")
    assert (exc.status, exc.code, exc.message, str(exc)) == (status, code, "what happened", "what happened")
    assert re.fullmatch(r"[a-z][a-z0-9_]*", exc.code)


def test_a_raise_may_give_a_more_specific_code_without_changing_the_class() -> None:
    exc = NotFound("no such incident", code="incident_not_found", headers={"X-A": "1"})
    assert (exc.status, exc.code, exc.headers) == (404, "incident_not_found", {"X-A": "1"})
    assert NotFound.code == "not_found" and NotFound("x").headers is None


def test_domain_code_raises_the_tree() -> None:
    with pytest.raises(CursorError) as cursor:
        decode_cursor("not-a-cursor")
    with pytest.raises(TransitionError) as transition:
        check_transition("new", "resolved")
    with pytest.raises(UnparsableImport) as unparsable:
        parse_import(b'{"features": [{"geometry": 5}]}', "application/geo+json", ImportLimits())
    assert isinstance(cursor.value, BadRequest) and isinstance(transition.value, Conflict)
    assert isinstance(unparsable.value, BadRequest)
    offline = CameraOffline("cam-1", "connection refused")
    assert (offline.status, offline.code) == (503, "camera_offline")
    for live in (LiveBusy("x"), NoCommonCodec("x"), NegotiationFailed("x")):
        assert isinstance(live, LiveError)


@pytest.fixture
async def tiny() -> AsyncIterator[httpx.AsyncClient]:
    """An app with the center's handler and one route per kind of failure."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/tree/{status}")
    async def tree(status: int) -> None:
        cls = next(c for c in (BadRequest, Forbidden, NotFound, Conflict, Unavailable) if c.status == status)
        raise cls(f"a {status}", code=f"code_{status}")

    @app.get("/challenge")
    async def challenge() -> None:
        raise Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/starlette")
    async def starlette() -> None:
        raise StarletteHTTPException(409, "plain")

    @app.get("/validated")
    async def validated(n: int) -> int:
        return n

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("status", [400, 403, 404, 409, 503])
async def test_the_handler_answers_every_tree_error_with_one_body(
    tiny: httpx.AsyncClient, status: int
) -> None:
    r = await tiny.get(f"/tree/{status}")
    assert r.status_code == status
    assert r.json() == {"detail": f"a {status}", "code": f"code_{status}"}


async def test_headers_starlette_errors_and_validation(tiny: httpx.AsyncClient) -> None:
    r = await tiny.get("/challenge")
    assert (r.status_code, r.headers["www-authenticate"]) == (401, "Bearer")
    assert r.json() == {"detail": "missing bearer token", "code": "unauthorized"}
    r = await tiny.get("/starlette")
    assert (r.status_code, r.json()) == (409, {"detail": "plain", "code": "conflict"})
    r = await tiny.get("/no/such/route")
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found", "code": "not_found"})
    r = await tiny.post("/challenge")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    # Request validation keeps FastAPI's own 422 body: a list of problems, no `code`.
    r = await tiny.get("/validated", params={"n": "x"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], list) and "code" not in r.json()


def test_error_responses_declare_the_error_body() -> None:
    declared = error_responses(404, 401)
    assert list(declared) == [401, 404]
    assert all(entry["model"].__name__ == "ErrorBody" for entry in declared.values())


def test_center_services_is_frozen_and_has_no_optional_field() -> None:
    assert CenterServices.__dataclass_params__.frozen  # type: ignore[attr-defined]
    hints = get_type_hints(CenterServices)
    for field in dataclasses.fields(CenterServices):
        hint = hints[field.name]
        union = get_origin(hint) in (Union, types.UnionType)
        assert not (union and type(None) in get_args(hint)), f"{field.name} is optional"
        assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _openapi(tmp_path: Path) -> dict:
    return create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")).openapi()


def test_openapi_declares_each_operations_error_statuses(tmp_path: Path) -> None:
    document = _openapi(tmp_path)
    operations = [
        (f"{method.upper()} {path}", path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) > 15
    with_token = 0
    for name, path, op in operations:
        declared = {int(s) for s in op["responses"] if s != "default"}
        if op.get("security"):
            with_token += 1
            assert {401, 403} <= declared, name
        if "{" in path:
            assert 404 in declared, name
        # Health's 503 is its own status body (starting); every other error is an ErrorBody.
        for status in declared - {422} if op.get("security") else ():
            if status >= 400:
                schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_BODY_REF}, (name, status)
    assert with_token == len(operations) - 1  # all but health
    assert {"detail", "code"} <= set(document["components"]["schemas"]["ErrorBody"]["properties"])
    # What a handler can raise beyond the token errors, by operation.
    expected = {
        "GET /api/v1/incidents": {400},
        "POST /api/v1/incidents/{incident_id}/transitions": {404, 409},
        "POST /api/v1/cameras": {409},
        "POST /api/v1/cameras/import": {400},
        "POST /api/v1/cameras/{camera_id}/live": {400, 404, 409, 415, 503},
    }
    by_name = {name: op for name, _, op in operations}
    for name, statuses in expected.items():
        assert statuses <= {int(s) for s in by_name[name]["responses"]}, name


async def test_a_center_that_has_not_started_answers_503(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))
    transport = httpx.ASGITransport(app=app)  # no lifespan: the services are never built
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/api/v1/me", headers=auth())
        assert (r.status_code, r.json()) == (
            503,
            {"detail": "the center is not started", "code": "not_started"},
        )
        r = await client.get("/api/v1/me")
        assert (r.status_code, r.json()["code"]) == (401, "missing_token")
        assert (await client.get("/api/v1/health")).status_code == 503


@pytest.mark.integration
async def test_a_running_center_answers_every_error_with_one_body(center_factory, database_url) -> None:
    c = (await center_factory(database_url)).client
    integrator = auth("integrator", None, "bob")

    async def body(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert set(response.json()) == {"detail", "code"} and response.json()["code"] == code
        assert isinstance(response.json()["detail"], str) and response.json()["detail"]

    await body(await c.get("/api/v1/incidents", params={"cursor": "@@"}, headers=auth()), 400, "bad_cursor")
    r = await c.get("/api/v1/incidents")
    await body(r, 401, "missing_token")
    assert r.headers["www-authenticate"] == "Bearer"
    bad = {"Authorization": "Bearer not-a-jwt"}
    await body(await c.get("/api/v1/incidents", headers=bad), 401, "invalid_token")
    await body(await c.get("/api/v1/incidents", headers=integrator), 403, "role_not_allowed")
    r = await c.get("/api/v1/cameras", params={"station": "st-xiadu"}, headers=auth())
    await body(r, 403, "station_out_of_scope")
    await body(await c.get("/api/v1/incidents/999", headers=auth()), 404, "incident_not_found")
    r = await c.post("/api/v1/incidents/999/transitions", json={"to": "acknowledged"}, headers=auth())
    await body(r, 404, "incident_not_found")
    await body(await c.get("/api/v1/cameras/nope", headers=integrator), 404, "camera_not_found")
    camera = {
        "id": "cam-e",
        "url": "rtsp://u:p@10.0.0.1/s",
        "location": {"lat": NANGUAN_1[0], "lon": NANGUAN_1[1]},
    }
    assert (await c.post("/api/v1/cameras", json=camera, headers=integrator)).status_code == 201
    await body(await c.post("/api/v1/cameras", json=camera, headers=integrator), 409, "camera_exists")
    r = await c.patch("/api/v1/cameras/cam-e", json={"cell_id": "c-nowhere"}, headers=integrator)
    await body(r, 422, "unknown_cell")
    r = await c.post("/api/v1/cameras/import", content="{not json", headers=integrator)
    await body(r, 400, "unparsable_import")


def test_body_operations_declare_what_a_body_is_answered(tmp_path: Path) -> None:
    """A JSON body can be unparsable (400) or over the limit (413) before any handler; a camera write's 422 is
    either FastAPI's array or the domain's ErrorBody (unknown_cell, id_mismatch)."""
    document = _openapi(tmp_path)
    with_body = [
        (f"{method.upper()} {path}", op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if "requestBody" in op
    ]
    assert len(with_body) >= 6
    for name, op in with_body:
        assert {"400", "413", "422"} <= set(op["responses"]), name
    either = {"anyOf": [{"$ref": "#/components/schemas/HTTPValidationError"}, {"$ref": ERROR_BODY_REF}]}
    for name in (
        "POST /api/v1/cameras",
        "PUT /api/v1/cameras/{camera_id}",
        "PATCH /api/v1/cameras/{camera_id}",
    ):
        path, method = name.split(" ")[1], name.split(" ")[0].lower()
        assert document["paths"][path][method]["responses"]["422"]["content"]["application/json"][
            "schema"
        ] == (either), name


class _Untouchable:
    """Services no handler may read: a request refused by validation never reaches its handler."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a handler ran and read services.{name}")


@pytest.fixture
async def validating(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))
    app.state.services = _Untouchable()  # started, as far as the dependencies can tell
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


OFFER = {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "type": "offer"}


@pytest.mark.parametrize(
    ("method", "url", "body", "loc"),
    [
        # A NUL or another control character in a name: PostgreSQL refused NUL in text with a 500.
        ("GET", "/api/v1/incidents?cell=c%00x", None, ["query", "cell"]),
        ("GET", "/api/v1/incidents?kind=in%01trusion", None, ["query", "kind"]),
        ("GET", "/api/v1/incidents?camera=%7F", None, ["query", "camera"]),
        ("GET", "/api/v1/cameras?cell=%00", None, ["query", "cell"]),
        ("GET", "/api/v1/cameras?station=st%00", None, ["query", "station"]),
        ("GET", "/api/v1/cameras?cursor=cam%00", None, ["query", "cursor"]),
        ("GET", "/api/v1/cameras/cam%00x", None, ["path", "camera_id"]),
        ("DELETE", "/api/v1/cameras/cam%20x", None, ["path", "camera_id"]),
        ("POST", "/api/v1/cameras/cam%00x/live", OFFER, ["path", "camera_id"]),
        (
            "POST",
            "/api/v1/incidents/1/transitions",
            {"to": "acknowledged", "note": "a\x00b"},
            ["body", "note"],
        ),
        # A bare number is not a date-time, in any route's window.
        ("GET", "/api/v1/incidents?since=0.5", None, ["query", "since"]),
        ("GET", "/api/v1/incidents?until=1e9", None, ["query", "until"]),
        ("GET", "/api/v1/stats?since=1700000000", None, ["query", "since"]),
        ("GET", "/api/v1/stats/counts?until=-5.5", None, ["query", "until"]),
        ("GET", "/api/v1/grid/cells?until=nan", None, ["query", "until"]),
        # A camera body takes its documented fields and JSON types only.
        ("PATCH", "/api/v1/cameras/cam-1", {"colour": "red"}, ["body", "colour"]),
        ("PATCH", "/api/v1/cameras/cam-1", {"enabled": 1}, ["body", "enabled"]),
        ("PATCH", "/api/v1/cameras/cam-1", {"location": {"lat": "36.6", "lon": 101.7}}, ["body", "location"]),
        (
            "PATCH",
            "/api/v1/cameras/cam-1",
            {"rules": [{"kind": "tamper", "id": "t", "flat_std": False}]},
            ["body", "rules"],
        ),
        (
            "PUT",
            "/api/v1/cameras/cam-1",
            {"id": "cam-1", "url": "rtsp://h/s", "enabled": 0},
            ["body", "enabled"],
        ),
        (
            "POST",
            "/api/v1/cameras",
            {"id": "cam-1", "url": "rtsp://h/s", "sample_fps": "2"},
            ["body", "sample_fps"],
        ),
    ],
)
async def test_input_the_document_refuses_is_422_before_any_handler(
    validating: httpx.AsyncClient, method: str, url: str, body: object, loc: list[str]
) -> None:
    r = await validating.request(method, url, json=body, headers=auth("city_command", None))
    assert r.status_code == 422, r.text
    # (the live routes' dependency checks the camera id too, so it may be named twice)
    assert {tuple(e["loc"][: len(loc)]) for e in r.json()["detail"]} == {tuple(loc)}, r.text


async def test_a_body_that_is_not_utf8_is_a_documented_400(validating: httpx.AsyncClient) -> None:
    r = await validating.post(
        "/api/v1/incidents/1/transitions",
        content=b'{"to": "\xff"}',
        headers={**auth("city_command", None), "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (400, "bad_request")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/cameras", "GET, HEAD, POST"),
        ("DELETE", "/api/v1/cameras", "GET, HEAD, POST"),
        ("OPTIONS", "/api/v1/cameras/import", "POST"),  # the concrete path, not /cameras/{camera_id}'s
        ("OPTIONS", "/api/v1/cameras/cam-1", "DELETE, GET, HEAD, PATCH, PUT"),
        ("GET", "/api/v1/incidents/1/transitions", "POST"),
        ("POST", "/api/v1/health", "GET, HEAD"),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    validating: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    r = await validating.request(method, path, headers=auth("city_command", None))
    assert (r.status_code, r.headers["allow"], r.json()["code"]) == (405, allow, "method_not_allowed")


@pytest.mark.integration
async def test_a_nul_byte_never_reaches_postgresql(center_factory, pg_database_url, redis_db) -> None:
    """PostgreSQL refuses NUL in text: before validation refused it, these were 500s."""
    c = (await center_factory(pg_database_url)).client
    city = auth("city_command", None)
    for url in (
        "/api/v1/cameras?cell=c%00",
        "/api/v1/cameras?cursor=c%00",
        "/api/v1/cameras/c%00",
        "/api/v1/incidents?camera=c%00",
        "/api/v1/incidents?station=s%00",
    ):
        r = await c.get(url, headers=city)
        assert r.status_code == 422, (url, r.text)
    r = await c.post(
        "/api/v1/incidents/1/transitions", json={"to": "acknowledged", "note": "\x00"}, headers=city
    )
    assert r.status_code == 422, r.text
