"""The per-day rollup: statistics read through it equal counting the raw table, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, func, select, text

from center_api.grid.locate import Placement
from center_api.store.db import make_engine, migrate, session_factory
from center_api.store.incidents import IncidentWriter, RoutedAlert
from center_api.store.models import Incident, IncidentCount, UTCDateTime
from center_api.store.rollup import ceil_day, day_of, rebuild
from center_api.store.stats import UNIT_COLUMNS, StatsReader
from contracts import Alert, AlertKind

pytestmark = pytest.mark.integration

PLACES = [
    Placement("c1", "cm1", "s1", "d1", "st-a"),
    Placement("c2", "cm1", "s1", "d1", "st-a"),
    Placement("c3", "cm2", "s1", "d1", "st-b"),  # a community split between two stations
    Placement("c4", "cm2", "s2", "d2", "st-a"),
    Placement("c5", "cm3", "s3", "d2", "st-b"),
    Placement("unassigned", None, None, None, "city"),
]
KINDS = [AlertKind.intrusion, AlertKind.loitering, AlertKind.crowd]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _alert(rng: random.Random, at: datetime) -> Alert:
    return Alert(
        kind=rng.choice(KINDS),
        severity=rng.randint(1, 4),
        camera_id=f"cam-{rng.randint(1, 12)}",
        captured_at=at,
        rule=rng.choice(["r1", "r2"]),
        zone=rng.choice([None, "z"]),
    )


def _random_time(rng: random.Random) -> datetime:
    t = T0 + timedelta(seconds=rng.uniform(0, 10 * 86400))
    if rng.random() < 0.1:
        t = day_of(t)  # exactly midnight: the edge between two days
    return t


async def _raw_counts(sessions, by, since, until, scope) -> dict:
    """The reference answer, written apart from the store's query: plain SQL over the raw table."""
    col = UNIT_COLUMNS[by].name
    conditions = {
        "since": "first_seen >= :since",
        "until": "first_seen < :until",
        "scope": "station_id = :scope",
    }
    given = {k: v for k, v in {"since": since, "until": until, "scope": scope}.items() if v is not None}
    where = f"WHERE {' AND '.join(conditions[k] for k in given)}" if given else ""
    sql = text(f"SELECT {col}, kind, count(*) FROM incidents {where} GROUP BY {col}, kind").bindparams(
        *(bindparam(k, type_=UTCDateTime()) for k in given if k != "scope")
    )
    async with sessions() as session:
        return {(u, k): n for u, k, n in (await session.execute(sql, given)).all()}


def _flatten(counts: list) -> dict:
    return {(e["unit"], kind): n for e in counts for kind, n in e["by_kind"].items()}


async def _rollup_rows(engine) -> set:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(IncidentCount).where(IncidentCount.n != 0))).all()
    return {(r.level, day_of(r.day), r.unit_id, r.station_id, r.kind, r.n) for r in rows}


async def test_rollup_counts_equal_raw_counts(any_database_url) -> None:
    rng = random.Random(5)
    engine = make_engine(any_database_url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        writer, stats = IncidentWriter(sessions), StatsReader(sessions)
        camera_place = {f"cam-{i}": rng.choice(PLACES) for i in range(1, 13)}
        for _ in range(12):  # batches with repeats (folds, some out of order across days) and closures
            alerts = [_alert(rng, _random_time(rng)) for _ in range(rng.randint(5, 40))]
            items = [RoutedAlert(a, camera_place[a.camera_id]) for a in alerts]
            events = await writer.ingest(items, datetime.now(UTC))
            for ev in events:
                if rng.random() < 0.3 and ev.incident.status == "new":
                    for to in ("acknowledged", "resolved"):
                        await writer.transition(
                            ev.incident.id,
                            to,
                            actor="t",
                            note="",
                            station_scope=None,
                            now=datetime.now(UTC),
                            scope_all=True,
                        )
        async with sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Incident))
        assert total and total > 50

        windows: list[tuple[datetime | None, datetime | None]] = [(None, None), (T0, None), (None, T0)]
        for _ in range(60):
            a = rng.choice([None, _random_time(rng), ceil_day(_random_time(rng))])
            b = rng.choice([None, _random_time(rng), day_of(_random_time(rng))])
            windows.append((a, b))
        for since, until in windows:
            for by in ("cell", "community", "street", "district", "station", "camera"):
                for scope in (None, "st-a"):
                    want = await _raw_counts(sessions, by, since, until, scope)
                    got = _flatten(await stats.counts(by, since, until, scope))
                    assert got == want, (by, since, until, scope)
            want_cells: dict = {}
            for (cell, _kind), n in (await _raw_counts(sessions, "cell", since, until, None)).items():
                want_cells[cell] = want_cells.get(cell, 0) + n
            assert await stats.cell_counts(since, until, None, open_only=False) == want_cells

        kept = await _rollup_rows(engine)
        async with engine.begin() as conn:
            await rebuild(conn)
        assert await _rollup_rows(engine) == kept  # the writer's deltas equal a rebuild from scratch
    finally:
        await engine.dispose()
