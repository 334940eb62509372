"""Event clips at the center: uploads (idempotent, refused when they are not what they claim), who may
upload, linking through alert ids whichever comes first, and the incident's clip state, on SQLite and
PostgreSQL with real servers."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from center_api.store.clipstate import summarize
from center_api.store.models import NO_CLIP, ClipSummary
from contracts import ClipNote, ClipState
from tests.center_api.conftest import (
    NANGUAN_1,
    SCRAPE,
    WORKER,
    auth,
    clip_meta,
    make_alert,
    mp4_variant,
    poll,
    put_clip,
    xadd,
)

CITY = auth("city_command", None, "chief")
PENDING = ClipNote(state=ClipState.pending, preroll_s=10)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


# -- the rule ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("linked", "short", "pending_age_s", "unavailable", "expected", "want"),
    [
        pytest.param(1, None, 5, None, 1, ClipSummary("present"), id="present"),
        pytest.param(
            1, "ring held 4 s", None, "failed", 2, ClipSummary("present", "ring held 4 s"), id="short"
        ),
        pytest.param(0, None, 5, None, 1, ClipSummary("pending"), id="pending"),
        pytest.param(0, None, 5, "no ring", 2, ClipSummary("pending"), id="pending-beats-a-failure"),
        pytest.param(0, None, 700, "no ring", 2, ClipSummary("unavailable", "no ring"), id="failure"),
        pytest.param(
            0,
            None,
            600,
            None,
            1,
            ClipSummary("unavailable", "no clip arrived within 600 s of the alert"),
            id="timeout",
        ),
        pytest.param(0, None, None, "quota", 1, ClipSummary("unavailable", "quota"), id="unavailable"),
        pytest.param(0, None, None, None, 0, NO_CLIP, id="none-expected"),
    ],
)
def test_clip_state_rule(
    linked: int,
    short: str | None,
    pending_age_s: float | None,
    unavailable: str | None,
    expected: int,
    want: ClipSummary,
) -> None:
    since = None if pending_age_s is None else NOW - timedelta(seconds=pending_age_s)
    assert summarize(linked, short, since, unavailable, expected, NOW, 600.0) == want


# -- uploads -----------------------------------------------------------------------------------------------


async def _incident(center: Any, alert_id: str) -> dict[str, Any] | None:
    r = await center.client.get("/api/v1/incidents", params={"limit": 500}, headers=CITY)
    assert r.status_code == 200, r.text
    return next((i for i in r.json()["items"] if i["alert_id"] == alert_id), None)


async def _stored(center: Any, alert_id: str, **fields: Any) -> dict[str, Any]:
    """Poll until the incident of `alert_id` exists and has `fields`."""

    async def ready() -> dict[str, Any] | None:
        found = await _incident(center, alert_id)
        return found if found and all(found.get(k) == v for k, v in fields.items()) else None

    return await poll(ready)  # type: ignore[return-value]


def _clip_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data" / "clips").glob("*/*"))


async def test_an_upload_is_stored_once_by_digest(
    center_factory, database_url, redis_db, clip_mp4, tmp_path: Path
) -> None:
    center = await center_factory(database_url)
    digest = hashlib.sha256(clip_mp4).hexdigest()
    first = await put_clip(center.client, clip_mp4, clip_meta(clip_mp4, ["a-1"]))
    assert (first.status_code, first.json()) == (201, {"id": digest, "incidents": []}), first.text
    again = await put_clip(center.client, clip_mp4, clip_meta(clip_mp4, ["a-1", "a-2"], offsets=[1.0, 1.5]))
    assert (again.status_code, again.json()["id"]) == (200, digest), again.text
    assert _clip_files(tmp_path) == [tmp_path / "data" / "clips" / digest[:2] / f"{digest}.mp4"]
    assert (tmp_path / "data" / "clips" / digest[:2] / f"{digest}.mp4").read_bytes() == clip_mp4
    metrics = (await center.client.get("/metrics", headers=SCRAPE)).text
    assert 'gridwatch_center_clips_stored_total{outcome="stored"} 1.0' in metrics
    assert 'gridwatch_center_clips_stored_total{outcome="duplicate"} 1.0' in metrics
    assert 'gridwatch_center_clip_bytes{station="unassigned"} ' + f"{float(len(clip_mp4))}" in metrics


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("digest_mismatch", 400, "digest_mismatch"),
        ("size_mismatch", 400, "size_mismatch"),
        ("not_mp4", 415, "not_mp4"),
        ("too_large_declared", 413, "clip_too_large"),
        ("too_large_streamed", 413, "clip_too_large"),
        ("too_large_meta", 413, "clip_too_large"),
        ("bad_meta", 422, None),
        ("meta_not_json", 422, None),
        ("bad_digest", 422, None),
    ],
)
async def test_an_upload_that_is_not_what_it_claims_is_refused(
    center_factory, database_url, redis_db, clip_mp4, tmp_path: Path, case: str, status: int, code: str | None
) -> None:
    limit = len(clip_mp4) + 100
    center = await center_factory(database_url, clip_max_bytes=limit)
    data, meta = clip_mp4, clip_meta(clip_mp4, ["a-1"])
    digest = hashlib.sha256(data).hexdigest()
    c = center.client
    if case == "digest_mismatch":
        r = await put_clip(c, data, meta, digest="0" * 64)
    elif case == "size_mismatch":
        r = await put_clip(c, data, {**meta, "bytes": len(data) - 1})
    elif case == "not_mp4":
        junk = b"\x00\x00\x00\x20mdat" + bytes(200)
        r = await put_clip(c, junk, clip_meta(junk, ["a-1"]))
    elif case == "too_large_declared":  # refused on its Content-Length, before a byte is read
        big = mp4_variant(data, "big", pad=200)
        r = await put_clip(c, big, clip_meta(big, ["a-1"], bytes=limit - 1))
    elif case == "too_large_streamed":  # chunked: no length; the stream is cut at the limit

        async def chunks() -> Any:
            for _ in range(4):
                yield data

        r = await c.put(
            f"/api/v1/clips/{digest}",
            params={"meta": json.dumps({**meta, "bytes": limit - 1})},
            content=chunks(),
            headers={**WORKER, "Content-Type": "video/mp4"},
        )
    elif case == "too_large_meta":
        r = await put_clip(c, data, {**meta, "bytes": limit + 1})
    elif case == "bad_meta":
        r = await put_clip(c, data, {**meta, "alert_offsets_s": []})  # one offset per alert id
    elif case == "meta_not_json":
        r = await c.put(f"/api/v1/clips/{digest}", params={"meta": "{nope"}, content=data, headers=WORKER)
    else:
        r = await c.put(
            "/api/v1/clips/not-a-digest", params={"meta": json.dumps(meta)}, content=data, headers=WORKER
        )
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["code"] == code
    else:
        assert isinstance(r.json()["detail"], list)  # FastAPI's validation array
    assert _clip_files(tmp_path) == []  # nothing stored, no temporary file left
    if code is not None and case != "too_large_declared":
        reason = "too_large" if code == "clip_too_large" else code
        metrics = (await c.get("/metrics", headers=SCRAPE)).text
        assert f'gridwatch_center_clips_refused_total{{reason="{reason}"}} 1.0' in metrics


async def test_only_workers_upload_and_workers_read_nothing(
    center_factory, database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(database_url)
    c = center.client
    meta = clip_meta(clip_mp4, ["a-1"])
    failure = {"camera_id": "cam-x", "alert_ids": ["a-1"], "reason": "no ring"}
    for role, station in (("operator", "st-nanguan"), ("city_command", None), ("integrator", None)):
        headers = auth(role, station)
        assert (await put_clip(c, clip_mp4, meta, headers=headers)).status_code == 403
        assert (await c.post("/api/v1/clips/failures", json=failure, headers=headers)).status_code == 403
    for path in (
        "/api/v1/incidents",
        "/api/v1/cameras",
        "/api/v1/stats",
        "/api/v1/grid/cells",
        "/api/v1/live",
    ):
        r = await c.get(path, headers=WORKER)
        assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed"), (path, r.text)
    assert (await c.get("/api/v1/cameras/demo-cam-1", headers=WORKER)).status_code == 403
    assert (await c.post("/api/v1/clips/failures", json=failure, headers=WORKER)).status_code == 202


# -- linking and the incident's clip state -------------------------------------------------------------------


async def test_a_clip_before_its_alert_links_when_the_alert_lands(
    center_factory, any_database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(any_database_url)
    alert = make_alert(NANGUAN_1, camera_id="cam-early", clip=PENDING)
    r = await put_clip(
        center.client, clip_mp4, clip_meta(clip_mp4, [alert.id], camera_id="cam-early", offsets=[1.25])
    )
    assert (r.status_code, r.json()["incidents"]) == (201, []), r.text
    xadd(redis_db, alert)
    item = await _stored(center, alert.id, clip_state="present")
    assert item["clips_url"] == f"/api/v1/incidents/{item['id']}/clips"
    clips = (await center.client.get(item["clips_url"], headers=auth())).json()
    assert [(c["id"], c["alert_offsets_s"], c["bytes"]) for c in clips] == [
        (hashlib.sha256(clip_mp4).hexdigest(), [1.25], len(clip_mp4))
    ]
    # Uploaded again once the alert is stored: the answer names the incident.
    again = await put_clip(center.client, clip_mp4, clip_meta(clip_mp4, [alert.id]))
    assert (again.status_code, again.json()["incidents"]) == (200, [item["id"]])


async def test_pending_until_the_clip_arrives_then_present(
    center_factory, any_database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(any_database_url)
    first = make_alert(NANGUAN_1, camera_id="cam-p", clip=PENDING)
    xadd(redis_db, first)
    item = await _stored(center, first.id)
    assert (item["clip_state"], item["clip_reason"]) == ("pending", None)
    detail = (await center.client.get(f"/api/v1/incidents/{item['id']}", headers=auth())).json()
    assert detail["clip_state"] == "pending"
    assert (await center.client.get(item["clips_url"], headers=auth())).json() == []
    # A second alert folds into the incident; the clip of both arrives, short.
    second = make_alert(NANGUAN_1, camera_id="cam-p", clip=PENDING)
    xadd(redis_db, second)
    await _stored(center, first.id, count=2)
    meta = clip_meta(
        clip_mp4, [first.id, second.id], camera_id="cam-p", offsets=[0.5, 1.5], short_reason="ring held 4 s"
    )
    r = await put_clip(center.client, clip_mp4, meta)
    assert (r.status_code, r.json()["incidents"]) == (201, [item["id"]]), r.text
    item = await _stored(center, first.id, clip_state="present")
    assert item["clip_reason"] == "ring held 4 s"
    (clip,) = (await center.client.get(item["clips_url"], headers=auth())).json()
    assert clip["alert_offsets_s"] == [0.5, 1.5] and clip["short_reason"] == "ring held 4 s"
    detail = (await center.client.get(f"/api/v1/incidents/{item['id']}", headers=auth())).json()
    assert [e["event"] for e in detail["history"]] == ["created", "updated", "clip_added"]


async def test_a_failure_makes_the_clip_unavailable_with_its_reason(
    center_factory, any_database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(any_database_url)
    c = center.client
    stored, early = (
        make_alert(NANGUAN_1, camera_id="cam-f", clip=PENDING),
        make_alert(NANGUAN_1, camera_id="cam-g", clip=PENDING),
    )
    xadd(redis_db, stored)
    item = await _stored(center, stored.id, clip_state="pending")
    # One failure for a stored alert, one for an alert not stored yet (its pending note must not undo it).
    for alert, reason in (
        (stored, "camera reconnected: no ring yet"),
        (early, "clip over the worker's bound"),
    ):
        r = await c.post(
            "/api/v1/clips/failures",
            json={"camera_id": alert.camera_id, "alert_ids": [alert.id], "reason": reason, "worker_id": "w1"},
            headers=WORKER,
        )
        assert r.status_code == 202, r.text
    assert r.json() == {"alert_ids": 1, "incidents": []}
    item = await _stored(center, stored.id, clip_state="unavailable")
    assert item["clip_reason"] == "camera reconnected: no ring yet"
    xadd(redis_db, early)
    late = await _stored(center, early.id)
    assert (late["clip_state"], late["clip_reason"]) == ("unavailable", "clip over the worker's bound")
    # A clip that arrives after all still makes it present.
    await put_clip(c, clip_mp4, clip_meta(clip_mp4, [stored.id], camera_id="cam-f"))
    await _stored(center, stored.id, clip_state="present", clip_reason=None)


async def test_a_clip_that_never_comes_is_unavailable_after_the_timeout(
    center_factory, database_url, redis_db, clip_mp4
) -> None:
    center = await center_factory(database_url, clip_pending_timeout_s=1)
    alert = make_alert(NANGUAN_1, camera_id="cam-t", clip=PENDING)
    xadd(redis_db, alert)
    item = await _stored(center, alert.id, clip_state="unavailable")
    assert item["clip_reason"] == "no clip arrived within 1 s of the alert"
    await put_clip(center.client, clip_mp4, clip_meta(clip_mp4, [alert.id], camera_id="cam-t"))
    await _stored(center, alert.id, clip_state="present")


async def test_no_clip_expected_says_null(center_factory, database_url, redis_db) -> None:
    center = await center_factory(database_url)
    alert = make_alert(NANGUAN_1, camera_id="cam-n")
    unavailable = make_alert(
        NANGUAN_1, camera_id="cam-u", clip=ClipNote(state=ClipState.unavailable, reason="no clip recorder")
    )
    xadd(redis_db, alert)
    xadd(redis_db, unavailable)
    item = await _stored(center, alert.id)
    assert (item["clip_state"], item["clip_reason"], item["clips_url"]) == (None, None, None)
    item = await _stored(center, unavailable.id)
    assert (item["clip_state"], item["clip_reason"]) == ("unavailable", "no clip recorder")
