"""Live feeds of one station (city-wide for the city command center): WebSocket and Server-Sent Events.

WebSocket `/api/v1/feed` and SSE `/api/v1/feed/sse` carry the same messages, one `FeedMessage` JSON each:
`{"type": "incident", "event": "created"|"updated"|"escalated"|"transition", "event_id": n,
"incident": {...}}`. SSE also sends `id: <event_id>`.
Both resume: a client reconnecting with `?after=<event_id>` (or a `Last-Event-ID` header, which browsers send
on an SSE reconnect) first gets what it missed, read from the store, then the live messages. A client too slow
to keep up is disconnected (WebSocket close code 1013; the SSE stream ends) and resumes the same way.
One token subject holds at most `feed_clients_per_subject` feeds (WebSocket and SSE together) on a replica:
the next is refused, SSE with 429 `too_many_feed_clients`, a WebSocket accepted and closed with 4429 and the
reason. An address refused for bad tokens (`center_api.throttle`) gets the same 429 / 4429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from center_api.api.deps import IncidentViewerDep, ServicesDep, route_errors, services_of
from center_api.auth import INCIDENT_ROLES, Principal, Role, principal_for_websocket
from center_api.errors import BadRequest, CenterError, Forbidden, TooManyRequests, Unavailable
from center_api.feeds import DROPPED, FeedClient, replay
from center_api.services import CenterServices

router = APIRouter(prefix="/api/v1/feed", tags=["feed"])

WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013
WS_TOO_MANY_REQUESTS = 4429  # private-use range: HTTP's 429 as a close code
WS_REASON_BYTES = 123  # the most a close frame's reason may carry

AfterQuery = Annotated[
    int | None, Query(ge=0, description="Resume: first replay the events after this event id")
]
LastEventIdHeader = Annotated[
    str | None, Header(alias="Last-Event-ID", description="Resume as `after` does (SSE reconnects send it)")
]


def feed_scope(principal: Principal, station: str | None) -> str | None:
    """The station a feed carries: the operator's own; city command picks one with `station` or gets all."""
    if principal.role is Role.city_command:
        return station
    if station is not None and station != principal.station_id:
        raise Forbidden(f"token is scoped to station {principal.station_id}", code="station_out_of_scope")
    return principal.station_id


def resume_point(after: int | None, last_event_id: str | None) -> int | None:
    """The event id to replay after, or None for live only; the `Last-Event-ID` header wins over `after`."""
    if last_event_id is None:
        return after
    try:
        resume = int(last_event_id)
    except ValueError:
        resume = -1
    if resume < 0:
        raise BadRequest("Last-Event-ID must be an event id", code="bad_last_event_id")
    return resume


@router.websocket("")
async def feed_ws(
    websocket: WebSocket,
    station: str | None = None,
    after: AfterQuery = None,
    last_event_id: LastEventIdHeader = None,
) -> None:
    """Token in `Authorization: Bearer` or `?token=`; optional `?station=` for the city command center."""
    try:
        services = services_of(websocket)
        principal = principal_for_websocket(websocket)
        if principal.role not in INCIDENT_ROLES:
            raise Forbidden("a valid incident-reading token is required")
        scope = feed_scope(principal, station)
        resume = resume_point(after, last_event_id)
        # Subscribe before the replay: nothing falls between. Refused past the subject's limit.
        client = services.hub.connect(
            scope, "websocket", owner=principal, limit=services.settings.feed_clients_per_subject
        )
    except TooManyRequests as exc:  # a limit: accepted, then closed with a code and reason that say which
        await websocket.accept()
        await websocket.close(code=WS_TOO_MANY_REQUESTS, reason=_reason(exc.message))
        return
    except CenterError as exc:  # refused during the handshake: the client sees HTTP 403
        retry = isinstance(exc, Unavailable)
        code = WS_TRY_AGAIN_LATER if retry else WS_POLICY_VIOLATION
        await websocket.close(code=code, reason=_reason(exc.message))
        return
    receiver: asyncio.Task[None] | None = None
    try:
        await websocket.accept()
        receiver = asyncio.create_task(_drain(websocket))
        if resume is not None:
            async for _, text in replay(services.reader, client, resume):
                await websocket.send_text(text)
        while True:
            getter = asyncio.ensure_future(client.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                return
            item = getter.result()
            if item is DROPPED:
                await websocket.close(code=WS_TRY_AGAIN_LATER, reason="too slow; resume with ?after=")
                return
            await websocket.send_text(item[1])
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        if receiver is not None:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await receiver
        services.hub.disconnect(client)


def _reason(message: str) -> str:
    return message.encode()[:WS_REASON_BYTES].decode(errors="ignore")


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until it goes away; returning ends the feed."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


@router.get(
    "/sse",
    summary="Server-Sent Events feed (resumes from Last-Event-ID)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **route_errors(400)},
)
async def feed_sse(
    services: ServicesDep,
    principal: IncidentViewerDep,
    station: str | None = None,
    last_event_id: LastEventIdHeader = None,
    after: AfterQuery = None,
) -> StreamingResponse:
    scope = feed_scope(principal, station)
    resume = resume_point(after, last_event_id)
    # Subscribe first, so nothing falls between replay and live; 429 past the subject's limit.
    client = services.hub.connect(
        scope, "sse", owner=principal, limit=services.settings.feed_clients_per_subject
    )
    return StreamingResponse(
        _sse(services, client, resume),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(services: CenterServices, client: FeedClient, resume: int | None) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\n\n"
        if resume is not None:
            async for event_id, text in replay(services.reader, client, resume):
                yield f"id: {event_id}\ndata: {text}\n\n"
        while True:
            try:
                item = await asyncio.wait_for(client.get(), timeout=services.settings.sse_keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is DROPPED:
                return
            event_id, text = item
            yield f"id: {event_id}\ndata: {text}\n\n"
    finally:
        services.hub.disconnect(client)
