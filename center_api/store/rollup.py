"""The per-day rollup of incident counts (`incident_counts`): keeping it, rebuilding it, and reading it.

Keys are (level, UTC day of `first_seen`, unit, station, kind) for the levels cell, community, street,
district and station. The writer adds its deltas in the same transaction as the incidents (a new incident
+1; a fold that moves `first_seen` to an earlier day -1/+1), so a window's counts are the rollup's whole
days plus the raw table's partial days at the edges, read in one statement (one snapshot): always exactly
what counting `incidents` gives. Incidents loaded behind the writer's back (bulk COPY) need `rebuild`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, delete, func, select, text, union_all
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from center_api.store.models import Incident, IncidentCount

# Each level of the rollup and the incident column that names its unit.
RAW_COLUMNS: Mapping[str, InstrumentedAttribute[Any]] = {
    "cell": Incident.cell_id,
    "community": Incident.community_id,
    "street": Incident.street_id,
    "district": Incident.district_id,
    "station": Incident.station_id,
}
LEVELS = tuple(RAW_COLUMNS)
DAY = timedelta(days=1)

RollupKey = tuple[str, datetime, str, str, str]  # level, day, unit_id, station_id, kind


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def day_of(ts: datetime) -> datetime:
    """Midnight UTC of the day `ts` falls in."""
    return _utc(ts).replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(ts: datetime) -> datetime:
    d = day_of(ts)
    return d if d == _utc(ts) else d + DAY


def keys_of(incident: Incident, day: datetime) -> list[RollupKey]:
    station, kind = incident.station_id, incident.kind  # each attribute read once: this runs per alert
    return [
        (level, day, getattr(incident, column.key) or "", station, kind)
        for level, column in RAW_COLUMNS.items()
    ]


def add_deltas(deltas: Counter[RollupKey], incident: Incident, day: datetime, n: int) -> None:
    for key in keys_of(incident, day):
        deltas[key] += n


async def apply_deltas(session: AsyncSession | AsyncConnection, deltas: Mapping[RollupKey, int]) -> None:
    """Upsert `n = n + delta` for every non-zero delta, in key order (no deadlock between replicas)."""
    items = [(k, n) for k, n in sorted(deltas.items()) if n]
    if not items:
        return
    bind = session.bind if isinstance(session, AsyncSession) else session
    assert bind is not None  # sessions come from store.db.session_factory(engine): always bound
    dialect = bind.dialect.name
    if dialect == "postgresql":  # one statement of six arrays instead of one parameter set per row
        cols = list(zip(*(k for k, _ in items), strict=True))
        await session.execute(
            _PG_UPSERT,
            {
                "levels": list(cols[0]),
                "days": list(cols[1]),
                "units": list(cols[2]),
                "stations": list(cols[3]),
                "kinds": list(cols[4]),
                "ns": [n for _, n in items],
            },
        )
        return
    table = cast(Table, IncidentCount.__table__)  # declarative types it as FromClause
    stmt = sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["level", "day", "unit_id", "station_id", "kind"],
        set_={"n": table.c.n + stmt.excluded.n},
    )
    await session.execute(
        stmt,
        [
            {"level": k[0], "day": k[1], "unit_id": k[2], "station_id": k[3], "kind": k[4], "n": n}
            for k, n in items
        ],
    )


_PG_UPSERT = text(
    "INSERT INTO incident_counts (level, day, unit_id, station_id, kind, n) "
    "SELECT * FROM unnest(CAST(:levels AS text[]), CAST(:days AS timestamptz[]), CAST(:units AS text[]), "
    "CAST(:stations AS text[]), CAST(:kinds AS text[]), CAST(:ns AS bigint[])) "
    "ON CONFLICT (level, day, unit_id, station_id, kind) DO UPDATE SET n = incident_counts.n + excluded.n"
)


def _day_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return "date_trunc('day', first_seen, 'UTC')"
    # SQLite stores naive UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's format).
    return "strftime('%Y-%m-%d 00:00:00.000000', first_seen)"


def rebuild_sql(dialect: str) -> str:
    """INSERT ... SELECT of the whole rollup from `incidents` (into an empty `incident_counts`)."""
    day = _day_sql(dialect)
    parts = [
        f"SELECT '{level}', {day}, COALESCE({column.key}, ''), station_id, kind, count(*) FROM incidents "
        "GROUP BY 2, 3, 4, 5"
        for level, column in RAW_COLUMNS.items()
    ]
    return "INSERT INTO incident_counts (level, day, unit_id, station_id, kind, n) " + " UNION ALL ".join(
        parts
    )


async def rebuild(conn: AsyncConnection) -> None:
    """Recompute the rollup from `incidents` (after a bulk load that bypassed the writer)."""
    await conn.execute(delete(IncidentCount))
    await conn.execute(text(rebuild_sql(conn.dialect.name)))


def _raw(
    col: Any, lo: datetime | None, hi: datetime | None, scope: str | None
) -> Select[tuple[Any, str, int]]:
    conds: list[ColumnElement[bool]] = []
    if lo is not None:
        conds.append(Incident.first_seen >= lo)
    if hi is not None:
        conds.append(Incident.first_seen < hi)
    if scope is not None:
        conds.append(Incident.station_id == scope)
    return (
        select(col.label("unit"), Incident.kind, func.count().label("n"))
        .where(*conds)
        .group_by(col, Incident.kind)
    )


def counts_statement(
    by: str, since: datetime | None, until: datetime | None, scope: str | None, raw_col: Any
) -> Any:
    """One statement of (unit, kind, n) rows whose sums per (unit, kind) are the window's counts.

    `by` outside `LEVELS` (camera) reads the raw table only.
    """
    if by not in LEVELS:
        return _raw(raw_col, since, until, scope)
    lo = ceil_day(since) if since is not None else None
    hi = day_of(until) if until is not None else None
    if lo is not None and hi is not None and lo >= hi:
        return _raw(raw_col, since, until, scope)  # less than one whole day
    conds: list[ColumnElement[bool]] = [IncidentCount.level == by]
    if lo is not None:
        conds.append(IncidentCount.day >= lo)
    if hi is not None:
        conds.append(IncidentCount.day < hi)
    if scope is not None:
        conds.append(IncidentCount.station_id == scope)
    parts: list[Any] = [
        select(IncidentCount.unit_id.label("unit"), IncidentCount.kind, func.sum(IncidentCount.n).label("n"))
        .where(*conds)
        .group_by(IncidentCount.unit_id, IncidentCount.kind)
    ]
    if since is not None and lo is not None and _utc(since) < lo:
        parts.append(_raw(raw_col, since, lo, scope))
    if until is not None and hi is not None and hi < _utc(until):
        parts.append(_raw(raw_col, hi, until, scope))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def merge_counts(by: str, rows: Iterable[tuple[str | None, str, int]]) -> dict[tuple[str | None, str], int]:
    """Sum (unit, kind, n) rows; the rollup's '' unit is the raw table's NULL."""
    out: dict[tuple[str | None, str], int] = {}
    for unit, kind, n in rows:
        if not n:
            continue
        key = (None if unit == "" and by in LEVELS else unit, kind)
        out[key] = out.get(key, 0) + int(n)
    return out


__all__ = [
    "LEVELS",
    "RAW_COLUMNS",
    "add_deltas",
    "apply_deltas",
    "ceil_day",
    "counts_statement",
    "day_of",
    "keys_of",
    "merge_counts",
    "rebuild",
    "rebuild_sql",
]
