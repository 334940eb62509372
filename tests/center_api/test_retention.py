"""Snapshot retention: old unused snapshots go, evidence of open incidents stays, on disk and via the API."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from center_api.grid.locate import Placement
from center_api.metrics import CenterMetrics
from center_api.retention import DAY_S, TMP_MAX_AGE_S, SnapshotSweeper
from center_api.snapshots import SnapshotStore
from center_api.store.db import make_engine, migrate, session_factory
from center_api.store.incidents import IncidentWriter, RoutedAlert
from gridwatch.cli import _center_settings
from gridwatch.settings import GridwatchSettings
from tests.center_api.conftest import NANGUAN_1, SCRAPE, auth, make_alert, poll, xadd

RETENTION_DAYS = 30.0
NOW = 1_700_000_000.0  # a fixed "now" (epoch seconds): the sweep takes its clock as an argument
OLD = NOW - (RETENTION_DAYS + 1) * DAY_S
RECENT = NOW - (RETENTION_DAYS - 1) * DAY_S
PLACE = Placement("c1", "cm1", "s1", "d1", "st-a")


def jpeg(tag: str) -> bytes:
    return b"\xff\xd8\xff\xe0" + tag.encode() * 50 + b"\xff\xd9"


def set_mtime(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def put_aged(store: SnapshotStore, data: bytes, mtime: float) -> str:
    digest = store.put(data)
    assert digest is not None
    set_mtime(store.path(digest), mtime)
    return digest


def test_put_of_existing_content_refreshes_mtime(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    last_used = time.time() - 10 * DAY_S
    digest = put_aged(store, jpeg("a"), last_used)
    assert store.put(jpeg("a")) == digest
    assert store.path(digest).stat().st_mtime > last_used + 9 * DAY_S  # refreshed to now, not left as it was
    assert store.read(digest) == jpeg("a")


@pytest.mark.parametrize(
    ("mtime", "kept_digest", "survives"),
    [
        pytest.param(OLD, False, False, id="old-unreferenced-deleted"),
        pytest.param(OLD, True, True, id="old-kept-digest-survives"),
        pytest.param(RECENT, False, True, id="recent-survives"),
        pytest.param(RECENT, True, True, id="recent-kept-digest-survives"),
    ],
)
def test_sweep_rule(tmp_path: Path, mtime: float, kept_digest: bool, survives: bool) -> None:
    store = SnapshotStore(tmp_path)
    digest = put_aged(store, jpeg("a"), mtime)
    keep = {digest} if kept_digest else set()
    result = store.sweep(keep, NOW - RETENTION_DAYS * DAY_S, NOW - TMP_MAX_AGE_S)
    assert store.path(digest).exists() is survives
    assert result.deleted == (0 if survives else 1)
    assert result.bytes_freed == (0 if survives else len(jpeg("a")))


def test_sweep_removes_stale_temporary_files_only(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    digest = put_aged(store, jpeg("a"), RECENT)
    shard = store.path(digest).parent
    stale, fresh = shard / f"{'1' * 64}.123.tmp", shard / f"{'2' * 64}.456.tmp"
    foreign = shard / "notes.txt"  # not ours: never touched
    for path in (stale, fresh, foreign):
        path.write_bytes(b"partial")
    set_mtime(stale, NOW - 2 * TMP_MAX_AGE_S)
    set_mtime(fresh, NOW - TMP_MAX_AGE_S / 2)
    set_mtime(foreign, OLD)

    result = store.sweep(set(), NOW - RETENTION_DAYS * DAY_S, NOW - TMP_MAX_AGE_S)

    assert not stale.exists() and fresh.exists() and foreign.exists() and store.path(digest).exists()
    assert (result.deleted, result.tmp_removed, result.bytes_freed) == (0, 1, len(b"partial"))
    assert shard.is_dir()  # shard directories are kept for the next put


def test_sweep_of_an_empty_store(tmp_path: Path) -> None:
    result = SnapshotStore(tmp_path).sweep(set(), NOW, NOW)
    assert (result.deleted, result.tmp_removed, result.failed) == (0, 0, 0)


async def _close(writer: IncidentWriter, incident_id: int, *path: str) -> None:
    for to in path:
        await writer.transition(
            incident_id, to, actor="t", note="", station_scope=None, now=datetime.now(UTC), scope_all=True
        )


@pytest.mark.integration
async def test_sweeper_keeps_evidence_of_open_incidents(any_database_url: str, tmp_path: Path) -> None:
    store, metrics = SnapshotStore(tmp_path / "data"), CenterMetrics()
    engine = make_engine(any_database_url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        writer = IncidentWriter(sessions)
        # One incident per (camera, status it ends in); each with its own snapshot, all last used long ago.
        ends = {
            "new": (),
            "acknowledged": ("acknowledged",),
            "dispatched": ("acknowledged", "dispatched"),
            "resolved": ("acknowledged", "resolved"),
            "false_alarm": ("acknowledged", "dispatched", "false_alarm"),
        }
        digests = {name: put_aged(store, jpeg(name), OLD) for name in [*ends, "orphan", "recent"]}
        set_mtime(store.path(digests["recent"]), RECENT)
        items = [
            RoutedAlert(make_alert(None, camera_id=f"cam-{name}"), PLACE, digests[name]) for name in ends
        ]
        events = await writer.ingest(items, datetime.now(UTC))
        for event in events:
            await _close(writer, event.incident.id, *ends[event.incident.camera_id.removeprefix("cam-")])

        result = await SnapshotSweeper(sessions, store, metrics, RETENTION_DAYS).run(NOW)

        survivors = {name for name, digest in digests.items() if store.path(digest).exists()}
        assert survivors == {"new", "acknowledged", "dispatched", "recent"}
        assert result.deleted == 3  # resolved, false_alarm, orphan
        assert result.bytes_freed == sum(len(jpeg(n)) for n in ("resolved", "false_alarm", "orphan"))
        assert metrics.registry.get_sample_value("gridwatch_center_snapshots_deleted_total") == 3
        freed = metrics.registry.get_sample_value("gridwatch_center_snapshot_bytes_freed_total")
        assert freed == result.bytes_freed
    finally:
        await engine.dispose()


@pytest.mark.integration
async def test_retention_zero_keeps_everything(database_url: str, tmp_path: Path) -> None:
    store, metrics = SnapshotStore(tmp_path / "data"), CenterMetrics()
    digest = put_aged(store, jpeg("ancient"), OLD - 3650 * DAY_S)
    stale_tmp = store.path(digest).with_suffix(".1.tmp")
    stale_tmp.write_bytes(b"partial")
    set_mtime(stale_tmp, OLD)
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        result = await SnapshotSweeper(session_factory(engine), store, metrics, 0).run(NOW)
    finally:
        await engine.dispose()
    assert (result.deleted, result.tmp_removed) == (0, 0)
    assert store.path(digest).exists() and stale_tmp.exists()  # 0 means: the sweep does not run at all


def test_retention_reaches_the_center_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GRIDWATCH_SNAPSHOT_RETENTION_DAYS", "7.5")
    assert _center_settings(GridwatchSettings(data_dir=tmp_path)).snapshot_retention_days == 7.5
    monkeypatch.delenv("GRIDWATCH_SNAPSHOT_RETENTION_DAYS")
    assert _center_settings(GridwatchSettings(data_dir=tmp_path)).snapshot_retention_days == 90


@pytest.mark.integration
async def test_swept_snapshot_answers_404_through_the_api(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url, snapshot_retention_days=1.0, snapshot_sweep_every_s=0.1)
    state = center.app.state.services  # type: ignore[attr-defined]
    xadd(redis_db, make_alert(NANGUAN_1, camera_id="cam-a"), jpeg("evidence"))

    async def stored():
        items = (await center.client.get("/api/v1/incidents", headers=auth())).json()["items"]
        return items[0] if items else None

    item = await poll(stored)
    path = state.snapshots.path(hashlib.sha256(jpeg("evidence")).hexdigest())
    assert path.exists()
    old = time.time() - 2 * DAY_S
    set_mtime(path, old)

    # Open: a sweep (the same one the background task runs) keeps it however old.
    result = await SnapshotSweeper(state.sessions, state.snapshots, state.metrics, 1.0).run(time.time())
    assert result.deleted == 0 and path.exists()
    assert (await center.client.get(item["snapshot_url"], headers=auth())).content == jpeg("evidence")

    url = f"/api/v1/incidents/{item['id']}/transitions"
    for to in ("acknowledged", "resolved"):
        r = await center.client.post(url, json={"to": to}, headers=auth())
        assert r.status_code == 200, r.text

    async def swept():
        return not path.exists()

    await poll(swept)  # the background sweep deletes the evidence of the closed incident
    r = await center.client.get(item["snapshot_url"], headers=auth())
    assert r.status_code == 404
    assert r.json()["detail"] == "snapshot expired under the retention policy"
    metrics = (await center.client.get("/metrics", headers=SCRAPE)).text
    assert "gridwatch_center_snapshots_deleted_total 1.0" in metrics
