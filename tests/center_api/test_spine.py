"""The spine end to end: XADD an alert -> incident in the API in the right cell and station, on that
station's WebSocket feed and not on the other station's."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from center_api.schemas import IncidentPublic
from tests.center_api.conftest import NANGUAN_1, XIADU_2, auth, make_alert, poll, token, xadd

pytestmark = pytest.mark.integration


async def _next_incident(ws: websockets.ClientConnection, within_s: float = 60) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=within_s))


async def test_alert_becomes_incident_on_right_station_feed(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    health = await center.client.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"

    async with (
        websockets.connect(
            center.ws_url(), additional_headers={"Authorization": f"Bearer {token()}"}
        ) as nanguan,
        websockets.connect(center.ws_url(token=token(station="st-xiadu", sub="bob"))) as xiadu,
    ):
        await asyncio.sleep(0.2)  # the server registers the feed clients after accepting
        alert = make_alert(NANGUAN_1, camera_id="cam-n1")
        xadd(redis_db, alert)

        msg = await _next_incident(nanguan)
        assert msg["type"] == "incident" and msg["event"] == "created"
        assert msg["incident"]["alert_id"] == alert.id
        assert msg["incident"]["cell_id"] == "c-nanguan-01"
        assert msg["incident"]["station_id"] == "st-nanguan"

        # A marker alert for Xiadu: the Xiadu feed must see it first, never the Nanguan incident.
        marker = make_alert(XIADU_2, camera_id="cam-x2")
        xadd(redis_db, marker)
        got = await _next_incident(xiadu)
        assert got["incident"]["alert_id"] == marker.id
        assert got["incident"]["station_id"] == "st-xiadu"

    async def listed() -> list:
        r = await center.client.get("/api/v1/incidents", headers=auth())
        assert r.status_code == 200
        return r.json()["items"]

    items = await poll(listed)
    assert [i["alert_id"] for i in items] == [alert.id]  # the operator sees only its station
    item = items[0]
    assert set(item) == set(IncidentPublic.model_fields)  # every field of the public model, nothing else
    assert (item["community_id"], item["street_id"], item["district_id"]) == (
        "c-nanguan",
        "s-renmin",
        "d-chengzhong",
    )
    city = await center.client.get("/api/v1/incidents", headers=auth("city_command", None))
    assert {i["alert_id"] for i in city.json()["items"]} == {alert.id, marker.id}
    by_cell = await center.client.get(
        "/api/v1/incidents", params={"cell": "c-xiadu-02"}, headers=auth("city_command", None)
    )
    assert [i["alert_id"] for i in by_cell.json()["items"]] == [marker.id]

    async def acked() -> bool:
        return not redis_db.xpending("gw:alerts", "center")["pending"]

    await poll(acked)


async def test_outside_every_cell_goes_to_city_command(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    far = make_alert((36.9, 101.2), camera_id="cam-far")
    xadd(redis_db, far)

    async def listed() -> list:
        r = await center.client.get("/api/v1/incidents", headers=auth("city_command", None))
        return r.json()["items"]

    (item,) = await poll(listed)
    assert item["cell_id"] == "unassigned" and item["station_id"] == "city"
    r = await center.client.get("/api/v1/incidents", headers=auth())
    assert r.json()["items"] == []


async def test_requests_need_a_token(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    assert (await center.client.get("/api/v1/incidents")).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (await center.client.get("/api/v1/incidents", headers=bad)).status_code == 401
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(center.ws_url()):
            pass
