"""Camera registry: CRUD (credentials apart from the URL), automatic cells, bulk import, Redis publication."""

from __future__ import annotations

import pytest

from center_api.cameras.schemas import CameraPatch
from contracts import Camera, StreamHealth
from tests.center_api.conftest import NANGUAN_1, XIADU_2, auth, make_alert, poll, xadd

pytestmark = pytest.mark.integration
INT = auth("integrator", None, "vendor")


async def test_crud_and_redaction(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    c = center.client
    body = {
        "id": "cam-new",
        "name": "Gate",
        "url": "rtsp://admin:hunter2@10.1.1.1:554/ch1",
        "location": {"lat": XIADU_2[0], "lon": XIADU_2[1]},
    }
    r = await c.post("/api/v1/cameras", json=body, headers=INT)
    assert r.status_code == 201, r.text
    cam = r.json()
    assert cam["url"] == "rtsp://10.1.1.1:554/ch1" and "hunter2" not in r.text  # credentials kept apart
    assert cam["credentials"] == {"username": True, "password": True, "params": []}
    assert (cam["cell_id"], cam["station_id"], cam["cell_fixed"]) == ("c-xiadu-02", "st-xiadu", False)
    assert (await c.post("/api/v1/cameras", json=body, headers=INT)).status_code == 409
    # Published for the workers, with the credentials there.
    assert Camera.model_validate_json(redis_db.hget("gw:cameras", "cam-new")).stream_url() == body["url"]

    r = await c.patch("/api/v1/cameras/cam-new", json={"cell_id": "c-nanguan-03"}, headers=INT)
    assert r.status_code == 200 and r.json()["cell_fixed"] and r.json()["station_id"] == "st-nanguan"
    bad = await c.patch("/api/v1/cameras/cam-new", json={"cell_id": "c-nowhere"}, headers=INT)
    assert bad.status_code == 422
    # PATCH takes a camera's fields only; an id, if given, is the path's.
    r = await c.patch("/api/v1/cameras/cam-new", json={"id": "cam-new", "name": "Gate 2"}, headers=INT)
    assert (r.status_code, r.json()["name"]) == (200, "Gate 2")
    r = await c.patch("/api/v1/cameras/cam-new", json={"id": "cam-other"}, headers=INT)
    assert (r.status_code, r.json()["code"]) == (422, "id_mismatch")
    r = await c.patch("/api/v1/cameras/cam-new", json={"colour": "red"}, headers=INT)
    assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "colour"])

    # An alert from that camera now routes to its fixed cell, whatever its location says.
    xadd(redis_db, make_alert(XIADU_2, camera_id="cam-new"))

    async def routed():
        items = (
            await c.get("/api/v1/incidents", params={"camera": "cam-new"}, headers=auth("city_command", None))
        ).json()["items"]
        return items

    (item,) = await poll(routed)
    assert item["cell_id"] == "c-nanguan-03"

    health = StreamHealth(camera_id="cam-new", state="online", fps=25.0)
    redis_db.set("gw:health:cam-new", health.model_dump_json())
    got = (await c.get("/api/v1/cameras/cam-new", headers=auth())).json()
    assert got["health"]["state"] == "online"
    assert "hunter2" not in (await c.get("/api/v1/cameras", headers=INT)).text
    assert (await c.delete("/api/v1/cameras/cam-new", headers=INT)).status_code == 204
    assert (await c.get("/api/v1/cameras/cam-new", headers=INT)).status_code == 404
    assert redis_db.hget("gw:cameras", "cam-new") is None


async def test_config_cameras_are_imported(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    r = await center.client.get("/api/v1/cameras", headers=INT)
    assert [i["id"] for i in r.json()["items"]] == ["demo-cam-1"]
    assert redis_db.hexists("gw:cameras", "demo-cam-1")


async def test_bulk_import_csv_dry_run_and_errors(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    csv = (
        "id,name,url,site_type,lat,lon,cell_id\n"
        f"b-1,One,rtsp://10.0.0.1/a,key_unit,{NANGUAN_1[0]},{NANGUAN_1[1]},\n"
        f"b-2,Two,rtsp://10.0.0.2/a,key_area,{XIADU_2[0]},{XIADU_2[1]},\n"
        "b-3,Three,rtsp://10.0.0.3/a,palace,36.6,101.7,\n"
        "b-4,Four,rtsp://10.0.0.4/a,key_site,,,c-missing\n"
        "b-1,Dup,rtsp://10.0.0.5/a,key_site,,,\n"
        ",NoId,rtsp://10.0.0.6/a,key_site,,,\n"
    )
    headers = {**INT, "Content-Type": "text/csv"}
    dry = (
        await center.client.post(
            "/api/v1/cameras/import", params={"dry_run": "true"}, content=csv, headers=headers
        )
    ).json()
    assert dry["dry_run"] and dry["total"] == 6 and dry["valid"] == 2 and dry["created"] == 0
    assert [e["row"] for e in dry["errors"]] == [4, 5, 6, 7]  # lines of the file (the header is line 1)
    assert dry["cells"] == {"c-nanguan-01": 1, "c-xiadu-02": 1}
    assert (await center.client.get("/api/v1/cameras/b-1", headers=INT)).status_code == 404
    real = (await center.client.post("/api/v1/cameras/import", content=csv, headers=headers)).json()
    assert real["created"] == 2
    assert (await center.client.get("/api/v1/cameras/b-1", headers=INT)).json()["cell_id"] == "c-nanguan-01"


async def test_bulk_import_geojson(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [XIADU_2[1], XIADU_2[0]]},
            "properties": {"id": f"g-{i}", "url": f"rtsp://10.0.1.{i}/s"},
        }
        for i in range(50)
    ]
    r = await center.client.post(
        "/api/v1/cameras/import", json={"type": "FeatureCollection", "features": features}, headers=INT
    )
    assert r.json()["created"] == 50 and r.json()["errors"] == []
    page = (
        await center.client.get("/api/v1/cameras", params={"cell": "c-xiadu-02", "limit": 20}, headers=INT)
    ).json()
    assert len(page["items"]) == 20 and page["next_cursor"]


def test_camera_patch_has_every_camera_field_with_its_bounds() -> None:
    patch = CameraPatch.model_json_schema()["properties"]
    camera = Camera.model_json_schema()["properties"]
    assert set(patch) == set(camera)
    for name in ("id", "name", "url", "sample_fps", "rules", "cell_id"):
        expected = {k: v for k, v in camera[name].items() if k != "default"}
        assert patch[name] == expected, name
    assert CameraPatch.model_validate({}).model_dump(exclude_unset=True) == {}  # nothing given, nothing set


async def test_a_replica_that_lost_its_camera_subscription_loads_what_it_missed(
    center_factory, database_url, redis_db
) -> None:
    """A change announced while a replica's subscription is down (Redis restarted, a cut) goes unheard;
    the replica loads the registry again once it subscribes, so it routes by what it missed."""
    first = await center_factory(database_url)
    other = await center_factory(database_url)
    router = other.app.state.services.router  # type: ignore[attr-defined]
    assert "missed-cam" not in router.camera_ids()
    redis_db.client_kill_filter(_type="pubsub")  # both replicas lose their subscriptions for ~2 s
    body = {
        "id": "missed-cam",
        "url": "rtsp://10.1.1.9/ch1",
        "location": {"lat": XIADU_2[0], "lon": XIADU_2[1]},
    }
    created = await first.client.post("/api/v1/cameras", json=body, headers=INT)
    assert created.status_code == 201, created.text

    async def known() -> bool:
        return "missed-cam" in router.camera_ids()

    async def forgotten() -> bool:
        return not await known()

    await poll(known, within_s=30)
    redis_db.client_kill_filter(_type="pubsub")
    removed = await first.client.delete("/api/v1/cameras/missed-cam", headers=INT)
    assert removed.status_code == 204, removed.text
    await poll(forgotten, within_s=30)
