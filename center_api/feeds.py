"""Live feeds: fan-out of committed incident events to WebSocket/SSE clients, across replicas.

The writer publishes each event to Redis pub/sub `gw:feed:<station>`; every replica pattern-subscribes to
`gw:feed:*` and hands the message to its local clients whose scope matches (their station, or all for the city
command). Each client has a bounded queue: a client that falls behind is dropped (it re-syncs from the REST
API or resumes SSE by `Last-Event-ID`), so no client can grow memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Final, Literal

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from center_api.metrics import CenterMetrics
from contracts.bus import channel_db, feed_channel

if TYPE_CHECKING:
    from center_api.store.incidents import StoredEvent

log = logging.getLogger(__name__)


class _Dropped(Enum):
    DROPPED = "dropped"


DROPPED: Final = _Dropped.DROPPED  # sentinel a dropped client receives last (an enum member, so it types)
FeedItem = tuple[int, str] | Literal[_Dropped.DROPPED]  # (event_id, JSON) or DROPPED


class FeedClient:
    """One connected client. `station_scope` None = city-wide. `get()` returns (event_id, JSON) or DROPPED."""

    def __init__(self, station_scope: str | None, maxsize: int, transport: str) -> None:
        self.station_scope = station_scope
        self.transport = transport
        self.queue: asyncio.Queue[FeedItem] = asyncio.Queue(maxsize=maxsize)
        self.dropped = False

    def offer(self, item: tuple[int, str]) -> bool:
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():  # free the backlog now; the client is going away
                self.queue.get_nowait()
            self.queue.put_nowait(DROPPED)
            return False

    async def get(self) -> FeedItem:
        return await self.queue.get()


class FeedHub:
    def __init__(self, redis: Redis, metrics: CenterMetrics, queue_size: int = 256) -> None:
        self._redis = redis
        self._metrics = metrics
        self._queue_size = queue_size
        self._clients: set[FeedClient] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def connect(self, station_scope: str | None, transport: str) -> FeedClient:
        client = FeedClient(station_scope, self._queue_size, transport)
        self._clients.add(client)
        self._metrics.feed_clients.labels(transport).inc()
        return client

    def disconnect(self, client: FeedClient) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._metrics.feed_clients.labels(client.transport).dec()

    async def publish(self, messages: Sequence[tuple[str, int, str]]) -> None:
        """Publish (station_id, event_id, JSON) to every replica. Best effort: the store is the record."""
        if not messages:
            return
        sent_at = time.time()
        try:
            db = channel_db(self._redis)
            async with self._redis.pipeline(transaction=False) as pipe:
                for station_id, event_id, text in messages:
                    pipe.publish(feed_channel(station_id, db), f"{sent_at:.6f} {event_id} {text}")
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("feed publish of %d events failed: %s", len(messages), exc)

    def dispatch(self, station_id: str, event_id: int, text: str) -> None:
        for client in list(self._clients):
            if client.station_scope is None or client.station_scope == station_id:
                if not client.offer((event_id, text)):
                    if client.dropped and client in self._clients:
                        self._metrics.feed_dropped.inc()
                        self.disconnect(client)
                        log.info(
                            "dropped slow %s feed client (station %s)", client.transport, client.station_scope
                        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="feed-listener")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for client in list(self._clients):  # wake every connection handler so it closes
            client.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(DROPPED)
        self._clients.clear()

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                prefix = feed_channel("", channel_db(self._redis))
                await pubsub.psubscribe(f"{prefix}*")
                self._ready.set()
                backoff = 0.2
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    data = message["data"]
                    data = data.decode() if isinstance(data, bytes) else data
                    try:
                        stamp, event_id, text = data.split(" ", 2)
                        self._metrics.feed_seconds.observe(max(0.0, time.time() - float(stamp)))
                        self.dispatch(channel[len(prefix) :], int(event_id), text)
                    except ValueError:
                        log.warning("ignoring malformed feed message on %s", channel)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("feed subscription lost, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(RedisConnectionError, OSError):
                    await pubsub.aclose()


def feed_json(event: str, event_id: int | None, incident_json: str) -> str:
    """The feed message, built from an already-serialised incident (serialise once, send to many)."""
    head = f'{{"type":"incident","event":{json.dumps(event)},"event_id":{json.dumps(event_id)}'
    return f'{head},"incident":{incident_json}}}'


async def publish_events(hub: FeedHub | None, events: Sequence[StoredEvent]) -> None:
    """Serialise each committed `StoredEvent` once and publish it on its station's channel."""
    from center_api.store.queries import incident_public

    if not events or hub is None:
        return
    await hub.publish(
        [
            (
                e.incident.station_id,
                e.event_id,
                feed_json(e.event, e.event_id, incident_public(e.incident).model_dump_json()),
            )
            for e in events
        ]
    )
