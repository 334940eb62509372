"""Feeds: SSE with Last-Event-ID resume, slow clients dropped, city-wide feed, scoping."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.center_api.conftest import NANGUAN_1, XIADU_2, auth, make_alert, poll, token, xadd

pytestmark = pytest.mark.integration


async def _sse_events(
    client: httpx.AsyncClient, headers: dict, n: int, within_s: float = 60
) -> list[tuple[int, dict]]:
    out: list[tuple[int, dict]] = []

    async def read() -> None:
        async with client.stream("GET", "/api/v1/feed/sse", headers=headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event_id = None
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    out.append((event_id, json.loads(line[6:])))
                    if len(out) >= n:
                        return

    await asyncio.wait_for(read(), timeout=within_s)
    return out


async def test_sse_resumes_from_last_event_id(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    headers = auth()
    reader = asyncio.create_task(_sse_events(center.client, headers, 1))
    await asyncio.sleep(0.5)
    first = make_alert(NANGUAN_1, camera_id="cam-1")
    xadd(redis_db, first)
    [(first_id, msg)] = await reader
    assert msg["incident"]["alert_id"] == first.id

    # While disconnected: two more Nanguan incidents and one for Xiadu (not ours).
    later = [make_alert(NANGUAN_1, camera_id=f"cam-{i}") for i in (2, 3)]
    for alert in later:
        xadd(redis_db, alert)
    xadd(redis_db, make_alert(XIADU_2, camera_id="cam-x"))

    async def stored():
        r = await center.client.get("/api/v1/incidents", headers=auth("city_command", None))
        return len(r.json()["items"]) == 4

    await poll(stored)
    events = await _sse_events(center.client, {**headers, "Last-Event-ID": str(first_id)}, 2)
    assert [m["incident"]["alert_id"] for _, m in events] == [a.id for a in later]
    assert all(eid > first_id for eid, _ in events)


async def test_city_command_feed_sees_every_station(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    async with websockets.connect(center.ws_url(token=token("city_command", None, "chief"))) as ws:
        await asyncio.sleep(0.3)
        xadd(redis_db, make_alert(NANGUAN_1, camera_id="a"))
        xadd(redis_db, make_alert(XIADU_2, camera_id="b"))
        got = {json.loads(await asyncio.wait_for(ws.recv(), 60))["incident"]["station_id"] for _ in range(2)}
    assert got == {"st-nanguan", "st-xiadu"}


async def test_slow_client_is_dropped(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url, feed_queue_size=2)
    state = center.app.state.center
    client = state.hub.connect("st-nanguan", "test")  # never reads: the slowest client there is
    for i in range(5):
        xadd(redis_db, make_alert(NANGUAN_1, camera_id=f"cam-{i}"))

    async def dropped():
        return client.dropped

    await poll(dropped)
    assert client.queue.qsize() == 1  # only the DROPPED marker: the backlog was freed
    assert state.hub.clients == 0


async def test_operator_cannot_watch_another_station(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    r = await center.client.get("/api/v1/feed/sse", params={"station": "st-xiadu"}, headers=auth())
    assert r.status_code == 403
    # Refused during the handshake (closed before accept): HTTP 403.
    for url in (
        center.ws_url(token=token(), station="st-xiadu"),
        center.ws_url(token=token("integrator", None, "int")),
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url):
                pass
        assert info.value.response.status_code == 403
