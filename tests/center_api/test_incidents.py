"""Incident workflow, folding, snapshots, history and queries through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from center_api.workflow import OPEN_STATUSES, TRANSITIONS, Status
from tests.center_api.conftest import NANGUAN_1, XIADU_2, auth, make_alert, poll, xadd

pytestmark = pytest.mark.integration

JPEG_A = b"\xff\xd8\xff\xe0" + b"A" * 100 + b"\xff\xd9"
JPEG_B = b"\xff\xd8\xff\xe0" + b"B" * 100 + b"\xff\xd9"
CITY = auth("city_command", None, "chief")


async def _list(center, headers=CITY, **params) -> dict:
    r = await center.client.get("/api/v1/incidents", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _wait_count(center, n: int, **params) -> list:
    async def ready():
        items = (await _list(center, **params))["items"]
        return items if len(items) >= n else None

    return await poll(ready)


async def test_repeats_fold_and_workflow(center_factory, any_database_url, redis_db) -> None:
    center = await center_factory(any_database_url)
    t0 = datetime.now(UTC) - timedelta(seconds=30)
    first = make_alert(NANGUAN_1, camera_id="cam-a", captured_at=t0)
    xadd(redis_db, first, JPEG_A)
    (item,) = await _wait_count(center, 1)
    for k in range(1, 4):
        xadd(
            redis_db,
            make_alert(NANGUAN_1, camera_id="cam-a", captured_at=t0 + timedelta(seconds=k)),
            JPEG_B if k == 3 else None,
        )
    xadd(redis_db, first)  # a replay of the same alert id: ignored

    async def folded():
        items = (await _list(center))["items"]
        return items if items and items[0]["count"] == 4 else None

    (item,) = await poll(folded)
    assert item["alert_id"] == first.id and item["last_seen"] > item["first_seen"]
    snap = await center.client.get(item["snapshot_url"], headers=auth())
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg" and snap.content == JPEG_B
    assert (
        await center.client.get(item["snapshot_url"], headers=auth(station="st-xiadu"))
    ).status_code == 404

    url = f"/api/v1/incidents/{item['id']}/transitions"
    bad = await center.client.post(url, json={"to": "resolved", "note": "skip"}, headers=auth())
    assert bad.status_code == 409
    other = await center.client.post(url, json={"to": "acknowledged"}, headers=auth(station="st-xiadu"))
    assert other.status_code == 404
    assert item["allowed_transitions"] == ["acknowledged"] and item["open"] is True
    for to in ("acknowledged", "dispatched", "resolved"):
        r = await center.client.post(url, json={"to": to, "note": f"going {to}"}, headers=auth(sub="alice"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == to
        # The body says what may come next, as the workflow's table does (the console enables buttons by it).
        assert set(r.json()["allowed_transitions"]) == TRANSITIONS[Status(to)]
        assert r.json()["open"] is (Status(to) in OPEN_STATUSES)
    again = await center.client.post(url, json={"to": "false_alarm"}, headers=auth())
    assert again.status_code == 409

    detail = (await center.client.get(f"/api/v1/incidents/{item['id']}", headers=auth())).json()
    moves = [
        (h["from_status"], h["to_status"], h["actor"], h["note"])
        for h in detail["history"]
        if h["event"] == "transition"
    ]
    assert moves == [
        ("new", "acknowledged", "alice", "going acknowledged"),
        ("acknowledged", "dispatched", "alice", "going dispatched"),
        ("dispatched", "resolved", "alice", "going resolved"),
    ]
    assert detail["history"][0]["event"] == "created"
    assert detail["time_to_acknowledge_s"] is not None and detail["time_to_resolve_s"] is not None

    # A closed incident does not absorb repeats: the next alert opens a new incident.
    xadd(redis_db, make_alert(NANGUAN_1, camera_id="cam-a"))
    items = await _wait_count(center, 2)
    assert items[0]["status"] == "new" and items[0]["count"] == 1


async def test_filters_and_pagination(center_factory, any_database_url, redis_db) -> None:
    center = await center_factory(any_database_url)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in range(7):
        xadd(
            redis_db,
            make_alert(
                NANGUAN_1,
                camera_id=f"cam-{i}",
                captured_at=t0 + timedelta(minutes=i),
                severity=1 if i < 2 else 3,
            ),
        )
    for i in range(3):
        xadd(redis_db, make_alert(XIADU_2, camera_id=f"camx-{i}", kind="loitering", captured_at=t0))
    await _wait_count(center, 10, limit=100)

    assert len((await _list(center, community="c-nanguan"))["items"]) == 7
    assert len((await _list(center, street="s-renmin"))["items"]) == 10
    assert len((await _list(center, district="d-chengzhong"))["items"]) == 10
    assert len((await _list(center, station="st-xiadu"))["items"]) == 3
    assert len((await _list(center, kind="loitering"))["items"]) == 3
    assert len((await _list(center, severity=1))["items"]) == 2
    assert len((await _list(center, camera="cam-3"))["items"]) == 1
    assert len((await _list(center, status="new"))["items"]) == 10
    window = {
        "since": (t0 + timedelta(minutes=4, seconds=30)).isoformat(),
        "until": (t0 + timedelta(minutes=6, seconds=30)).isoformat(),
    }
    assert {i["camera_id"] for i in (await _list(center, community="c-nanguan", **window))["items"]} == {
        "cam-5",
        "cam-6",
    }

    seen, cursor = [], None
    while True:
        page = await _list(center, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 10
    r = await center.client.get("/api/v1/incidents", params={"cursor": "garbage!"}, headers=CITY)
    assert r.status_code == 400

    stats = (await center.client.get("/api/v1/stats", params={"by": "community"}, headers=CITY)).json()
    assert {c["unit"]: c["total"] for c in stats["counts"]} == {"c-nanguan": 7, "c-xiadu": 3}
    assert stats["open_by_station"] == {"st-nanguan": 7, "st-xiadu": 3}
    cells = (await center.client.get("/api/v1/grid/cells", headers=CITY)).json()
    assert {f["id"]: f["properties"]["count"] for f in cells["features"]}["c-nanguan-01"] == 7
    mine = (await center.client.get("/api/v1/grid/cells", headers=auth())).json()
    assert {f["properties"]["station_id"] for f in mine["features"]} == {"st-nanguan"}


async def test_escalation(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url, ack_sla_s={1: 0.5, 2: 3600}, escalate_every_s=0.2)
    xadd(redis_db, make_alert(NANGUAN_1, camera_id="cam-urgent", severity=1))
    xadd(redis_db, make_alert(NANGUAN_1, camera_id="cam-calm", severity=2))

    async def escalated():
        items = (await _list(center))["items"]
        return [i for i in items if i["escalated"]] if len(items) == 2 else None

    (item,) = await poll(escalated)
    assert item["camera_id"] == "cam-urgent"
    detail = (await center.client.get(f"/api/v1/incidents/{item['id']}", headers=CITY)).json()
    assert [h["event"] for h in detail["history"]] == ["created", "escalated"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/incidents", {"since": "1700000000"}, 422),  # a bare number is not a date-time
        ("/api/v1/incidents", {"until": "-5.5"}, 422),
        ("/api/v1/incidents", {"severity": "9"}, 422),
        ("/api/v1/incidents", {"status": "open"}, 422),
        (
            "/api/v1/incidents",
            {"cursor": "aTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ"},
            400,
        ),  # i + 21 digits: past 64 bits
        ("/api/v1/incidents", {"cursor": "aS0x"}, 400),  # "i-1"
        ("/api/v1/incidents/99999999999999999999", {}, 422),
        ("/api/v1/incidents/0", {}, 422),
        ("/api/v1/incidents/9223372036854775807", {}, 404),  # the largest id is a valid id, just absent
    ],
)
async def test_out_of_range_input_is_refused_not_a_server_error(
    center_factory, database_url, redis_db, path: str, params: dict[str, str], status: int
) -> None:
    center = await center_factory(database_url)
    r = await center.client.get(path, params=params, headers=auth("city_command", None))
    assert r.status_code == status, r.text
    body = r.json()
    if status == 422:
        assert isinstance(body["detail"], list)  # FastAPI's validation array, as the document says
    else:
        assert body["code"] in {"bad_cursor", "incident_not_found"}


async def test_iso_times_in_any_offset_filter_alike(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    alert = make_alert(NANGUAN_1, captured_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    xadd(redis_db, alert)
    city = auth("city_command", None)

    async def stored():
        r = await center.client.get("/api/v1/incidents", headers=city)
        return r.json()["items"]

    await poll(stored)
    for since in ("2026-03-01T11:59:00Z", "2026-03-01T19:59:00+08:00", "2026-03-01T11:59:00"):
        r = await center.client.get("/api/v1/incidents", params={"since": since}, headers=city)
        assert [i["alert_id"] for i in r.json()["items"]] == [alert.id], since
    r = await center.client.get(
        "/api/v1/incidents", params={"since": "2026-03-01T20:01:00+08:00"}, headers=city
    )
    assert r.json()["items"] == []
