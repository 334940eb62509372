"""Station isolation by construction: every route of the app, called by every role against station B's ids.

The walk reads `app.routes` (and the OpenAPI document for query parameters), so a new route is covered
without anyone remembering it: a route, path parameter or query parameter the tables below do not know
fails the test with what to add. Data of both stations goes in through the real consumer (xadd to a running
center); station B gets incidents with a snapshot, a camera and a live-view session on a real RTSP stream.

A role not entitled to B's data on a route gets 403 or 404, and the same status and code as for an id
that never existed; a list or feed it may read names nothing of B (station, cells, camera, alerts, session,
snapshot bytes). Entitled roles do see B there: the ids are real, so every check above can fail.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiortc import RTCPeerConnection
from fastapi.routing import iter_route_contexts

from center_api.app import create_app
from center_api.live.settings import LiveSettings
from gridwatch.demo.clips import loop_clip, make_clip, quiet_scene
from tests.center_api.conftest import (
    NANGUAN_1,
    SCRAPE,
    XIADU_2,
    RunningCenter,
    auth,
    make_alert,
    make_settings,
    poll,
    xadd,
)
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration

B_STATION, B_CAMERA, A_CAMERA = "st-xiadu", "cam-xiadu-1", "cam-nanguan-1"
SNAPSHOT = b"\xff\xd8\xff\xe0" + b"XIADU-SNAPSHOT" * 8 + b"\xff\xd9"
ROLES = {
    "a_operator": ("operator", "st-nanguan", "a-op"),
    "a_admin": ("station_admin", "st-nanguan", "a-admin"),
    "b_operator": ("operator", B_STATION, "b-op"),
    "city": ("city_command", None, "chief"),
    "integrator": ("integrator", None, "vendor"),
}


class Kind(Enum):
    """What a route serves, and so which roles are entitled to station B's data there."""

    PUBLIC = ("no token needed, no station's data (health, docs, console)", frozenset())
    DIRECTORY = ("every station by name, for every token (station ids are no secret)", frozenset())
    OWN = ("the caller's own claims", frozenset({"b_operator"}))
    INCIDENT_DATA = ("incidents, snapshots, stats, grid, feeds, live view", frozenset({"b_operator", "city"}))
    CAMERA_READ = (
        "the registry; integrators manage cameras city-wide",
        frozenset({"b_operator", "city", "integrator"}),
    )
    CAMERA_WRITE = ("changes to the registry", frozenset({"city", "integrator"}))
    PLATFORM = ("/metrics: the scrape token only, no user token at all", frozenset())

    @property
    def entitled(self) -> frozenset[str]:
        return self.value[1]


@dataclass
class Seed:
    incident_id: int
    a_incident_id: int
    session_id: str
    offer: str
    rtsp_url: str
    b_alerts: list[str]
    stop_alerts: set[str]  # the last alert of each station: a feed has replayed past every event by then

    def markers(self, station_too: bool = True) -> list[bytes]:
        found = ["c-xiadu", B_CAMERA, self.session_id, *self.b_alerts] + ([B_STATION] if station_too else [])
        return [m.encode() for m in found] + [b"XIADU-SNAPSHOT"]


def _point(p: tuple[float, float]) -> dict[str, float]:
    return {"lat": p[0], "lon": p[1]}


@dataclass(frozen=True)
class Spec:
    kind: Kind
    write: int = 0  # 0: a read; n: a write, called after every read, in the order of n
    body: Callable[[Seed, str], Any] | None = None  # JSON, or (content type, text)
    feed: bool = False


ROUTES: dict[tuple[str, str], Spec] = {
    ("GET", "/openapi.json"): Spec(Kind.PUBLIC),
    ("GET", "/docs"): Spec(Kind.PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Spec(Kind.PUBLIC),
    ("GET", "/redoc"): Spec(Kind.PUBLIC),
    ("GET", "/"): Spec(Kind.PUBLIC),
    ("GET", "/console/{name}"): Spec(Kind.PUBLIC),
    ("GET", "/api/v1/health"): Spec(Kind.PUBLIC),
    ("GET", "/api/v1/me"): Spec(Kind.OWN),
    ("GET", "/api/v1/stations"): Spec(Kind.DIRECTORY),
    ("GET", "/metrics"): Spec(Kind.PLATFORM),
    ("GET", "/api/v1/incidents"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/incidents/{incident_id}"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/incidents/{incident_id}/snapshot"): Spec(Kind.INCIDENT_DATA),
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): Spec(
        Kind.INCIDENT_DATA, write=1, body=lambda s, r: {"to": "acknowledged", "note": r}
    ),
    ("WS", "/api/v1/feed"): Spec(Kind.INCIDENT_DATA, feed=True),
    ("GET", "/api/v1/feed/sse"): Spec(Kind.INCIDENT_DATA, feed=True),
    ("GET", "/api/v1/grid/cells"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/grid/units"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/stats"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/stats/counts"): Spec(Kind.INCIDENT_DATA),
    ("GET", "/api/v1/live"): Spec(Kind.INCIDENT_DATA),
    ("POST", "/api/v1/cameras/{camera_id}/live"): Spec(
        Kind.INCIDENT_DATA, write=2, body=lambda s, r: {"sdp": s.offer, "type": "offer"}
    ),
    ("DELETE", "/api/v1/cameras/{camera_id}/live/{session_id}"): Spec(Kind.INCIDENT_DATA, write=3),
    ("GET", "/api/v1/cameras"): Spec(Kind.CAMERA_READ),
    ("GET", "/api/v1/cameras/{camera_id}"): Spec(Kind.CAMERA_READ),
    ("POST", "/api/v1/cameras"): Spec(
        Kind.CAMERA_WRITE,
        write=4,
        body=lambda s, r: {
            "id": f"cam-xiadu-{r}",
            "url": "rtsp://127.0.0.1:1/b",
            "location": _point(XIADU_2),
        },
    ),
    ("PUT", "/api/v1/cameras/{camera_id}"): Spec(
        Kind.CAMERA_WRITE,
        write=4,
        body=lambda s, r: {"id": B_CAMERA, "url": s.rtsp_url, "location": _point(XIADU_2)},
    ),
    ("PATCH", "/api/v1/cameras/{camera_id}"): Spec(Kind.CAMERA_WRITE, write=4, body=lambda s, r: {"name": r}),
    ("POST", "/api/v1/cameras/import"): Spec(
        Kind.CAMERA_WRITE,
        write=4,
        body=lambda s, r: (
            "text/csv",
            f"id,url,lat,lon\ncam-xiadu-i-{r},rtsp://127.0.0.1:1/i,{XIADU_2[0]},{XIADU_2[1]}\n",
        ),
    ),
    ("DELETE", "/api/v1/cameras/{camera_id}"): Spec(Kind.CAMERA_WRITE, write=5),
}
# Path parameters: station B's id, one that never existed (an outsider must not tell them apart), and station
# A's own (None: A has none). A route with several takes, besides B's ids for all, each of B's ids in turn
# with A's for the others: an outsider may name its own camera and B's live session.
PATH_PARAMS: dict[str, tuple[Callable[[Seed], object], object, Callable[[Seed], object] | None]] = {
    "incident_id": (lambda s: s.incident_id, 999_999, lambda s: s.a_incident_id),
    "camera_id": (lambda s: B_CAMERA, "cam-nobody", lambda s: A_CAMERA),
    "session_id": (lambda s: s.session_id, "no-such-session", None),
    "name": (lambda s: "console.js", "console.js", None),  # the console's static files: no station's
}
# Query parameters set to station B's value, one at a time; enumerations and booleans take every value.
B_QUERY = {"station": B_STATION, "cell": "c-xiadu-02", "community": "c-xiadu", "camera": B_CAMERA}
ALWAYS = {"after": "0"}  # feeds replay from the start, so B's events would be among the first messages
HARMLESS = {"street", "district", "kind", "severity", "status", "since", "until", "cursor", "limit", "top"}
HARMLESS_HEADERS = {"Last-Event-ID"}


@dataclass
class Answer:
    status: int
    code: str | None
    body: bytes


def _route_table(app: Any) -> list[tuple[str, str, list[dict[str, str]]]]:
    """(method, path, query variants) of every route of the app; fails on what the tables do not know."""
    operations = app.openapi()["paths"]
    unknown: list[str] = []
    walked: list[tuple[str, str, list[dict[str, str]]]] = []
    for route in iter_route_contexts(app.routes):
        path = str(route.path)
        methods = sorted(set(route.methods or []) - {"HEAD"}) or (
            ["WS"] if "WebSocket" in type(route.original_route).__name__ else ["?"]
        )
        for method in methods:
            if (method, path) not in ROUTES:
                unknown.append(f"route {method} {path}: add it to ROUTES with its Kind")
            unknown += [
                f"path parameter {p!r} of {path}: add it to PATH_PARAMS"
                for p in re.findall(r"{(\w+)", path)
                if p not in PATH_PARAMS
            ]
            doc_path = (
                "/api/v1/feed/sse" if method == "WS" else path
            )  # the WebSocket takes the SSE's parameters
            params = (
                operations.get(doc_path, {})
                .get("get" if method == "WS" else method.lower(), {})
                .get("parameters", [])
            )
            variants: list[dict[str, str]] = [{}]
            for param in params:
                name, schema = param["name"], param.get("schema", {})
                if param["in"] == "path" or name in HARMLESS or name in HARMLESS_HEADERS or name in ALWAYS:
                    continue
                if name in B_QUERY:
                    variants.append({name: B_QUERY[name]})
                elif "enum" in schema:
                    variants += [{name: str(v)} for v in schema["enum"]]
                elif schema.get("type") == "boolean":
                    variants += [{name: "true"}, {name: "false"}]
                else:
                    unknown.append(
                        f"query parameter {name!r} of {method} {path}: add it to B_QUERY or HARMLESS"
                    )
            walked.append((method, path, variants))
    stale = set(ROUTES) - {(m, p) for m, p, _ in walked}
    unknown += [f"ROUTES names {m} {p}, which the app no longer has" for m, p in sorted(stale)]
    assert not unknown, "the isolation walk does not know: " + "; ".join(unknown) + " (extend the tables)"
    return walked


def _path_variants(path: str) -> list[dict[str, str]]:
    """Whose id each path parameter takes ("b" or "a"): all B's, then each of B's with A's for the rest."""
    names = re.findall(r"{(\w+)", path)
    variants = [dict.fromkeys(names, "b")]
    if len(names) > 1:
        for name in names:
            if all(PATH_PARAMS[other][2] is not None for other in names if other != name):
                variants.append({other: "b" if other == name else "a" for other in names})
    return variants


def _fill(path: str, seed: Seed, whose: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        b, never, a = PATH_PARAMS[match[1]]
        chosen = {"b": lambda: b(seed), "never": lambda: never, "a": lambda: a(seed) if a else None}
        return str(chosen[whose[match[1]]]())

    return re.sub(r"{(\w+)[^}]*}", value, path)


def _code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None


async def _until_last(messages: Any, seed: Seed) -> bytes:
    """Feed messages up to the last alert of a station the feed carries: every earlier event is past then."""
    seen: list[bytes] = []

    async def read() -> None:
        async for text in messages:
            seen.append(text.encode() if isinstance(text, str) else text)
            if json.loads(text)["incident"]["alert_id"] in seed.stop_alerts:
                return
        raise AssertionError(f"the feed ended before the last alert: {seen}")

    await asyncio.wait_for(read(), 30)
    return b"\n".join(seen)


async def _sse_data(response: Any) -> Any:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield line[6:]


async def _call(
    center: RunningCenter,
    method: str,
    path: str,
    role: str,
    query: dict[str, str],
    seed: Seed,
    whose: dict[str, str],
) -> Answer:
    spec = ROUTES[(method, path)]
    url = _fill(path, seed, whose)
    query = {**(ALWAYS if spec.feed else {}), **query}
    role_args = ROLES[role]
    if method == "WS":
        token = auth(*role_args)["Authorization"].removeprefix("Bearer ")
        try:
            async with websockets.connect(center.ws_url(url, token=token, **query)) as ws:
                return Answer(200, None, await _until_last(ws, seed))
        except websockets.InvalidStatus as exc:  # refused in the handshake
            return Answer(exc.response.status_code, None, exc.response.body or b"")
    headers = auth(*role_args)
    body = spec.body(seed, role) if spec.body is not None else None
    content: dict[str, Any] = {}
    if isinstance(body, tuple):
        headers["Content-Type"], content["content"] = body
    elif body is not None:
        content["json"] = body
    async with center.client.stream(method, url, params=query, headers=headers, **content) as response:
        if spec.feed and response.status_code == 200:
            return Answer(200, None, await _until_last(_sse_data(response), seed))
        data = await response.aread()
        return Answer(response.status_code, _code(data), data)


def _check(answer: Answer, what: str, role: str, spec: Spec, seed: Seed) -> bool:
    """Check one answer; True when it shows station B's data (only entitled roles may get that)."""
    markers = seed.markers(station_too=spec.kind is not Kind.DIRECTORY)
    shows_b = answer.status < 300 and any(m in answer.body for m in markers)
    assert answer.status < 500, f"{what}: {answer.status} {answer.body[:300]!r}"
    if spec.kind is Kind.PLATFORM:
        assert (answer.status, answer.code) == (403, "metrics_token_required"), what
    elif role in spec.kind.entitled:
        if spec.write:
            assert answer.status not in (401, 403), f"{what}: refused {answer.body[:300]!r}"
        else:
            assert answer.status == 200, f"{what}: {answer.status} {answer.body[:300]!r}"
    elif spec.write:
        assert answer.status in (403, 404), f"{what}: an outsider's write got {answer.status}"
    else:
        assert answer.status in (200, 403, 404), f"{what}: {answer.status} {answer.body[:300]!r}"
        leaked = [m for m in markers if m in answer.body] if answer.status == 200 else []
        assert not leaked, f"{what} shows station B's {leaked}: {answer.body[:500]!r}"
    return shows_b


async def _walk(
    center: RunningCenter, seed: Seed, routes: list[tuple[str, str, list[dict[str, str]]]]
) -> None:
    for method, path, variants in routes:
        spec = ROUTES[(method, path)]
        for role in sorted(ROLES, key=lambda r: r in spec.kind.entitled):  # outsiders first: writes change B
            shown = False
            outsider = role not in spec.kind.entitled
            for whose in _path_variants(path)[: None if outsider else 1]:
                unknown = {name: "never" if w == "b" else w for name, w in whose.items()}
                for query in variants:
                    what = f"{role} {method} {path} {whose} {query}"
                    answer = await _call(center, method, path, role, query, seed, whose)
                    shown |= _check(answer, what, role, spec, seed)
                    if outsider and whose:  # B's id answers as an id that never existed does
                        never = await _call(center, method, path, role, query, seed, unknown)
                        assert (answer.status, answer.code) == (never.status, never.code), (
                            f"{what} tells B's id apart: {answer} / {never}"
                        )
            if (
                role in spec.kind.entitled
                and spec.kind in (Kind.INCIDENT_DATA, Kind.CAMERA_READ)
                and not spec.write
            ):
                assert shown, (
                    f"{role} {method} {path}: the entitled role never saw B's data (the seed is wrong)"
                )


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.fixture(scope="module")
def b_stream(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("isolation-clip")
    clip = loop_clip(make_clip(root / "scene.mp4", quiet_scene(seconds=2.0)), root / "loop.mp4", times=150)
    with RtspServer({"/b": clip}) as server:
        yield server.url("/b")


async def _seed(center: RunningCenter, redis_db: Any, rtsp_url: str, pc_offer: str) -> Seed:
    c, city, integrator = center.client, auth(*ROLES["city"]), auth(*ROLES["integrator"])
    for cam, point, url in ((B_CAMERA, XIADU_2, rtsp_url), (A_CAMERA, NANGUAN_1, "rtsp://127.0.0.1:1/a")):
        r = await c.post(
            "/api/v1/cameras", json={"id": cam, "url": url, "location": _point(point)}, headers=integrator
        )
        assert r.status_code == 201, r.text
    b_alerts = [make_alert(XIADU_2, camera_id=B_CAMERA, rule=f"rb{i}") for i in range(3)]
    for i, alert in enumerate(b_alerts):
        xadd(redis_db, alert, SNAPSHOT if i == 0 else None)

    async def stored(ids: set[str]) -> Any:
        items = (await c.get("/api/v1/incidents", params={"limit": 500}, headers=city)).json()["items"]
        return items if ids <= {i["alert_id"] for i in items} else None

    await poll(lambda: stored({a.id for a in b_alerts}))
    a_last = make_alert(NANGUAN_1, camera_id=A_CAMERA)
    xadd(redis_db, a_last)  # after B's are stored: the last event of all
    items = await poll(lambda: stored({a_last.id}))
    incident_id = next(i["id"] for i in items if i["alert_id"] == b_alerts[0].id)
    a_incident_id = next(i["id"] for i in items if i["alert_id"] == a_last.id)
    live = await c.post(
        f"/api/v1/cameras/{B_CAMERA}/live",
        json={"sdp": pc_offer, "type": "offer"},
        headers=auth(*ROLES["b_operator"]),
    )
    assert live.status_code == 200, live.text
    return Seed(
        incident_id=incident_id,
        a_incident_id=a_incident_id,
        session_id=live.json()["session_id"],
        offer=pc_offer,
        rtsp_url=rtsp_url,
        b_alerts=[a.id for a in b_alerts],
        stop_alerts={a_last.id, b_alerts[-1].id},
    )


async def test_no_route_shows_a_station_anything_of_another(
    center_factory, database_url, redis_db, b_stream
) -> None:
    center = await center_factory(database_url, live=LiveSettings(connect_timeout_s=300, open_timeout_s=20))
    routes = _route_table(center.app)
    pc, sdp = await _offer()
    try:
        seed = await _seed(center, redis_db, b_stream, sdp)
        reads = [r for r in routes if not ROUTES[r[:2]].write]
        await _walk(center, seed, reads)
        writes = sorted((r for r in routes if ROUTES[r[:2]].write), key=lambda r: ROUTES[r[:2]].write)
        await _walk(center, seed, writes)
    finally:
        await pc.close()
    # The platform's own scrape does see every station: that is what it is for (the gauge is refreshed by a
    # background task, hence the poll).

    async def scraped() -> bool:
        return f'station="{B_STATION}"' in (await center.client.get("/metrics", headers=SCRAPE)).text

    await poll(scraped)


def test_the_walk_fails_on_a_route_it_does_not_know(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'center.db'}"))
    _route_table(app)  # the app as it is: known

    @app.get("/api/v1/new-thing/{thing_id}")
    async def new_thing(thing_id: str, region: str | None = None) -> dict[str, str]:
        return {}

    with pytest.raises(AssertionError) as failed:
        _route_table(app)
    message = str(failed.value)
    for hint in ("GET /api/v1/new-thing/{thing_id}", "'thing_id'", "'region'", "extend the tables"):
        assert hint in message
