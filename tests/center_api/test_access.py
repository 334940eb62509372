"""Access control: a station-A token gets 404/403 or nothing for station B, on every endpoint and the feed;
integrators manage cameras only; only health is open."""

from __future__ import annotations

import pytest

from tests.center_api.conftest import NANGUAN_1, SCRAPE, XIADU_2, auth, make_alert, poll, xadd

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 64 + b"\xff\xd9"


async def test_station_scope_on_every_endpoint(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    b_alert = make_alert(XIADU_2, camera_id="cam-b")
    xadd(redis_db, b_alert, JPEG)
    xadd(redis_db, make_alert(NANGUAN_1, camera_id="cam-a"))
    city = auth("city_command", None, "chief")

    async def both():
        items = (await center.client.get("/api/v1/incidents", headers=city)).json()["items"]
        return items if len(items) == 2 else None

    items = await poll(both)
    b_id = next(i["id"] for i in items if i["alert_id"] == b_alert.id)
    a_tok = auth()  # operator of st-nanguan
    c = center.client
    listed = (await c.get("/api/v1/incidents", headers=a_tok)).json()["items"]
    assert [i["station_id"] for i in listed] == ["st-nanguan"]
    assert (await c.get("/api/v1/incidents", params={"station": "st-xiadu"}, headers=a_tok)).json()[
        "items"
    ] == []
    assert (await c.get(f"/api/v1/incidents/{b_id}", headers=a_tok)).status_code == 404
    assert (await c.get(f"/api/v1/incidents/{b_id}/snapshot", headers=a_tok)).status_code == 404
    r = await c.post(f"/api/v1/incidents/{b_id}/transitions", json={"to": "acknowledged"}, headers=a_tok)
    assert r.status_code == 404
    stats = (await c.get("/api/v1/stats", headers=a_tok)).json()
    assert set(stats["open_by_station"]) == {"st-nanguan"}
    cells = (await c.get("/api/v1/grid/cells", headers=a_tok)).json()
    assert {f["properties"]["station_id"] for f in cells["features"]} == {"st-nanguan"}
    assert (await c.get("/api/v1/cameras", params={"station": "st-xiadu"}, headers=a_tok)).status_code == 403
    # The owner and the city command may.
    assert (
        await c.get(f"/api/v1/incidents/{b_id}/snapshot", headers=auth(station="st-xiadu"))
    ).content == JPEG
    assert (await c.get(f"/api/v1/incidents/{b_id}", headers=city)).status_code == 200


async def test_roles(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    c = center.client
    integrator = auth("integrator", None, "vendor")
    assert (await c.get("/api/v1/incidents", headers=integrator)).status_code == 403
    assert (await c.get("/api/v1/stats", headers=integrator)).status_code == 403
    assert (await c.get("/api/v1/cameras", headers=integrator)).status_code == 200
    camera = {
        "id": "op-cam",
        "url": "rtsp://u:p@10.0.0.1/s",
        "location": {"lat": NANGUAN_1[0], "lon": NANGUAN_1[1]},
    }
    assert (await c.post("/api/v1/cameras", json=camera, headers=auth())).status_code == 403
    me = (await c.get("/api/v1/me", headers=auth())).json()
    assert me == {
        "subject": "alice",
        "role": "operator",
        "station_id": "st-nanguan",
        "station_name": "Nanguan Police Station",
        "city_command_id": "city",
    }
    for path in (
        "/api/v1/me",
        "/api/v1/stations",
        "/api/v1/cameras",
        "/api/v1/grid/cells",
        "/api/v1/stats",
        "/metrics",
        "/api/v1/feed/sse",
    ):
        assert (await c.get(path)).status_code == 401, path
    assert (await c.get("/api/v1/health")).status_code == 200
    metrics = await c.get("/metrics", headers=SCRAPE)
    assert "gridwatch_center_alerts_consumed_total" in metrics.text
    assert (await c.get("/metrics", headers=auth())).status_code == 403  # a user token is no scrape token


async def test_openapi_describes_the_bearer_scheme(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    r = await center.client.get("/openapi.json")
    assert r.status_code == 200, r.text[:500]
    doc = r.json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in doc["paths"]["/api/v1/incidents"]["get"]["security"]
