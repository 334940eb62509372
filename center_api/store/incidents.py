"""Writing incidents: batch ingest with idempotency and folding, workflow transitions, escalation, and the
audit entries of other changes (`audit`: a clip added, unavailable or requested).

Every write is one transaction; the consumer acknowledges stream entries only after `ingest` returns. The
incidents of the events it returns carry their clip state as of the commit (`center_api.store.clipstate`),
so the feeds show it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.errors import NotFound
from center_api.grid.locate import Placement
from center_api.store import clipstate
from center_api.store.clips import note_alerts
from center_api.store.models import Incident, IncidentAlert, IncidentEvent
from center_api.store.rollup import RollupKey, add_deltas, apply_deltas, day_of
from center_api.store.rows import (
    FOLD_UPDATE,
    INCIDENTS,
    fold_into,
    fold_params,
    insert_params,
    loaded,
    new_incident,
)
from center_api.workflow import OPEN_STATUSES, STAMP_COLUMN, Status, check_transition, fold_key
from contracts import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    """An alert with its place in the grid and the sha256 of its stored snapshot."""

    alert: Alert
    placement: Placement
    snapshot: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One committed change to publish on the feeds."""

    event_id: int
    event: str  # created | updated | escalated | transition | clip_added | clip_unavailable | clip_requested
    incident: Incident  # as committed; from `ingest` one that never joined a session


# An event to add: (event, incident, actor, from status, to status, note).
EventRow = tuple[str, Incident, str | None, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Audit:
    """An audit entry `ingest` adds to each incident it creates or folds into (an operator's clip request)."""

    event: str
    actor: str | None = None
    note: str | None = None


class IncidentWriter:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clip_pending_timeout_s: float = 600.0
    ) -> None:
        self._sessions = sessions
        self._clip_timeout_s = clip_pending_timeout_s

    async def ingest(
        self, items: Sequence[RoutedAlert], now: datetime, *, audit: Audit | None = None
    ) -> list[StoredEvent]:
        """Store a batch: skip alert ids already stored, fold repeats into open incidents, note what each
        alert says of its clip, commit once.

        A unique-key race with another replica (two new incidents for one open key) rolls back and retries.
        """
        for attempt in range(3):
            try:
                return await self._ingest_once(items, now, audit)
            except IntegrityError as exc:
                if attempt == 2:
                    raise
                log.warning("ingest of %d alerts raced another writer, retrying: %s", len(items), exc.orig)
        return []

    async def _ingest_once(
        self, items: Sequence[RoutedAlert], now: datetime, audit: Audit | None
    ) -> list[StoredEvent]:
        unique: dict[str, RoutedAlert] = {}
        for item in items:
            unique.setdefault(item.alert.id, item)
        if not unique:
            return []
        async with self._sessions() as session, session.begin():
            seen = set(
                await session.scalars(
                    select(IncidentAlert.alert_id).where(IncidentAlert.alert_id.in_(unique))
                )
            )
            fresh = [it for aid, it in unique.items() if aid not in seen]
            if not fresh:
                return []
            keys = {
                it.alert.id: fold_key(it.alert.camera_id, it.alert.rule, it.alert.zone, it.alert.kind.value)
                for it in fresh
            }
            open_rows = await session.execute(
                select(INCIDENTS).where(INCIDENTS.c.open_key.in_(set(keys.values()))).with_for_update()
            )
            by_key: dict[str, Incident] = {}
            stored_day: dict[str, datetime] = {}
            for raw in open_rows:  # read the row's own fields here: a mapped attribute costs more per read
                if raw.open_key:
                    by_key[raw.open_key] = loaded(raw)
                    stored_day[raw.open_key] = day_of(raw.first_seen)
            created: dict[str, Incident] = {}
            folded: dict[str, Incident] = {}
            links: list[tuple[RoutedAlert, str]] = []
            for item in sorted(fresh, key=lambda it: it.alert.captured_at):
                key = keys[item.alert.id]
                found = by_key.get(key)
                if found is None:
                    by_key[key] = created[key] = new_incident(
                        item.alert, item.placement, item.snapshot, key, now
                    )
                else:
                    fold_into(found, item.alert, item.snapshot)
                    if key not in created:
                        folded[key] = found
                links.append((item, key))
            if created:
                new = list(created.values())
                ids = await session.scalars(
                    insert(INCIDENTS).returning(INCIDENTS.c.id, sort_by_parameter_order=True),
                    [insert_params(row) for row in new],
                )
                for row, new_id in zip(new, ids, strict=True):
                    row.id = new_id
            if folded:
                await session.execute(FOLD_UPDATE, [fold_params(row) for row in folded.values()])
            deltas: Counter[RollupKey] = Counter()
            for row in created.values():
                add_deltas(deltas, row, day_of(row.first_seen), 1)
            for key, row in folded.items():  # an earlier alert can move first_seen to an earlier day
                if (day := day_of(row.first_seen)) != stored_day[key]:
                    add_deltas(deltas, row, stored_day[key], -1)
                    add_deltas(deltas, row, day, 1)
            await apply_deltas(session, deltas)
            await session.execute(
                insert(cast(Table, IncidentAlert.__table__)),
                [
                    {
                        "alert_id": it.alert.id,
                        "incident_id": by_key[k].id,
                        "captured_at": it.alert.captured_at,
                    }
                    for it, k in links
                ],
            )
            await note_alerts(session, [(it.alert, by_key[k].id) for it, k in links], now)
            changes = [("created", row) for row in created.values()] + [
                ("updated", row) for row in folded.values()
            ]
            await clipstate.annotate(session, [row for _, row in changes], now, self._clip_timeout_s)
            entries: list[EventRow] = [(name, row, None, None, None, None) for name, row in changes]
            if audit is not None:
                entries += [(audit.event, row, audit.actor, None, None, audit.note) for _, row in changes]
            event_ids = await self._add_events(session, entries, now)
        return [StoredEvent(eid, e[0], e[1]) for eid, e in zip(event_ids, entries, strict=True)]

    async def audit(
        self,
        session: AsyncSession,
        event: str,
        incident_ids: Iterable[int],
        now: datetime,
        *,
        actor: str | None = None,
        note: str | None = None,
    ) -> list[StoredEvent]:
        """Audit entries `event` for these incidents in the caller's transaction; the events carry the
        incidents as they are now, clip state included."""
        ids = sorted(set(incident_ids))
        if not ids:
            return []
        rows = list(await session.scalars(select(Incident).where(Incident.id.in_(ids)).order_by(Incident.id)))
        await clipstate.annotate(session, rows, now, self._clip_timeout_s)
        event_ids = await self._add_events(session, [(event, r, actor, None, None, note) for r in rows], now)
        return [StoredEvent(eid, event, row) for eid, row in zip(event_ids, rows, strict=True)]

    @staticmethod
    async def _add_events(
        session: AsyncSession,
        rows: Sequence[EventRow],
        now: datetime,
    ) -> list[int]:
        if not rows:
            return []
        result = await session.scalars(
            insert(cast(Table, IncidentEvent.__table__)).returning(
                IncidentEvent.__table__.c.id, sort_by_parameter_order=True
            ),
            [
                {
                    "incident_id": inc.id,
                    "station_id": inc.station_id,
                    "at": now,
                    "event": name,
                    "actor": actor,
                    "from_status": src,
                    "to_status": dst,
                    "note": note,
                }
                for name, inc, actor, src, dst, note in rows
            ],
        )
        return list(result)

    async def transition(
        self,
        incident_id: int,
        target: str,
        *,
        actor: str,
        note: str,
        station_scope: str | None,
        now: datetime,
        scope_all: bool,
    ) -> StoredEvent:
        """Move an incident to `target` as `actor`. Raises `NotFound` (or out of scope), `TransitionError`."""
        async with self._sessions() as session, session.begin():
            incident = await session.get(Incident, incident_id, with_for_update=True)
            if incident is None or not (scope_all or incident.station_id == station_scope):
                # Out of scope looks the same as absent: nothing leaks about other stations' incidents.
                raise NotFound("no such incident", code="incident_not_found")
            src = incident.status
            dst = check_transition(src, target)
            incident.status = dst.value
            setattr(incident, STAMP_COLUMN[dst], now)
            if dst not in OPEN_STATUSES:
                incident.open_key = None
            await session.flush()
            await clipstate.annotate(session, [incident], now, self._clip_timeout_s)
            (event_id,) = await self._add_events(
                session, [("transition", incident, actor, src, dst.value, note)], now
            )
        return StoredEvent(event_id, "transition", incident)

    async def escalate_due(
        self, now: datetime, limits: Mapping[int, float], *, max_rows: int = 500
    ) -> list[StoredEvent]:
        """Mark incidents still `new` past their severity's acknowledge limit as escalated (once each)."""
        conds = [
            and_(Incident.severity == sev, Incident.created_at <= now - timedelta(seconds=limit))
            for sev, limit in limits.items()
        ]
        if not conds:
            return []
        async with self._sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(Incident)
                    .where(Incident.status == Status.new.value, Incident.escalated_at.is_(None), or_(*conds))
                    .order_by(Incident.id)
                    .limit(max_rows)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return []
            for row in rows:
                row.escalated_at = now
            await clipstate.annotate(session, rows, now, self._clip_timeout_s)
            ids = await self._add_events(
                session, [("escalated", r, None, None, None, None) for r in rows], now
            )
        return [StoredEvent(eid, "escalated", row) for eid, row in zip(ids, rows, strict=True)]
