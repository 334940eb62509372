"""The clip store's bounds: each station's quota (evict clips of closed incidents, then refuse with 507, a
metric and the reason on the incident), retention that never takes a clip of an open incident, and the
schema the migration builds, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from center_api.clips.files import ClipStore
from center_api.grid.locate import Placement
from center_api.metrics import CenterMetrics
from center_api.retention import EXPIRED_REASON, TMP_MAX_AGE_S, ClipSweeper
from center_api.store import clips as index
from center_api.store.clipstate import summaries
from center_api.store.db import make_engine, migrate, session_factory
from center_api.store.incidents import IncidentWriter, RoutedAlert
from center_api.store.models import Base, Clip
from contracts import ClipMeta
from tests.center_api.conftest import (
    NANGUAN_1,
    SCRAPE,
    auth,
    clip_meta,
    make_alert,
    mp4_variant,
    put_clip,
    xadd,
)
from tests.center_api.test_clips import PENDING, _stored

pytestmark = pytest.mark.integration

CITY = auth("city_command", None, "chief")
INTEGRATOR = auth("integrator", None, "vendor")


async def _close(center: Any, incident_id: int) -> None:
    for to in ("acknowledged", "resolved"):
        r = await center.client.post(
            f"/api/v1/incidents/{incident_id}/transitions", json={"to": to, "note": "done"}, headers=CITY
        )
        assert r.status_code == 200, r.text


async def test_the_quota_evicts_closed_incidents_clips_then_refuses(
    center_factory, any_database_url, redis_db, clip_mp4
) -> None:
    clips = [mp4_variant(clip_mp4, f"q{i}") for i in range(6)]
    size = len(clips[0])
    assert {len(c) for c in clips} == {size}
    center = await center_factory(any_database_url, clip_station_quota_bytes=3 * size + size // 2)
    c = center.client
    r = await c.post(
        "/api/v1/cameras",
        json={
            "id": "cam-q",
            "url": "rtsp://127.0.0.1:1/q",
            "location": {"lat": NANGUAN_1[0], "lon": NANGUAN_1[1]},
        },
        headers=INTEGRATOR,
    )
    assert r.status_code == 201, r.text
    incidents = []
    for i in range(6):  # one incident each (its own rule), each expecting a clip
        alert = make_alert(NANGUAN_1, camera_id="cam-q", rule=f"r{i}", clip=PENDING)
        xadd(redis_db, alert)
        incidents.append(((await _stored(center, alert.id))["id"], alert.id))

    async def upload(i: int) -> Any:
        return await put_clip(c, clips[i], clip_meta(clips[i], [incidents[i][1]], camera_id="cam-q"))

    for i in range(3):
        assert (await upload(i)).status_code == 201
    await _close(center, incidents[0][0])
    await _close(center, incidents[2][0])
    # The fourth does not fit: the least recently used clip of a closed incident goes (the first).
    assert (await upload(3)).status_code == 201
    kept = {
        i
        for i in range(6)
        if ClipStore(center.app.state.settings.data_dir).exists(hashlib.sha256(clips[i]).hexdigest())
    }
    assert kept == {1, 2, 3}
    first = (await c.get(f"/api/v1/incidents/{incidents[0][0]}", headers=CITY)).json()
    assert first["clip_state"] == "unavailable" and "quota" in first["clip_reason"]
    # The fifth evicts the third (closed); the sixth finds only clips of open incidents: refused.
    assert (await upload(4)).status_code == 201
    refused = await upload(5)
    assert (refused.status_code, refused.json()["code"]) == (507, "clip_quota_exceeded"), refused.text
    sixth = (await c.get(f"/api/v1/incidents/{incidents[5][0]}", headers=CITY)).json()
    assert (sixth["clip_state"], sixth["clip_reason"]) == ("unavailable", "station clip quota reached")
    assert [e["event"] for e in sixth["history"]][-1] == "clip_unavailable"
    for open_one in (1, 3, 4):
        item = (await c.get(f"/api/v1/incidents/{incidents[open_one][0]}", headers=CITY)).json()
        assert item["clip_state"] == "present", open_one
    metrics = (await c.get("/metrics", headers=SCRAPE)).text
    assert 'gridwatch_center_clip_quota_reached{station="st-nanguan"} 1.0' in metrics
    assert 'gridwatch_center_clips_refused_total{reason="quota"} 1.0' in metrics
    assert "gridwatch_center_clips_evicted_total 2.0" in metrics
    assert f'gridwatch_center_clip_bytes{{station="st-nanguan"}} {float(3 * size)}' in metrics
    assert (
        f'gridwatch_center_clip_quota_bytes{{station="st-nanguan"}} {float(3 * size + size // 2)}' in metrics
    )
    # Room again (an incident closed): the next clip is stored, and the gauge says so.
    await _close(center, incidents[1][0])
    assert (await upload(5)).status_code == 201
    metrics = (await c.get("/metrics", headers=SCRAPE)).text
    assert 'gridwatch_center_clip_quota_reached{station="st-nanguan"} 0.0' in metrics


# -- retention -----------------------------------------------------------------------------------------------

RETENTION_DAYS = 30.0
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=RETENTION_DAYS + 1)
RECENT = NOW - timedelta(days=RETENTION_DAYS - 1)
PLACE = Placement("c1", "cm1", "s1", "d1", "st-a")


def _meta(data: bytes, alert_id: str) -> ClipMeta:
    return ClipMeta.model_validate(clip_meta(data, [alert_id]))


async def test_retention_never_deletes_a_clip_of_an_open_incident(
    any_database_url: str, tmp_path: Path, clip_mp4: bytes
) -> None:
    store, metrics = ClipStore(tmp_path / "data"), CenterMetrics()
    engine = make_engine(any_database_url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        writer = IncidentWriter(sessions)
        cases = {"open-old": OLD, "closed-old": OLD, "closed-recent": RECENT, "unlinked-old": OLD}
        alerts = {name: make_alert(NANGUAN_1, camera_id=f"cam-{name}", clip=PENDING) for name in cases}
        events = await writer.ingest(
            [RoutedAlert(a, PLACE) for n, a in alerts.items() if n != "unlinked-old"], NOW
        )
        ids = {e.incident.camera_id.removeprefix("cam-"): e.incident.id for e in events}
        for name in ("closed-old", "closed-recent"):
            for to in ("acknowledged", "resolved"):
                await writer.transition(
                    ids[name], to, actor="t", note="", station_scope=None, now=NOW, scope_all=True
                )
        digests = {}
        for name, used in cases.items():
            data = mp4_variant(clip_mp4, name)
            digest = digests[name] = hashlib.sha256(data).hexdigest()
            store.write(digest, data)
            async with sessions() as session, session.begin():
                session.add(
                    Clip(
                        digest=digest,
                        camera_id=f"cam-{name}",
                        station_id="st-a",
                        size=len(data),
                        started_at=used,
                        duration_s=2.0,
                        codec="h264",
                        created_at=used,
                        last_used_at=used,
                    )
                )
                await session.flush()
                await index.link(session, digest, {alerts[name].id: 1.0}, used)
        # Left behind by crashes: an orphan file no row names, a stale temporary file, a fresh one.
        orphan = store.path("e" * 64)
        store.write("e" * 64, clip_mp4)
        stale, fresh = store.temporary("f" * 64), store.temporary("f" * 64)
        stale.write_bytes(b"partial")
        fresh.write_bytes(b"partial")
        hour_ago = NOW.timestamp() - 2 * TMP_MAX_AGE_S
        for path in (orphan, stale):
            os.utime(path, (hour_ago, hour_ago))

        result = await ClipSweeper(sessions, store, metrics, RETENTION_DAYS).run(NOW.timestamp())

        survivors = {name for name, d in digests.items() if store.exists(d)}
        assert survivors == {"open-old", "closed-recent"}
        assert not orphan.exists() and not stale.exists() and fresh.exists()
        assert (result.deleted, result.tmp_removed) == (2, 2)
        async with sessions() as session:
            rows = set(await session.scalars(select(Clip.digest)))
            states = await summaries(session, ids.values(), NOW, 600)
        assert rows == {digests["open-old"], digests["closed-recent"]}
        assert states[ids["closed-old"]].state == "unavailable"
        assert states[ids["closed-old"]].reason == EXPIRED_REASON
        assert states[ids["open-old"]].state == states[ids["closed-recent"]].state == "present"
        assert metrics.registry.get_sample_value("gridwatch_center_clips_deleted_total") == 2
        # Retention 0 keeps every clip; the leftovers still go.
        assert (await ClipSweeper(sessions, store, metrics, 0).run(NOW.timestamp() + 1e9)).deleted == 0
        assert {name for name, d in digests.items() if store.exists(d)} == survivors
    finally:
        await engine.dispose()


async def test_the_migration_builds_what_the_models_declare(any_database_url: str) -> None:
    engine = make_engine(any_database_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
