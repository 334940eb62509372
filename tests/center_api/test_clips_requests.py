"""On-demand clips: an operator saves the last N seconds of a camera. The request reaches the workers on the
Redis stream, opens an incident of its own or joins one, with an audit entry; scope and bounds hold."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import CLIP_REQUESTS_STREAM, decode_clip_request
from tests.center_api.conftest import (
    NANGUAN_1,
    WORKER,
    XIADU_2,
    auth,
    clip_meta,
    make_alert,
    put_clip,
    xadd,
)
from tests.center_api.test_clips import _stored

pytestmark = pytest.mark.integration

INTEGRATOR = auth("integrator", None, "vendor")
CITY = auth("city_command", None, "chief")


async def _camera(center: Any, camera_id: str, point: tuple[float, float]) -> None:
    r = await center.client.post(
        "/api/v1/cameras",
        json={"id": camera_id, "url": "rtsp://127.0.0.1:1/x", "location": {"lat": point[0], "lon": point[1]}},
        headers=INTEGRATOR,
    )
    assert r.status_code == 201, r.text


def _requests(redis_db: Any) -> list[Any]:
    return [decode_clip_request(fields) for _, fields in redis_db.xrange(CLIP_REQUESTS_STREAM)]


async def test_a_request_opens_an_incident_and_reaches_the_workers(
    center_factory, any_database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(any_database_url)
    c = center.client
    await _camera(center, "cam-live", NANGUAN_1)
    r = await c.post(
        "/api/v1/cameras/cam-live/clips",
        json={"seconds": 8, "note": "man at the gate"},
        headers=auth(sub="alice"),
    )
    assert r.status_code == 202, r.text
    request_id, incident_id = r.json()["request_id"], r.json()["incident_id"]
    (sent,) = _requests(redis_db)
    assert (sent.request_id, sent.camera_id, sent.seconds, sent.requested_by) == (
        request_id,
        "cam-live",
        8,
        "alice",
    )
    item = (await c.get(f"/api/v1/incidents/{incident_id}", headers=auth())).json()
    assert (item["kind"], item["severity"], item["alert_id"], item["camera_id"]) == (
        "operator_clip",
        4,
        request_id,
        "cam-live",
    )
    assert (item["station_id"], item["cell_id"]) == ("st-nanguan", "c-nanguan-01")
    assert item["clip_state"] == "pending"
    audit = [(e["event"], e["actor"], e["note"]) for e in item["history"]]
    assert audit == [("created", None, None), ("clip_requested", "alice", "man at the gate")]
    # A second request is an incident of its own.
    again = await c.post("/api/v1/cameras/cam-live/clips", json={"seconds": 2}, headers=auth())
    assert again.json()["incident_id"] != incident_id
    # The worker's clip carries the request id: the incident has it.
    r = await put_clip(
        c, clip_mp4, clip_meta(clip_mp4, [request_id], camera_id="cam-live", offsets=[8.0], duration_s=10.0)
    )
    assert (r.status_code, r.json()["incidents"]) == (201, [incident_id])
    item = (await c.get(f"/api/v1/incidents/{incident_id}", headers=auth())).json()
    assert item["clip_state"] == "present"
    (clip,) = (await c.get(item["clips_url"], headers=auth())).json()
    assert clip["alert_offsets_s"] == [8.0]


async def test_a_request_joins_an_existing_incident(center_factory, database_url, redis_db, clip_mp4) -> None:
    center = await center_factory(database_url)
    c = center.client
    await _camera(center, "cam-live", NANGUAN_1)
    alert = make_alert(NANGUAN_1, camera_id="cam-live")  # no clip expected of the alert itself
    xadd(redis_db, alert)
    item = await _stored(center, alert.id)
    assert item["clip_state"] is None
    r = await c.post(
        "/api/v1/cameras/cam-live/clips",
        json={"seconds": 10, "incident_id": item["id"], "note": "for the file"},
        headers=auth("station_admin", sub="sam"),
    )
    assert (r.status_code, r.json()["incident_id"]) == (202, item["id"]), r.text
    request_id = r.json()["request_id"]
    assert [q.request_id for q in _requests(redis_db)] == [request_id]
    detail = (await c.get(f"/api/v1/incidents/{item['id']}", headers=auth())).json()
    assert detail["clip_state"] == "pending" and detail["count"] == 1
    assert (detail["history"][-1]["event"], detail["history"][-1]["actor"]) == ("clip_requested", "sam")
    await put_clip(c, clip_mp4, clip_meta(clip_mp4, [request_id], camera_id="cam-live"))
    await _stored(center, alert.id, clip_state="present")


@pytest.mark.parametrize(
    ("camera", "body", "headers", "status", "code"),
    [
        ("cam-b", {"seconds": 5}, auth(), 404, "camera_not_found"),  # another station's camera
        ("cam-nobody", {"seconds": 5}, auth(), 404, "camera_not_found"),  # looks the same as none
        ("cam-a", {"seconds": 5, "incident_id": "B"}, auth(), 404, "incident_not_found"),  # B's incident
        ("cam-a", {"seconds": 5, "incident_id": 999_999}, auth(), 404, "incident_not_found"),
        ("cam-a", {"seconds": 5, "incident_id": 2**64}, auth(), 404, "incident_not_found"),  # past 64 bits
        ("cam-a", {"seconds": 10.5}, auth(), 422, "clip_seconds_over_preroll"),
        ("cam-a", {"seconds": 0.5}, auth(), 422, None),
        ("cam-a", {"seconds": 5, "extra": 1}, auth(), 422, None),
        ("cam-a", {"seconds": 5}, WORKER, 403, "role_not_allowed"),
        ("cam-a", {"seconds": 5}, INTEGRATOR, 403, "role_not_allowed"),
        ("cam-b", {"seconds": 5}, CITY, 202, None),
    ],
)
async def test_requests_are_scoped_and_bounded(
    center_factory,
    database_url,
    redis_db,
    camera: str,
    body: dict,
    headers: dict,
    status: int,
    code: str | None,
) -> None:
    center = await center_factory(database_url)
    await _camera(center, "cam-a", NANGUAN_1)
    await _camera(center, "cam-b", XIADU_2)
    if body.get("incident_id") == "B":
        alert = make_alert(XIADU_2, camera_id="cam-b")
        xadd(redis_db, alert)
        body = {**body, "incident_id": (await _stored(center, alert.id))["id"]}
    r = await center.client.post(f"/api/v1/cameras/{camera}/clips", json=body, headers=headers)
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["code"] == code
    if status != 202:
        assert _requests(redis_db) == []  # nothing reached the workers
