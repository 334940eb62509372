"""The clip tables: clips, their links to alerts and on-demand requests, and each alert's clip note.

A clip reaches its incident through ids: the upload names the alerts (or request ids) it shows
(`clip_links`); each alert or request has a note (`clip_notes`) that says which incident it belongs to once
the alert is stored, and what was said of its clip (pending, or unavailable with a reason). Either side may
come first: a clip that arrives before its alert is linked when the consumer stores the alert and fills in
the note's incident. Notes are written with one upsert per statement (`INSERT .. ON CONFLICT`, SQLite and
PostgreSQL alike), so the consumer and an upload racing on one id both land. An unavailable note stays so
when the alert's own note (pending) arrives after the worker's failure report.

Everything here runs inside the caller's transaction (`session`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from center_api.store.models import Clip, ClipLink, ClipNoteRow, Incident, IncidentAlert
from center_api.workflow import OPEN_STATUSES
from contracts import Alert, ClipState

NOTES = cast(Table, ClipNoteRow.__table__)
_UNAVAILABLE = ClipState.unavailable.value
_OPEN = [s.value for s in OPEN_STATUSES]


def _upsert(session: AsyncSession) -> Any:
    """The dialect's INSERT that takes ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(NOTES)


async def note_alerts(session: AsyncSession, alerts: Sequence[tuple[Alert, int]], now: datetime) -> None:
    """The consumer's part: the clip notes of freshly stored alerts (alert, its incident id). An alert with a
    note gets one (or completes the one an early clip or failure left); an alert without one only fills in
    the incident of a note that exists already."""
    if not alerts:
        return
    existing = set(
        await session.scalars(
            select(ClipNoteRow.ref_id).where(ClipNoteRow.ref_id.in_([a.id for a, _ in alerts]))
        )
    )
    rows = [
        {
            "ref_id": a.id,
            "incident_id": incident_id,
            "state": a.clip.state.value if a.clip else None,
            "reason": a.clip.reason if a.clip else None,
            "since": now,
        }
        for a, incident_id in alerts
        if a.clip is not None or a.id in existing
    ]
    if not rows:
        return
    stmt = _upsert(session)
    new, old = stmt.excluded, NOTES.c
    kept = old.state == _UNAVAILABLE  # a failure reported before the alert came stays
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[old.ref_id],
            set_={
                "incident_id": func.coalesce(new.incident_id, old.incident_id),
                "state": case((kept, old.state), else_=func.coalesce(new.state, old.state)),
                "reason": case((kept | new.state.is_(None), old.reason), else_=new.reason),
                "since": case((old.state.is_(None), new.since), else_=old.since),
            },
        ),
        rows,
    )


async def _incidents_of(session: AsyncSession, ref_ids: Iterable[str]) -> dict[str, int]:
    ids = list(ref_ids)
    rows = await session.execute(
        select(IncidentAlert.alert_id, IncidentAlert.incident_id).where(IncidentAlert.alert_id.in_(ids))
    )
    return {alert_id: incident_id for alert_id, incident_id in rows}


async def mark_unavailable(
    session: AsyncSession, ref_ids: Sequence[str], reason: str, now: datetime
) -> set[int]:
    """No clip will come for these alerts or requests (a worker's failure, the station's quota, a deleted
    clip): note it with `reason`. Returns the incidents they belong to, as far as known."""
    if not ref_ids:
        return set()
    incidents = await _incidents_of(session, ref_ids)
    stmt = _upsert(session)
    new, old = stmt.excluded, NOTES.c
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[old.ref_id],
            set_={
                "incident_id": func.coalesce(old.incident_id, new.incident_id),
                "state": new.state,
                "reason": new.reason,
            },
        ),
        [
            {
                "ref_id": r,
                "incident_id": incidents.get(r),
                "state": _UNAVAILABLE,
                "reason": reason,
                "since": now,
            }
            for r in dict.fromkeys(ref_ids)
        ],
    )
    return set(
        await session.scalars(
            select(ClipNoteRow.incident_id)
            .where(ClipNoteRow.ref_id.in_(ref_ids), ClipNoteRow.incident_id.is_not(None))
            .distinct()
        )
    )


async def note_request(session: AsyncSession, request_id: str, incident_id: int, now: datetime) -> None:
    """An operator's on-demand request linked to an existing incident: its clip is pending from now."""
    await session.execute(
        insert(NOTES).values(
            ref_id=request_id, incident_id=incident_id, state=ClipState.pending.value, since=now
        )
    )


@dataclass(frozen=True, slots=True)
class Linked:
    """What linking a clip did: the incidents it now belongs to, and those it joined just now."""

    incidents: list[int]
    new_incidents: set[int]


async def link(session: AsyncSession, digest: str, offsets: Mapping[str, float], now: datetime) -> Linked:
    """Link the clip `digest` to alert or request ids (id -> offset in the clip); an id whose alert is not
    stored yet gets a note without an incident, which the consumer fills in when the alert lands."""
    ids = list(offsets)
    linked = set(
        await session.scalars(
            select(ClipLink.ref_id).where(ClipLink.digest == digest, ClipLink.ref_id.in_(ids))
        )
    )
    fresh = [r for r in ids if r not in linked]
    if fresh:
        await session.execute(
            insert(cast(Table, ClipLink.__table__)),
            [{"ref_id": r, "digest": digest, "offset_s": offsets[r]} for r in fresh],
        )
    noted = set(await session.scalars(select(ClipNoteRow.ref_id).where(ClipNoteRow.ref_id.in_(ids))))
    missing = [r for r in ids if r not in noted]
    if missing:
        incidents = await _incidents_of(session, missing)
        stmt = _upsert(session)
        await session.execute(
            stmt.on_conflict_do_nothing(index_elements=[NOTES.c.ref_id]),
            [{"ref_id": r, "incident_id": incidents.get(r), "since": now} for r in missing],
        )
    rows = (
        await session.execute(
            select(ClipNoteRow.ref_id, ClipNoteRow.incident_id)
            .join(ClipLink, ClipLink.ref_id == ClipNoteRow.ref_id)
            .where(ClipLink.digest == digest, ClipNoteRow.incident_id.is_not(None))
        )
    ).all()
    fresh_set = set(fresh)
    return Linked(
        incidents=sorted({incident for _, incident in rows if incident is not None}),
        new_incidents={incident for ref, incident in rows if ref in fresh_set and incident is not None},
    )


def _referenced_by_open_incident() -> Any:
    """Digests of the clips an open incident references (a subquery)."""
    return (
        select(ClipLink.digest)
        .join(ClipNoteRow, ClipNoteRow.ref_id == ClipLink.ref_id)
        .join(Incident, Incident.id == ClipNoteRow.incident_id)
        .where(Incident.status.in_(_OPEN))
    )


async def station_usage(session: AsyncSession, station_id: str) -> int:
    used = await session.scalar(
        select(func.coalesce(func.sum(Clip.size), 0)).where(Clip.station_id == station_id)
    )
    return int(used or 0)


async def usage_by_station(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Clip.station_id, func.sum(Clip.size)).group_by(Clip.station_id))
    return {station: int(total or 0) for station, total in rows}


async def evictable(
    session: AsyncSession, *, station_id: str | None = None, used_before: datetime | None = None, limit: int
) -> list[tuple[str, int]]:
    """(digest, size) of clips no open incident references, least recently used first: of one station (the
    quota), or last used before a time (retention)."""
    stmt = select(Clip.digest, Clip.size).where(Clip.digest.not_in(_referenced_by_open_incident()))
    if station_id is not None:
        stmt = stmt.where(Clip.station_id == station_id)
    if used_before is not None:
        stmt = stmt.where(Clip.last_used_at < used_before)
    stmt = stmt.order_by(Clip.last_used_at, Clip.digest).limit(limit)
    return [(digest, int(size)) for digest, size in await session.execute(stmt)]


async def forget(session: AsyncSession, digests: Sequence[str], reason: str, now: datetime) -> None:
    """Delete clip rows and their links (the caller deletes the files after the commit); the alerts they
    showed say why their clip is gone."""
    if not digests:
        return
    refs = list(await session.scalars(select(ClipLink.ref_id).where(ClipLink.digest.in_(digests)).distinct()))
    await session.execute(delete(ClipLink).where(ClipLink.digest.in_(digests)))
    await session.execute(delete(Clip).where(Clip.digest.in_(digests)))
    await mark_unavailable(session, refs, reason, now)


async def station_of_refs(session: AsyncSession, ref_ids: Sequence[str]) -> str | None:
    """The station of a stored incident of these alert or request ids, if any."""
    noted = select(ClipNoteRow.incident_id).where(ClipNoteRow.ref_id.in_(ref_ids))
    stored = select(IncidentAlert.incident_id).where(IncidentAlert.alert_id.in_(ref_ids))
    return await session.scalar(
        select(Incident.station_id)
        .where(Incident.id.in_(noted) | Incident.id.in_(stored))
        .order_by(Incident.id)
        .limit(1)
    )


def _of_incident(*columns: Any, incident_id: int) -> Any:
    """SELECT `columns` of the clips linked to the incident, one row per link."""
    return (
        select(*columns)
        .join(ClipLink, ClipLink.digest == Clip.digest)
        .join(ClipNoteRow, ClipNoteRow.ref_id == ClipLink.ref_id)
        .where(ClipNoteRow.incident_id == incident_id)
    )


async def clips_of_incident(
    session: AsyncSession, incident_id: int, limit: int
) -> list[tuple[Clip, list[float]]]:
    """The incident's clips (oldest first, at most `limit`), each with the offsets of the incident's alerts
    in it."""
    rows = await session.execute(
        _of_incident(Clip, ClipLink.offset_s, incident_id=incident_id).order_by(
            Clip.started_at, Clip.digest, ClipLink.offset_s
        )
    )
    found: dict[str, tuple[Clip, list[float]]] = {}
    for clip, offset in rows:
        if clip.digest not in found:
            if len(found) == limit:
                break
            found[clip.digest] = (clip, [])
        found[clip.digest][1].append(offset)
    return list(found.values())


async def clip_of_incident(session: AsyncSession, incident_id: int, digest: str) -> Clip | None:
    """The clip `digest` if it is linked to the incident, else None."""
    return await session.scalar(
        _of_incident(Clip, incident_id=incident_id).where(Clip.digest == digest).limit(1)
    )
