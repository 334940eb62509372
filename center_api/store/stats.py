"""Statistics over a time window: counts by grid unit and kind, open incidents, SLA percentiles,
false-alarm rates per camera and rule, and per-cell counts for the heat map."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.store.models import Incident
from center_api.store.rollup import RAW_COLUMNS, counts_statement, merge_counts
from center_api.workflow import OPEN_STATUSES, Status

UNIT_COLUMNS = {**RAW_COLUMNS, "camera": Incident.camera_id}  # what counts can be grouped by


def _window(stmt: Select, since: datetime | None, until: datetime | None, scope: str | None) -> Select:
    if since is not None:
        stmt = stmt.where(Incident.first_seen >= since)
    if until is not None:
        stmt = stmt.where(Incident.first_seen < until)
    if scope is not None:
        stmt = stmt.where(Incident.station_id == scope)
    return stmt


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


class StatsReader:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def counts(
        self, by: str, since: datetime | None, until: datetime | None, scope: str | None
    ) -> list[dict[str, object]]:
        stmt = counts_statement(by, since, until, scope, UNIT_COLUMNS[by])
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        out: dict[str | None, dict[str, object]] = {}
        for (unit, kind), n in merge_counts(by, rows).items():
            entry = out.setdefault(unit, {"unit": unit, "total": 0, "by_kind": {}})
            entry["by_kind"][kind] = n  # type: ignore[index]
            entry["total"] = int(entry["total"]) + n  # type: ignore[call-overload]
        return sorted(out.values(), key=lambda e: -int(e["total"]))  # type: ignore[call-overload]

    async def open_by_station(self, scope: str | None) -> dict[str, int]:
        stmt = select(Incident.station_id, func.count()).where(
            Incident.status.in_([s.value for s in OPEN_STATUSES])
        )
        if scope is not None:
            stmt = stmt.where(Incident.station_id == scope)
        async with self._sessions() as session:
            return {s: n for s, n in (await session.execute(stmt.group_by(Incident.station_id))).all()}

    async def sla(
        self, since: datetime | None, until: datetime | None, scope: str | None
    ) -> dict[str, float | None]:
        stmt = (
            _window(
                select(Incident.created_at, Incident.acknowledged_at, Incident.resolved_at),
                since,
                until,
                scope,
            )
            .where(Incident.acknowledged_at.is_not(None))
            .limit(200_000)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        ack = sorted((a - c).total_seconds() for c, a, _ in rows)
        res = sorted((r - c).total_seconds() for c, _, r in rows if r is not None)
        return {
            "ack_p50_s": percentile(ack, 0.5),
            "ack_p90_s": percentile(ack, 0.9),
            "resolve_p50_s": percentile(res, 0.5),
            "resolve_p90_s": percentile(res, 0.9),
            "acknowledged": len(ack),
            "resolved": len(res),
        }

    async def false_alarms(
        self, since: datetime | None, until: datetime | None, scope: str | None, limit: int = 100
    ) -> list[dict[str, object]]:
        closed = func.sum(
            func.cast(
                Incident.status.in_([Status.resolved.value, Status.false_alarm.value]), Incident.count.type
            )
        )
        false = func.sum(func.cast(Incident.status == Status.false_alarm.value, Incident.count.type))
        stmt = (
            _window(select(Incident.camera_id, Incident.rule, closed, false), since, until, scope)
            .group_by(Incident.camera_id, Incident.rule)
            .having(closed > 0)
            .order_by(false.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [
            {
                "camera_id": c,
                "rule": r,
                "closed": int(n or 0),
                "false_alarms": int(f or 0),
                "rate": (int(f or 0) / int(n)) if n else None,
            }
            for c, r, n, f in rows
        ]

    async def cell_counts(
        self, since: datetime | None, until: datetime | None, scope: str | None, open_only: bool
    ) -> dict[str, int]:
        if open_only:  # open incidents are few: the (status, station_id) index finds them
            stmt = _window(select(Incident.cell_id, func.count()), since, until, scope)
            stmt = stmt.where(Incident.status.in_([s.value for s in OPEN_STATUSES]))
            async with self._sessions() as session:
                return {c: n for c, n in (await session.execute(stmt.group_by(Incident.cell_id))).all()}
        stmt = counts_statement("cell", since, until, scope, Incident.cell_id)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        out: dict[str, int] = {}
        for (cell, _kind), n in merge_counts("cell", rows).items():
            out[str(cell)] = out.get(str(cell), 0) + n
        return out
