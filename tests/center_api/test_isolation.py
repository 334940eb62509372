"""Station isolation by construction: every route of the app, called by every role against station B's ids.

The walk reads `app.routes` (and the OpenAPI document for query parameters), so a new route is covered
without anyone remembering it: a route, path parameter or query parameter the tables of
`tests/center_api/isolation_routes.py` do not know fails the test with what to add. Data of both stations
goes in through the real consumer (xadd to a running center); station B gets incidents with a snapshot, a
camera and a live-view session on a real RTSP stream.

A role not entitled to B's data on a route gets 403 or 404, and the same status and code as for an id
that never existed; a list or feed it may read names nothing of B (station, cells, camera, alerts, session,
snapshot bytes). Entitled roles do see B there: the ids are real, so every check above can fail.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection

from center_api.app import create_app
from center_api.live.settings import LiveSettings
from gridwatch.demo.clips import loop_clip, make_clip, quiet_scene
from tests.center_api.conftest import (
    METRICS_TOKEN,
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
from tests.center_api.isolation_routes import (
    A_CAMERA,
    ALWAYS,
    B_CAMERA,
    B_STATION,
    ROLES,
    ROUTES,
    SNAPSHOT,
    Kind,
    Seed,
    Spec,
    fill,
    path_variants,
    point,
    route_table,
    seed_clip,
)
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration


@dataclass
class Answer:
    status: int
    code: str | None
    body: bytes


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
    url = fill(path, seed, whose)
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
            for whose in path_variants(path)[: None if outsider else 1]:
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
    for cam, where, url in ((B_CAMERA, XIADU_2, rtsp_url), (A_CAMERA, NANGUAN_1, "rtsp://127.0.0.1:1/a")):
        r = await c.post(
            "/api/v1/cameras", json={"id": cam, "url": url, "location": point(where)}, headers=integrator
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
        clip_id=await seed_clip(c, b_alerts[0].id),
    )


async def test_no_route_shows_a_station_anything_of_another(
    center_factory, database_url, redis_db, b_stream
) -> None:
    center = await center_factory(database_url, live=LiveSettings(connect_timeout_s=300, open_timeout_s=20))
    routes = route_table(center.app)
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
    route_table(app)  # the app as it is: known

    @app.get("/api/v1/new-thing/{thing_id}")
    async def new_thing(thing_id: str, region: str | None = None) -> dict[str, str]:
        return {}

    with pytest.raises(AssertionError) as failed:
        route_table(app)
    message = str(failed.value)
    for hint in ("GET /api/v1/new-thing/{thing_id}", "'thing_id'", "'region'", "extend the tables"):
        assert hint in message


# -- /metrics: the platform's scrape token, nothing else --------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "headers", "status", "code"),
    [
        (None, SCRAPE, 404, "metrics_disabled"),  # off until a scrape token is chosen
        (None, {}, 404, "metrics_disabled"),
        (METRICS_TOKEN, {}, 401, "missing_token"),
        (METRICS_TOKEN, {"Authorization": "Bearer wrong-scrape-token"}, 401, "invalid_token"),
        (METRICS_TOKEN, {"Authorization": f"Bearer {METRICS_TOKEN}x"}, 401, "invalid_token"),
        (METRICS_TOKEN, {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"}, 401, "invalid_token"),
        (METRICS_TOKEN, auth(*ROLES["city"]), 403, "metrics_token_required"),  # even the city command's
        (METRICS_TOKEN, auth(*ROLES["a_operator"]), 403, "metrics_token_required"),
        (METRICS_TOKEN, SCRAPE, 503, "not_started"),  # accepted: the metrics come once the center runs
    ],
)
async def test_metrics_take_only_the_scrape_token(
    tmp_path: Path, configured: str | None, headers: dict[str, str], status: int, code: str
) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", metrics_token=configured)
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: the services are never built
    async with httpx.AsyncClient(transport=transport, base_url="http://center") as client:
        response = await client.get("/metrics", headers=headers)
    assert (response.status_code, response.json()["code"]) == (status, code)
