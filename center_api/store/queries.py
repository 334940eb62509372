"""Reading incidents: filtered lists with cursor pagination (newest first, by id), one incident with its
history, the event log for SSE resume, and the public shape of an incident. Every incident read carries its
clip state (`center_api.store.clipstate`), worked out for the whole page in one query."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.errors import BadRequest
from center_api.schemas import EventPublic, IncidentDetail, IncidentPublic, IncidentQuery
from center_api.store import clipstate
from center_api.store.models import Incident, IncidentEvent
from center_api.workflow import sla_seconds


class CursorError(BadRequest):
    """A cursor this server did not write (400 `bad_cursor`)."""

    code = "bad_cursor"


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"i{last_id}".encode()).decode().rstrip("=")


MAX_ID = 2**63 - 1


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("i") or not raw[1:].isdigit():
            raise ValueError(raw)
        value = int(raw[1:])
        if value > MAX_ID:  # the ids are 64-bit: a larger one is not ours, and the database would refuse it
            raise ValueError(raw)
        return value
    except (ValueError, UnicodeDecodeError):
        raise CursorError(f"bad cursor {cursor!r}") from None


def incident_public(incident: Incident) -> IncidentPublic:
    """The public shape of a stored incident (what every route and feed sends)."""
    return IncidentPublic.model_validate(incident)


def apply_filter(stmt: Select, f: IncidentQuery, station_scope: str | None) -> Select:
    pairs = (
        (Incident.cell_id, f.cell),
        (Incident.community_id, f.community),
        (Incident.street_id, f.street),
        (Incident.district_id, f.district),
        (Incident.station_id, f.station),
        (Incident.camera_id, f.camera),
        (Incident.kind, f.kind),
        (Incident.severity, f.severity),
        (Incident.status, f.status),
        (Incident.station_id, station_scope),
    )
    for column, value in pairs:
        if value is not None:
            stmt = stmt.where(column == value)
    if f.since is not None:
        stmt = stmt.where(Incident.last_seen >= f.since)
    if f.until is not None:
        stmt = stmt.where(Incident.first_seen < f.until)
    return stmt


class IncidentReader:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clip_pending_timeout_s: float = 600.0
    ) -> None:
        self._sessions = sessions
        self._clip_timeout_s = clip_pending_timeout_s

    async def _annotate(self, session: AsyncSession, rows: Sequence[Incident]) -> None:
        await clipstate.annotate(session, rows, datetime.now(UTC), self._clip_timeout_s)

    async def list(
        self, f: IncidentQuery, *, station_scope: str | None, cursor: str | None, limit: int
    ) -> tuple[list[Incident], str | None]:
        """Newest first by id (stable under concurrent inserts and folds); `station_scope` None = all."""
        stmt = apply_filter(select(Incident), f, station_scope)
        if cursor:
            stmt = stmt.where(Incident.id < decode_cursor(cursor))
        stmt = stmt.order_by(Incident.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list(await session.scalars(stmt))
            await self._annotate(session, rows[:limit])
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1].id) if more and rows else None)

    async def get(self, incident_id: int) -> Incident | None:
        async with self._sessions() as session:
            return await session.get(Incident, incident_id)

    async def detail(self, incident: Incident) -> IncidentDetail:
        async with self._sessions() as session:
            await self._annotate(session, [incident])
            events = await session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident.id)
                .order_by(IncidentEvent.id)
            )
            history = [EventPublic.model_validate(e) for e in events]
        return IncidentDetail(
            **dict(incident_public(incident)),  # the public fields as they are: nothing dumped and re-read
            history=history,
            time_to_acknowledge_s=sla_seconds(incident.created_at, incident.acknowledged_at),
            time_to_resolve_s=sla_seconds(incident.created_at, incident.resolved_at),
        )

    async def events_after(
        self, last_event_id: int, *, station_scope: str | None, limit: int = 500
    ) -> Sequence[tuple[IncidentEvent, Incident]]:
        """Feed events after `last_event_id` (SSE resume), with the incident as it is now."""
        stmt = (
            select(IncidentEvent, Incident)
            .join(Incident, Incident.id == IncidentEvent.incident_id)
            .where(IncidentEvent.id > last_event_id)
        )
        if station_scope is not None:
            stmt = stmt.where(IncidentEvent.station_id == station_scope)
        stmt = stmt.order_by(IncidentEvent.id).limit(limit)
        async with self._sessions() as session:
            rows = [(e, i) for e, i in (await session.execute(stmt)).all()]
            await self._annotate(session, list({i.id: i for _, i in rows}.values()))
        return rows
