"""Live feeds: fan-out of committed incident events to WebSocket/SSE clients, across replicas.

`FeedHub.publish(events)` is the one way an event reaches the feeds. It serialises each committed event once
into a `FeedMessage`, hands that text to this replica's clients whose scope matches (their station, or all for
the city command) at once, and PUBLISHes it on `gw:feed:<station>` in a `FeedEnvelope` that names the sending
replica. Every replica pattern-subscribes to `gw:feed:*` and delivers what the others sent; its own envelopes
come back too and are ignored, so a client gets each message once.

Each client has a bounded queue: a client that falls behind is dropped (it resumes from its last event id,
replayed from the store by `replay`, the same code for WebSocket and SSE), so no client can grow memory.
And one owner (a token subject) holds at most `limit` clients at once: `connect` refuses the next one with
`FeedClientLimit` (429), so no one token can hold the replica's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Hashable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from center_api.errors import TooManyRequests
from center_api.metrics import CenterMetrics
from center_api.schemas import FeedEventType, FeedMessage, IncidentPublic
from center_api.store.queries import IncidentReader, incident_public
from contracts.bus import channel_db, feed_channel

if TYPE_CHECKING:
    from center_api.store.incidents import StoredEvent

log = logging.getLogger(__name__)

REPLAY_PAGE: Final = 500  # store events read per query while a resuming client catches up


class _Dropped(Enum):
    DROPPED = "dropped"


DROPPED: Final = _Dropped.DROPPED  # sentinel a dropped client receives last (an enum member, so it types)
FeedItem = tuple[int, str] | Literal[_Dropped.DROPPED]  # (event_id, FeedMessage JSON) or DROPPED


class FeedEnvelope(BaseModel):
    """What one replica PUBLISHes for the others: a feed message with its sender and send time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(default=1, description="Envelope version")
    origin: str = Field(min_length=1, max_length=200, description="Replica id of the sender")
    sent_at: float = Field(description="Unix time of the publish: the receiver's feed latency starts here")
    message: str = Field(
        description="The FeedMessage JSON, the very text the sender's own clients got (serialised once)"
    )


def feed_message(event: str, event_id: int, incident: IncidentPublic) -> FeedMessage:
    """The feed message of one store event; raises ValueError for an event type the feeds do not know."""
    return FeedMessage(event=FeedEventType(event), event_id=event_id, incident=incident)


def replica_id() -> str:
    """A name for one hub: host and pid to read in logs, plus a random part (a process may run several)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class FeedClientLimit(TooManyRequests):
    """The owner already holds its limit of feed clients on this replica."""

    code = "too_many_feed_clients"


class FeedClient:
    """One connected client. `station_scope` None = city-wide. `get()` returns (event_id, JSON) or DROPPED."""

    def __init__(
        self, station_scope: str | None, maxsize: int, transport: str, owner: Hashable | None = None
    ) -> None:
        self.station_scope = station_scope
        self.transport = transport
        self.owner = owner
        self.queue: asyncio.Queue[FeedItem] = asyncio.Queue(maxsize=maxsize)
        self.dropped = False
        self.replayed_through = 0  # the last event id `replay` sent; `get()` skips what it already sent

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
        """The next live item the client has not had yet (replay and live overlap while it catches up)."""
        while True:
            item = await self.queue.get()
            if item is DROPPED or item[0] > self.replayed_through:
                return item


async def replay(reader: IncidentReader, client: FeedClient, after: int) -> AsyncIterator[tuple[int, str]]:
    """(event_id, FeedMessage JSON) of the client's events after `after`, from the store, until caught up.

    Connect the client before replaying, so nothing committed meanwhile falls between replay and live; the
    live items the replay already covered are then skipped by `client.get()`.
    """
    last = after
    while True:
        rows = await reader.events_after(last, station_scope=client.station_scope, limit=REPLAY_PAGE)
        for event, incident in rows:
            text = feed_message(event.event, event.id, incident_public(incident)).model_dump_json()
            yield event.id, text
            last = client.replayed_through = event.id
        if len(rows) < REPLAY_PAGE:
            return


class FeedHub:
    """This replica's feed clients, the publisher of its events and the listener for the other replicas'."""

    def __init__(
        self, redis: Redis, metrics: CenterMetrics, queue_size: int = 256, *, replica: str | None = None
    ) -> None:
        self._redis = redis
        self._metrics = metrics
        self._queue_size = queue_size
        self.replica = replica or replica_id()
        self._clients: set[FeedClient] = set()
        self._owned: dict[Hashable, int] = {}  # clients open per owner (only owners with one or more)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def connect(
        self,
        station_scope: str | None,
        transport: str,
        *,
        owner: Hashable | None = None,
        limit: int | None = None,
    ) -> FeedClient:
        """A new client; `FeedClientLimit` when `owner` already holds `limit` clients (None: no limit)."""
        if owner is not None:
            held = self._owned.get(owner, 0)
            if limit is not None and held >= limit:
                self._metrics.feed_refused.inc()
                raise FeedClientLimit(
                    f"this token already holds {held} feed connections (limit {limit} per token "
                    "subject); close one first"
                )
            self._owned[owner] = held + 1
        client = FeedClient(station_scope, self._queue_size, transport, owner)
        self._clients.add(client)
        self._metrics.feed_clients.labels(transport).inc()
        return client

    def held_by(self, owner: Hashable) -> int:
        """Clients `owner` holds open now."""
        return self._owned.get(owner, 0)

    def disconnect(self, client: FeedClient) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._metrics.feed_clients.labels(client.transport).dec()
            self._release(client)

    def _release(self, client: FeedClient) -> None:
        if client.owner is None or client.owner not in self._owned:
            return
        left = self._owned[client.owner] - 1
        if left > 0:
            self._owned[client.owner] = left
        else:
            del self._owned[client.owner]

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """Deliver committed events to this replica's clients now, then PUBLISH each once for the others.

        Best effort: the store is the record. Local clients have the events before Redis is touched, so a
        Redis outage costs only the other replicas' clients their live copy (they resume from the store).
        """
        if not events:
            return
        sent_at = time.time()
        outgoing: list[tuple[str, str]] = []
        for event in events:
            station_id = event.incident.station_id
            message = feed_message(event.event, event.event_id, incident_public(event.incident))
            text = message.model_dump_json()
            self.dispatch(station_id, event.event_id, text)
            self._metrics.feed_seconds.observe(max(0.0, time.time() - sent_at))
            envelope = FeedEnvelope(origin=self.replica, sent_at=sent_at, message=text)
            outgoing.append((station_id, envelope.model_dump_json()))
        try:
            db = channel_db(self._redis)
            async with self._redis.pipeline(transaction=False) as pipe:
                for station_id, data in outgoing:
                    pipe.publish(feed_channel(station_id, db), data)
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("feed publish of %d events for the other replicas failed: %s", len(outgoing), exc)

    def dispatch(self, station_id: str, event_id: int, text: str) -> None:
        """Offer one message to the local clients that watch `station_id`; drop the ones that are full."""
        for client in list(self._clients):
            if client.station_scope is None or client.station_scope == station_id:
                if not client.offer((event_id, text)):
                    if client.dropped and client in self._clients:
                        self._metrics.feed_dropped.inc()
                        self.disconnect(client)
                        log.info(
                            "dropped slow %s feed client (station %s)", client.transport, client.station_scope
                        )

    def receive(self, channel: str, data: bytes | str) -> None:
        """Handle one message read from the feed channels: deliver another replica's, ignore our own."""
        try:
            envelope = FeedEnvelope.model_validate_json(data)
            if envelope.origin == self.replica:
                self._metrics.feed_received.labels("own").inc()
                return
            message = FeedMessage.model_validate_json(envelope.message)
        except ValidationError as exc:
            self._metrics.feed_received.labels("malformed").inc()
            log.warning("ignoring malformed feed message on %s: %s", channel, _first_error(exc))
            return
        self._metrics.feed_received.labels("delivered").inc()
        self._metrics.feed_seconds.observe(max(0.0, time.time() - envelope.sent_at))
        self.dispatch(message.incident.station_id, message.event_id, envelope.message)

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
        self._owned.clear()

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(feed_channel("*", channel_db(self._redis)))
                self._ready.set()
                backoff = 0.2
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode(errors="replace")
                        self.receive(channel, message["data"])
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("feed subscription lost, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(RedisConnectionError, OSError):
                    await pubsub.aclose()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
