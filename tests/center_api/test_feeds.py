"""Feeds: SSE and WebSocket resume, local delivery without echo, two replicas, malformed messages ignored,
slow clients dropped, city-wide feed, scoping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import httpx
import pytest
import redis
import websockets

from center_api.feeds import FeedEnvelope
from center_api.schemas import FeedEventType, FeedMessage
from center_api.services import CenterServices
from contracts import Alert
from contracts.bus import channel_db, feed_channel
from tests.center_api.conftest import (
    NANGUAN_1,
    XIADU_2,
    RunningCenter,
    auth,
    make_alert,
    make_settings,
    poll,
    start_center,
    stop_center,
    token,
    xadd,
)

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


async def _missed_while_away(center: RunningCenter, redis_db: redis.Redis) -> list[Alert]:
    """While a Nanguan client is disconnected: two more Nanguan incidents and one for Xiadu (not ours).
    Returns the two Nanguan alerts once all four incidents (the client's first one included) are stored."""
    missed = [make_alert(NANGUAN_1, camera_id=f"cam-{i}") for i in (2, 3)]
    for alert in missed:
        xadd(redis_db, alert)
    xadd(redis_db, make_alert(XIADU_2, camera_id="cam-x"))

    async def stored():
        r = await center.client.get("/api/v1/incidents", headers=auth("city_command", None))
        return len(r.json()["items"]) == 4

    await poll(stored)
    return missed


async def test_sse_resumes_from_last_event_id(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    headers = auth()
    reader = asyncio.create_task(_sse_events(center.client, headers, 1))
    await asyncio.sleep(0.5)
    first = make_alert(NANGUAN_1, camera_id="cam-1")
    xadd(redis_db, first)
    [(first_id, msg)] = await reader
    assert msg["incident"]["alert_id"] == first.id

    later = await _missed_while_away(center, redis_db)
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
    state = _services(center)
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


# ---- one entry point: local delivery, one PUBLISH per event for the other replicas, no echo ----------------


def _services(center: RunningCenter) -> CenterServices:
    return center.app.state.services  # type: ignore[attr-defined, no-any-return]


def _received(center: RunningCenter, outcome: str) -> float:
    """`gridwatch_center_feed_received_total{outcome}`: messages this replica read from the feed channels."""
    registry = _services(center).metrics.registry
    return registry.get_sample_value("gridwatch_center_feed_received_total", {"outcome": outcome}) or 0.0


async def _recv(ws: websockets.ClientConnection, within_s: float = 60) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), within_s))


async def _clients(center: RunningCenter, n: int) -> None:
    async def connected():
        return _services(center).hub.clients == n

    await poll(connected)


async def _acknowledge(center: RunningCenter, incident_id: int) -> None:
    r = await center.client.post(
        f"/api/v1/incidents/{incident_id}/transitions", json={"to": "acknowledged"}, headers=auth()
    )
    assert r.status_code == 200, r.text


async def test_own_events_reach_local_clients_directly_and_are_published_once(
    center_factory, database_url, redis_db
) -> None:
    center = await center_factory(database_url)
    hub = _services(center).hub
    spy = _services(center).redis.pubsub()  # what the other replicas would hear
    await spy.psubscribe(feed_channel("*", channel_db(redis_db)))
    heard: list[FeedEnvelope] = []

    async def listen() -> None:
        async for message in spy.listen():
            if message["type"] == "pmessage":
                heard.append(FeedEnvelope.model_validate_json(message["data"]))

    listener = asyncio.create_task(listen())
    try:
        async with websockets.connect(center.ws_url(token=token())) as ws:
            await _clients(center, 1)
            alerts = [make_alert(NANGUAN_1, camera_id=f"cam-{i}") for i in range(3)]
            for alert in alerts:
                xadd(redis_db, alert)
            got = [await _recv(ws) for _ in alerts]
            assert [m["incident"]["alert_id"] for m in got] == [a.id for a in alerts]
            assert all(FeedMessage.model_validate(m).event is FeedEventType.created for m in got)

            async def echoes_ignored():
                return _received(center, "own") == 3 and len(heard) == 3

            await poll(echoes_ignored)
            # Exactly one PUBLISH per event, sent by this replica, carrying the text its clients got.
            assert sorted(FeedMessage.model_validate_json(e.message).event_id for e in heard) == sorted(
                m["event_id"] for m in got
            )
            assert {e.origin for e in heard} == {hub.replica}
            assert _received(center, "delivered") == 0  # nothing came back through Redis to our clients
            # The echoes are all handled: a duplicate would now sit before the next event. It does not.
            await _acknowledge(center, got[0]["incident"]["id"])
            nxt = await _recv(ws)
            assert (nxt["event"], nxt["incident"]["status"]) == ("transition", "acknowledged")
            assert nxt["event_id"] > max(m["event_id"] for m in got)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await spy.aclose()


async def test_two_replicas_each_deliver_every_event_once(
    center_factory, pg_database_url, redis_db, tmp_path
) -> None:
    replica_a = await center_factory(pg_database_url)
    settings_b = make_settings(tmp_path, pg_database_url).model_copy(update={"consumer_name": "replica-b"})
    server_b, task_b, replica_b = await start_center(settings_b)
    try:
        chief = token("city_command", None, "chief")
        async with (
            websockets.connect(replica_a.ws_url(token=token())) as ws_a,
            websockets.connect(replica_b.ws_url(token=chief)) as ws_b,
        ):
            await _clients(replica_a, 1)
            await _clients(replica_b, 1)
            for i in range(2):  # stored by whichever replica reads the entry from the group
                xadd(redis_db, make_alert(NANGUAN_1, camera_id=f"cam-{i}"))
            created = [await _recv(ws_a) for _ in range(2)]
            incidents = [m["incident"]["id"] for m in created]
            await _acknowledge(replica_a, incidents[0])  # published by A
            await _acknowledge(replica_b, incidents[1])  # published by B
            got_a = created + [await _recv(ws_a) for _ in range(2)]
            got_b = [await _recv(ws_b) for _ in range(4)]
            ids = {m["event_id"] for m in got_a}
            assert len(ids) == 4 and {m["event_id"] for m in got_b} == ids

            async def relayed():  # every event crossed once each way it had to, no replica heard itself twice
                own = _received(replica_a, "own") + _received(replica_b, "own")
                delivered = _received(replica_a, "delivered") + _received(replica_b, "delivered")
                return own == 4 and delivered == 4

            await poll(relayed)
            assert _services(replica_a).hub.replica != _services(replica_b).hub.replica
            # Nothing is left over: the next message on both is a new event, not a second copy.
            r = await replica_a.client.post(
                f"/api/v1/incidents/{incidents[0]}/transitions", json={"to": "resolved"}, headers=auth()
            )
            assert r.status_code == 200, r.text
            last_a, last_b = await _recv(ws_a), await _recv(ws_b)
            assert last_a["event_id"] == last_b["event_id"] and last_a["event_id"] not in ids
            assert last_a["incident"]["status"] == "resolved"
    finally:
        await stop_center(server_b, task_b, replica_b)


@pytest.mark.parametrize("resume_by", ["after", "Last-Event-ID"])
async def test_websocket_resumes_from_an_event_id(center_factory, database_url, redis_db, resume_by) -> None:
    center = await center_factory(database_url)
    async with websockets.connect(center.ws_url(token=token())) as ws:
        await _clients(center, 1)
        first = make_alert(NANGUAN_1, camera_id="cam-1")
        xadd(redis_db, first)
        msg = await _recv(ws)
        assert msg["incident"]["alert_id"] == first.id
        first_id = msg["event_id"]

    missed = await _missed_while_away(center, redis_db)
    if resume_by == "after":
        connect = websockets.connect(center.ws_url(token=token(), after=str(first_id)))
    else:
        connect = websockets.connect(
            center.ws_url(token=token()), additional_headers={"Last-Event-ID": str(first_id)}
        )
    async with connect as ws:
        replayed = [await _recv(ws) for _ in missed]
        assert [m["incident"]["alert_id"] for m in replayed] == [a.id for a in missed]
        live = make_alert(NANGUAN_1, camera_id="cam-4")
        xadd(redis_db, live)
        after_replay = await _recv(ws)  # the live one next: no Xiadu event, no replayed event twice
        assert after_replay["incident"]["alert_id"] == live.id
    event_ids = [first_id] + [m["event_id"] for m in [*replayed, after_replay]]
    assert event_ids == sorted(set(event_ids))


async def test_websocket_refuses_a_bad_resume_point(center_factory, database_url) -> None:
    center = await center_factory(database_url)
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(
            center.ws_url(token=token()), additional_headers={"Last-Event-ID": "yesterday"}
        ):
            pass
    assert info.value.response.status_code == 403  # refused during the handshake, before accept
    r = await center.client.get("/api/v1/feed/sse", headers={**auth(), "Last-Event-ID": "yesterday"})
    assert r.status_code == 400


async def test_malformed_feed_messages_are_ignored_with_a_log_line(
    center_factory, database_url, redis_db, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="center_api.feeds")
    center = await center_factory(database_url)
    channel = feed_channel("st-nanguan", channel_db(redis_db))
    bad_inner = FeedEnvelope(origin="elsewhere", sent_at=time.time(), message='{"type": "incident"}')
    garbage = [b"not json", b"\xff\xfe", b'{"v": 2}', bad_inner.model_dump_json().encode()]
    async with websockets.connect(center.ws_url(token=token())) as ws:
        await _clients(center, 1)
        for data in garbage:
            redis_db.publish(channel, data)

        async def ignored():
            return _received(center, "malformed") == len(garbage)

        await poll(ignored)
        lines = [r for r in caplog.records if "ignoring malformed feed message" in r.getMessage()]
        assert len(lines) == len(garbage) and all(r.levelno == logging.WARNING for r in lines)
        assert all(channel in r.getMessage() for r in lines)
        alert = make_alert(NANGUAN_1, camera_id="cam-after")
        xadd(redis_db, alert)
        msg = await _recv(ws)  # the feed goes on, and none of the garbage reached the client
        assert msg["incident"]["alert_id"] == alert.id
